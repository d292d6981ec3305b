"""The KME's refusals, in neutral kinds a front end maps to its protocol (one table each)."""

from __future__ import annotations

from typing import Any

KINDS = ("bad-request", "unauthorized", "not-enough-key", "rate-limited", "peer-unreachable", "no-key-source",
         "link-compromised", "internal")
"""Every kind a `KmeError` may have; also the qstrata-ss `refusal-reason` enumeration."""


class KmeError(Exception):
    """A request the KME will not (or cannot) serve: `kind` (one of `KINDS`), a message a developer
    can act on, and `details` (JSON objects: the figures behind the refusal)."""

    def __init__(self, kind: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown KME error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = list(details or [])

    def to_json(self) -> dict[str, Any]:
        """As carried between KMEs (a relay refused further along the route)."""
        return {"kind": self.kind, "message": self.message, "details": self.details}

    @classmethod
    def from_json(cls, raw: Any) -> KmeError:
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            return cls("internal", f"a peer KME answered with an error this KME does not know: {str(raw)[:200]}")
        details = raw.get("details")
        return cls(raw["kind"], str(raw.get("message") or raw["kind"]),
                   [d for d in details if isinstance(d, dict)] if isinstance(details, list) else None)
