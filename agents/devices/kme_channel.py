"""The classical channel between the KMEs of one world: KME id -> the handler that answers for it.

Trusted nodes exchange relay messages over authenticated classical links; in a twin world every
KME is reachable from every other, and a call is a direct await of the peer's handler (in one
process) or a round trip through the world service (`remote/`), which routes it to the agent
process hosting that KME. Messages are JSON objects both ways.
"""

from __future__ import annotations

from typing import Any

from .base import PeerHandler, PeerUnreachable

SHARED = "kme-peers"


class PeerDirectory:
    """Which handler answers for which KME id (ids compared in lower case)."""

    def __init__(self) -> None:
        self._handlers: dict[str, PeerHandler] = {}

    def serve(self, kme_id: str, handler: PeerHandler | None) -> None:
        if handler is None:
            self._handlers.pop(kme_id.lower(), None)
        else:
            self._handlers[kme_id.lower()] = handler

    async def call(self, kme_id: str, message: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(kme_id.lower())
        if handler is None:
            raise PeerUnreachable(f"no KME {kme_id} is reachable")
        return await handler(message)


def directory(world: Any) -> PeerDirectory:
    """The world's one directory (created on first use)."""
    return world.shared_state(SHARED, PeerDirectory)
