"""`qstrata up`'s built-in key delivery application: SAEs that consume keys at a steady rate.

For every `qkd_app` of the plan with a `fetch`, the master SAE asks its KME for keys over ETSI GS
QKD 014 (`enc_keys`), each slave SAE asks its own KME for the same key_IDs (`dec_keys`), and the
application checks that both got the same bytes -- through the real HTTPS API with mutual TLS and
the SAEs' certificates (issued as `qstrata sae add` does, kept in each QKD agent's state
directory, `STATE_DIR/AGENT/sae/`), like any application. It asks for `fetch.rate` bits per
simulated second (so `--speed X` asks X times as much per wall second, as the links make X times
as much), in requests every `TICK_S`, and it does not hoard: what a refused request asked for is
not asked again.

It starts once the controller has configured the network and its pair's route holds a couple of
seconds' worth of key (so a link still locking is not counted as a refusal); from then on every refusal is counted by reason
and the first of each reason is told as an event with the KME's message. A refusal is the KME
being honest: when the route's links make less key than the pair fetches (the alice-bob link on
the 50 km spare makes 0.87 Mb/s), the store drains and the KME refuses what it does not hold,
never inventing key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qstrata.agents.sae_cli import issue_sae, sae_paths

from .kme_client import KmeClient, KmeRefusal, SaeIdentity
from .plan import ControllerPlan, QkdAppPlan

log = logging.getLogger("qstrata.up.keys")

TICK_S = 0.25
"""Wall seconds between requests of one pair."""
STATUS_EVERY_S = 1.0
"""How often each pair's Status (the key stored on its route) is read for the table."""
RATE_WINDOW_S = 5.0
SUMMARY_EVERY_S = 60.0
"""A pair with refusals says how it fared this often (its first refusal of a kind at once)."""
MAX_REQUESTS_PER_TICK = 4
START_TICKS = 8
"""A pair starts fetching once its route holds this many requests' worth (two seconds of it), so
the link's first moments, while the store has next to nothing, are not counted as refusals."""
MAX_WALL_BITS_S = 6.4e6
"""What the application fetches per wall second at most, all pairs together: more than twice the
built-in network's 2.4 Mb/s, so `--speed 2` is faithful; beyond, the pairs fetch less than their rate
(their RATE says how much), since every bit costs the network's own process CPU (key streams,
TLS, JSON, the KMEs' journals) that the twins and agents need."""


@dataclass(frozen=True)
class KmeAccess:
    """A QKD agent's KME, as `up` hosts it."""

    url: str
    ca: Path
    state_dir: Path


@dataclass
class PairFigures:
    """What one application pair got, as the application saw it."""

    app_id: str
    master: str
    slaves: tuple[str, ...]
    via: tuple[str, ...]
    """The trusted nodes its keys are relayed through (empty: a direct link)."""
    rate: float
    key_size: int
    keys: int = 0
    bits: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    last_refusal: str | None = None
    mismatches: int = 0
    stored_bits: int | None = None
    """Key stored on the pair's route (the smallest store on it), from its Status."""
    started: bool = False
    recent: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def label(self) -> str:
        return f"{self.master}->{','.join(self.slaves)}"

    @property
    def refusals(self) -> int:
        return sum(self.refused.values())

    def delivered_rate(self, now: float, speed: float) -> float | None:
        """Bits per simulated second delivered over the last `RATE_WINDOW_S`."""
        while self.recent and self.recent[0][0] < now - RATE_WINDOW_S:
            self.recent.popleft()
        if not self.started:
            return None
        return sum(bits for _, bits in self.recent) / RATE_WINDOW_S / speed


def refusal_summary(counts: dict[str, int]) -> str:
    """``4 requests refused: 3 not enough key (HTTP 503), 1 rate limited (HTTP 503)``: how many, and
    why, most frequent first (`counts`: `KmeRefusal.reason` -> refusals)."""
    total = sum(counts.values())
    kinds = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return (f"{total} request{'s' if total != 1 else ''} refused: "
            + ", ".join(f"{n} {reason}" for reason, n in kinds))


def route_via(plan: ControllerPlan, app: QkdAppPlan) -> tuple[str, ...]:
    """The trusted nodes between the master's node and the (first) slave's, along the routes
    the controller configures."""
    tables = plan.kme_routes()
    node, target, via = plan.node_of(app.master), plan.node_of(app.slaves[0]), []
    while node != target and len(via) < 16:
        hop = tables.get(node, {}).get(target)
        if hop is None:
            break
        node = hop[0]
        if node != target:
            via.append(node)
    return tuple(via)


class KeyApplication:
    """The pairs of `plan` that fetch, against the KMEs of `kmes` (node name -> its KME)."""

    def __init__(self, plan: ControllerPlan, kmes: dict[str, KmeAccess], speed: float = 1.0,
                 say: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        self.kmes = kmes
        self.speed = speed
        self.say = say or log.info
        self.apps = [a for a in plan.qkd_apps if a.fetch is not None]
        self.pairs = [PairFigures(a.id, a.master, a.slaves, route_via(plan, a), a.fetch.rate, a.fetch.key_size)
                      for a in self.apps if a.fetch is not None]
        asked = sum(p.rate for p in self.pairs) * speed
        self.scale = min(1.0, MAX_WALL_BITS_S / asked) if asked else 1.0
        """The share of their rate the pairs fetch (below 1 when `MAX_WALL_BITS_S` caps them)."""
        self.clients: dict[str, KmeClient] = {}
        self._tasks: list[asyncio.Task] = []

    def identity(self, sae: str) -> SaeIdentity:
        """The SAE's certificate in its node's state directory, issued from that agent's CA the
        first time (kept: a restarted network reuses it)."""
        kme = self.kmes[self.plan.node_of(sae)]
        cert, key = sae_paths(kme.state_dir, sae)
        if not (cert.exists() and key.exists()):
            cert, key, _ = issue_sae(kme.state_dir, sae)
        return SaeIdentity(sae, cert, key, kme.ca, kme.url)

    async def start(self) -> None:
        names = list(dict.fromkeys(s for a in self.apps for s in (a.master, *a.slaves)))
        for sae in names:
            self.clients[sae] = KmeClient(self.identity(sae))
        for pair in self.pairs:
            self._tasks.append(asyncio.create_task(self._fetch(pair), name=f"keys {pair.label}"))
            self._tasks.append(asyncio.create_task(self._watch(pair), name=f"keys status {pair.label}"))
        if self.pairs:
            self.say("keys: application started: " + ", ".join(
                f"{p.label} ({'via ' + ', '.join(p.via) if p.via else 'direct'}, {p.rate / 1e6:g} Mb/s in keys of "
                f"{p.key_size} bits)" for p in self.pairs))
        if self.scale < 1:
            self.say(f"keys: at speed {self.speed:g}x the application fetches {MAX_WALL_BITS_S / 1e6:g} Mb per wall "
                     f"second, {self.scale:.0%} of its rate: more would take the CPU the network itself needs")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)

    # -- one pair ------------------------------------------------------------------------------

    async def _stored(self, pair: PairFigures) -> dict | None:
        """The pair's Status, its stored key noted; None when the KME refused."""
        try:
            status = await self.clients[pair.master].status(pair.slaves[0])
        except KmeRefusal:
            return None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            pair.stored_bits = int(status["stored_key_count"]) * int(status["key_size"])
        return status

    async def _watch(self, pair: PairFigures) -> None:
        while True:
            await self._stored(pair)
            await asyncio.sleep(STATUS_EVERY_S)

    async def _fetch(self, pair: PairFigures) -> None:
        per_tick = pair.rate * self.speed * self.scale * TICK_S
        status = None
        start = min(START_TICKS * per_tick, pair.key_size * 1024)
        while status is None or pair.stored_bits is None or pair.stored_bits < start:
            status = await self._stored(pair)
            await asyncio.sleep(TICK_S)
        most = int(status.get("max_key_per_request", 1024))
        owed, last, summary_at = 0.0, time.monotonic(), time.monotonic() + SUMMARY_EVERY_S
        window = (0, 0, dict(pair.refused))
        while True:
            now = time.monotonic()
            owed = min(owed + per_tick * (now - last) / TICK_S, per_tick * MAX_REQUESTS_PER_TICK)
            last = now
            for _ in range(MAX_REQUESTS_PER_TICK):
                number = min(int(owed // pair.key_size), most)
                if number < 1:
                    break
                owed -= number * pair.key_size
                await self._one(pair, number)
            if now >= summary_at:
                window = self._summary(pair, window)
                summary_at = now + SUMMARY_EVERY_S
            await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - now)))

    async def _one(self, pair: PairFigures, number: int) -> None:
        """One enc_keys for `number` keys, then every slave's dec_keys; bytes compared."""
        size = pair.key_size
        try:
            keys = dict(await self.clients[pair.master].enc_keys(pair.slaves[0], number, size, pair.slaves[1:]))
        except KmeRefusal as refusal:
            self._refused(pair, "enc_keys", refusal)
            return
        for slave in pair.slaves:
            try:
                got = dict(await self.clients[slave].dec_keys(pair.master, list(keys)))
            except KmeRefusal as refusal:
                self._refused(pair, "dec_keys", refusal)
                return
            wrong = [k for k, v in keys.items() if got.get(k) != v]
            if wrong:
                pair.mismatches += len(wrong)
                self.say(f"keys: {pair.label}: MISMATCH: {len(wrong)} of {len(keys)} keys differ between "
                         f"{pair.master} and {slave} (first key_ID {wrong[0]})")
                return
        pair.keys += len(keys)
        pair.bits += len(keys) * size
        pair.recent.append((time.monotonic(), len(keys) * size))
        if not pair.started:
            pair.started = True
            self.say(f"keys: {pair.label}: first {len(keys)} keys of {size} bits delivered"
                     + (f" through {', '.join(pair.via)}" if pair.via else "") + ", equal at both ends")

    def _refused(self, pair: PairFigures, call: str, refusal: KmeRefusal) -> None:
        reason = refusal.reason
        first = reason not in pair.refused
        pair.refused[reason] = pair.refused.get(reason, 0) + 1
        pair.last_refusal = str(refusal) if call == "enc_keys" else f"{call} {refusal}"
        if first:
            why = (" (expected when the route's links make less key than the pair fetches: the KME refuses what "
                   "its stores do not hold)" if refusal.status == 503 and "not enough key" in refusal.message else "")
            self.say(f"keys: {pair.label}: {call} refused: {refusal}{why}")

    def _summary(self, pair: PairFigures, window: tuple[int, int, dict[str, int]]) -> tuple[int, int, dict[str, int]]:
        keys, bits, refused = window
        new = {r: n - refused.get(r, 0) for r, n in pair.refused.items() if n > refused.get(r, 0)}
        if new:
            self.say(f"keys: {pair.label}: last {SUMMARY_EVERY_S:g} s: {pair.keys - keys} keys delivered, "
                     + refusal_summary(new))
        return pair.keys, pair.bits, dict(pair.refused)
