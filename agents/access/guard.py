"""Login protection any front end can use: back-off after failed passwords, a bound on
unauthenticated connections, and caps on sessions per user and in total.

Protocol-neutral and free of I/O (the clock is injectable): the NETCONF/SSH server calls it
today, the gNMI server will call the same object, so one agent has one set of limits however
many front ends it runs. Each piece keeps bounded memory, because the people it defends
against choose how many addresses, users and connections to throw at it.

* `FailureBackoff` -- each source address may fail a few passwords freely; after the k-th
  failure beyond those it must wait ``base * 2**(k-1)`` seconds (capped) after its last failure before its next password is even
  checked. The wait comes *before* verification, so cutting the connection early teaches an
  attacker nothing. A success clears only the failures recorded for that same user, so an
  attacker holding one valid account cannot use it to reset the back-off on another.
* `PendingConnections` -- unauthenticated connections are bounded separately from sessions
  (like OpenSSH ``MaxStartups``). When the table is full a new connection may evict the
  oldest pending connection of the busiest source address, if it has had ``eviction_age``
  seconds to authenticate; otherwise the new connection is dropped at once. So a flood of
  silent connections can neither grow without bound nor lock out users who log in.
* `SessionLimits` -- authenticated sessions per user and in total; only authenticated work
  counts, so nobody can exhaust the slots without credentials.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from qstrata.bindings.wire.pending import PendingConnections

__all__ = [
    "FailureBackoff",
    "GuardOptions",
    "LimitExceeded",
    "LoginGuard",
    "PendingConnections",
    "SessionLimits",
    "Slot",
]

Clock = Callable[[], float]


class LimitExceeded(Exception):
    """A session or connection was refused; ``reason`` is what to tell the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- failed-password back-off ----------------------------------------------------------------


@dataclass
class _Failures:
    total: int = 0
    last: float = 0.0
    by_user: dict[str, int] = field(default_factory=dict)


class FailureBackoff:
    """Per source address: free failures, then an exponential wait before the next attempt.

    ``max_sources`` bounds the table (the least recently failing address is forgotten first);
    an address is also forgotten ``forget_after`` seconds after its last failure. Per address,
    at most ``max_users_per_source`` usernames are tracked individually; failures for further
    names count towards the address total but are never cleared by a success.
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        forget_after: float = 600.0,
        max_sources: int = 4096,
        max_users_per_source: int = 8,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_sources = max_sources
        self.max_users_per_source = max_users_per_source
        self._clock = clock
        self._sources: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sources)

    def penalty(self, failures: int) -> float:
        """Seconds an address must wait after its last failure, having failed ``failures`` times."""
        if failures <= self.free_failures or self.base_delay <= 0:
            return 0.0
        exponent = min(failures - self.free_failures - 1, 32)
        return min(self.base_delay * (2**exponent), self.max_delay)

    def failures(self, source: str) -> int:
        entry = self._entry(source)
        return entry.total if entry else 0

    def delay(self, source: str) -> float:
        """Seconds to wait before the next password from ``source`` may be checked."""
        entry = self._entry(source)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + self.penalty(entry.total) - self._clock())

    async def wait(self, source: str) -> float:
        """Sleep until ``source`` may try again; returns the seconds waited."""
        delay = self.delay(source)
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def failed(self, source: str, username: str) -> None:
        now = self._clock()
        entry = self._entry(source)
        if entry is None:
            entry = self._sources[source] = _Failures()
            while len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        self._sources.move_to_end(source)
        entry.total += 1
        entry.last = now
        if username in entry.by_user or len(entry.by_user) < self.max_users_per_source:
            entry.by_user[username] = entry.by_user.get(username, 0) + 1

    def succeeded(self, source: str, username: str) -> None:
        """The user proved who it is: its own typos no longer count against the address."""
        entry = self._entry(source)
        if entry is None:
            return
        entry.total -= entry.by_user.pop(username, 0)
        if entry.total <= 0:
            del self._sources[source]

    def _entry(self, source: str) -> _Failures | None:
        entry = self._sources.get(source)
        if entry is not None and self._clock() - entry.last > self.forget_after:
            del self._sources[source]
            return None
        return entry


# -- session accounting ------------------------------------------------------------------------


class Slot:
    """One counted session; `release` (idempotent) gives the slot back."""

    __slots__ = ("_limits", "username", "_released")

    def __init__(self, limits: SessionLimits, username: str) -> None:
        self._limits = limits
        self.username = username
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limits._release(self.username)


class SessionLimits:
    """Counts open sessions per user and in total. ``noun`` names what is counted in refusal
    messages ("sessions", "connections")."""

    def __init__(self, max_total: int, max_per_user: int | None = None, noun: str = "sessions") -> None:
        if max_total < 1:
            raise ValueError("the session limit must be at least 1")
        if max_per_user is not None and max_per_user < 1:
            raise ValueError("the per-user session limit must be at least 1")
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.noun = noun
        self._total = 0
        self._per_user: dict[str, int] = {}

    def count(self, username: str | None = None) -> int:
        return self._total if username is None else self._per_user.get(username, 0)

    def check(self, username: str) -> None:
        """Raise `LimitExceeded` when ``username`` may not open one more."""
        if self._total >= self.max_total:
            raise LimitExceeded(f"too many {self.noun}: this server allows {self.max_total}")
        if self.max_per_user is not None and self._per_user.get(username, 0) >= self.max_per_user:
            raise LimitExceeded(
                f"too many {self.noun} for user {username}: this server allows {self.max_per_user} per user"
            )

    def acquire(self, username: str) -> Slot:
        self.check(username)
        self._total += 1
        self._per_user[username] = self._per_user.get(username, 0) + 1
        return Slot(self, username)

    def _release(self, username: str) -> None:
        self._total -= 1
        left = self._per_user.get(username, 0) - 1
        if left > 0:
            self._per_user[username] = left
        else:
            self._per_user.pop(username, None)


# -- all of it, for one agent -------------------------------------------------------------------


@dataclass(frozen=True)
class GuardOptions:
    """Limits of one agent (the ``qstrata agent`` options of the same names)."""

    max_sessions: int = 64
    """Authenticated sessions in total (and authenticated connections in total)."""
    max_sessions_per_user: int | None = 32
    """Per user; None: only the total applies."""
    max_unauthenticated: int = 32
    """Connections still authenticating; beyond it new ones are dropped (or evict an old one)."""
    eviction_age: float = 0.5
    """A pending connection this old may be evicted by a newcomer when the table is full (a
    login needs ~0.1 s here; more over a WAN, where the busiest-source rule protects it)."""
    backoff_free_failures: int = 5
    backoff_base_delay: float = 0.5
    backoff_max_delay: float = 8.0
    backoff_forget_after: float = 600.0


class LoginGuard:
    """The login protection of one agent, shared by its front ends.

    ``sessions`` counts protocol sessions (NETCONF sessions; later gNMI streams), while
    ``connections`` counts authenticated transport connections (an SSH connection that has
    logged in but opened no session yet still holds resources). Both use the same caps."""

    def __init__(self, options: GuardOptions | None = None, *, clock: Clock = time.monotonic) -> None:
        self.options = options = options or GuardOptions()
        self.backoff = FailureBackoff(
            free_failures=options.backoff_free_failures,
            base_delay=options.backoff_base_delay,
            max_delay=options.backoff_max_delay,
            forget_after=options.backoff_forget_after,
            clock=clock,
        )
        self.pending: PendingConnections = PendingConnections(
            options.max_unauthenticated, eviction_age=options.eviction_age, clock=clock
        )
        self.connections = SessionLimits(options.max_sessions, options.max_sessions_per_user, noun="sessions")
        self.sessions = SessionLimits(options.max_sessions, options.max_sessions_per_user, noun="sessions")
