"""Connections that have not authenticated (or sent their first request) yet, bounded like
OpenSSH's ``MaxStartups``: shared by the agents' login guard and the connection guard of every HTTP
surface of agents and collectors (`connections`)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["PendingConnections"]

Clock = Callable[[], float]
K = TypeVar("K", bound=Hashable)


class PendingConnections(Generic[K]):
    """Connections that have not authenticated yet, bounded like OpenSSH ``MaxStartups``."""

    def __init__(self, limit: int, *, eviction_age: float = 0.5, clock: Clock = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("the unauthenticated connection limit must be at least 1")
        self.limit = limit
        self.eviction_age = eviction_age
        self._clock = clock
        self._pending: OrderedDict[K, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def admit(self, key: K, source: str) -> tuple[bool, K | None]:
        """Register a new connection. Returns ``(admitted, evicted)``: when the table is full,
        ``evicted`` is a pending connection the caller must close to make room; when nothing
        may be evicted, ``admitted`` is False and the caller drops the new connection."""
        now = self._clock()
        evicted: K | None = None
        if len(self._pending) >= self.limit:
            evicted = self._victim(now)
            if evicted is None:
                return False, None
            del self._pending[evicted]
        self._pending[key] = (source, now)
        return True, evicted

    def done(self, key: K) -> None:
        """The connection authenticated or closed: it no longer counts."""
        self._pending.pop(key, None)

    def _victim(self, now: float) -> K | None:
        oldest: dict[str, tuple[K, float]] = {}
        counts: dict[str, int] = {}
        for key, (source, since) in self._pending.items():  # insertion order: oldest first
            counts[source] = counts.get(source, 0) + 1
            oldest.setdefault(source, (key, since))
        for source in sorted(counts, key=counts.__getitem__, reverse=True):
            key, since = oldest[source]
            if now - since >= self.eviction_age:
                return key
        return None
