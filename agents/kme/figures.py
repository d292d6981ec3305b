"""Key delivery figures: counters per application and for the whole KME (qstrata-ss
`delivery-figures`), per relay hop, per token-bucket session. Counted since the KME started
(`discontinuity-time`), as JSON-IETF for the agent's operational state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def date_and_time(unix_ns: int) -> str:
    """yang:date-and-time of a wall-clock instant (UTC, milliseconds)."""
    stamp = datetime.fromtimestamp(unix_ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{(unix_ns % 1_000_000_000) // 1_000_000:03d}Z"


@dataclass(slots=True)
class Delivery:
    since_ns: int = field(default_factory=time.time_ns)
    requests: int = 0
    keys: int = 0
    bits: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    latency_sum_us: int = 0
    latency_max_us: int = 0
    route: tuple[str, ...] = ()

    def served(self, keys: int, bits: int, latency_us: int) -> None:
        self.requests += 1
        self.keys += keys
        self.bits += bits
        self._latency(latency_us)

    def refuse(self, reason: str, latency_us: int) -> None:
        self.requests += 1
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._latency(latency_us)

    def _latency(self, latency_us: int) -> None:
        self.latency_sum_us += latency_us
        self.latency_max_us = max(self.latency_max_us, latency_us)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": str(self.requests), "keys-delivered": str(self.keys), "bits-delivered": str(self.bits),
            "latency-sum": str(self.latency_sum_us), "latency-max": str(self.latency_max_us),
            "discontinuity-time": date_and_time(self.since_ns),
        }
        if self.refused:
            out["refused"] = [{"reason": r, "count": str(n)} for r, n in sorted(self.refused.items())]
        if self.route:
            out["route"] = list(self.route)
        return out


@dataclass(slots=True)
class Hop:
    next_hop: str
    since_ns: int = field(default_factory=time.time_ns)
    keys: int = 0
    bits: int = 0

    def to_json(self, qkdl_id: str) -> dict[str, Any]:
        return {"qkdl-id": qkdl_id, "next-hop-kme": self.next_hop, "keys": str(self.keys),
                "consumed-bits": str(self.bits), "discontinuity-time": date_and_time(self.since_ns)}


@dataclass(slots=True)
class TokenBucket:
    """A session's bucket: `rate` bit/s up to `burst` bits, full at the start."""

    rate: int
    burst: int
    tokens: float = -1.0
    at: float = field(default_factory=time.monotonic)
    since_ns: int = field(default_factory=time.time_ns)
    admitted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def refill(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.tokens = min(float(self.burst), self.tokens + self.rate * max(0.0, now - self.at))
        self.at = now
        return self.tokens

    def take(self, bits: int) -> bool:
        if self.refill() < bits:
            self.rejected += 1
            return False
        self.tokens -= bits
        self.admitted += 1
        return True

    def give_back(self, bits: int) -> None:
        """A request admitted then refused further on (no key): its tokens are not spent."""
        self.tokens = min(float(self.burst), self.tokens + bits)

    def reshape(self, rate: int, burst: int) -> None:
        self.refill()
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, float(burst))

    def to_json(self, session_id: str) -> dict[str, Any]:
        return {"session-id": session_id, "tokens": str(int(self.refill())), "admitted": str(self.admitted),
                "rejected": str(self.rejected), "discontinuity-time": date_and_time(self.since_ns)}
