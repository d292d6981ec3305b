"""Login protection (agents/access/guard.py) with a fake clock: back-off, pending connections, caps."""

from __future__ import annotations

import asyncio
import time

import pytest
from qstrata.agents.access.guard import (
    FailureBackoff,
    GuardOptions,
    LimitExceeded,
    LoginGuard,
    PendingConnections,
    SessionLimits,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------- back-off


@pytest.mark.parametrize("failures,penalty", [(0, 0), (2, 0), (3, 0), (4, 0.5), (5, 1.0), (6, 2.0), (7, 4.0),
                                              (8, 5.0), (50, 5.0), (10_000, 5.0)])
def test_penalty_grows_exponentially_after_free_failures(failures, penalty) -> None:
    backoff = FailureBackoff(free_failures=3, base_delay=0.5, max_delay=5.0)
    assert backoff.penalty(failures) == penalty


def test_delay_counts_from_the_last_failure() -> None:
    clock = Clock()
    backoff = FailureBackoff(free_failures=0, base_delay=1.0, max_delay=8.0, clock=clock)
    assert backoff.delay("10.0.0.1") == 0
    backoff.failed("10.0.0.1", "admin")
    assert backoff.delay("10.0.0.1") == 1.0
    clock.now += 0.25
    assert backoff.delay("10.0.0.1") == 0.75
    backoff.failed("10.0.0.1", "admin")
    assert backoff.delay("10.0.0.1") == 2.0
    assert backoff.delay("10.0.0.2") == 0  # per source address
    clock.now += 2.0
    assert backoff.delay("10.0.0.1") == 0  # whoever waits is not delayed further


def test_success_clears_only_that_users_failures() -> None:
    clock = Clock()
    backoff = FailureBackoff(free_failures=0, base_delay=1.0, clock=clock)
    for _ in range(3):
        backoff.failed("10.0.0.1", "admin")
    backoff.failed("10.0.0.1", "mallory")
    assert backoff.failures("10.0.0.1") == 4
    backoff.succeeded("10.0.0.1", "mallory")  # an attacker's own account does not reset admin's guesses
    assert backoff.failures("10.0.0.1") == 3
    backoff.succeeded("10.0.0.1", "admin")  # the real admin, who mistyped
    assert backoff.failures("10.0.0.1") == 0 and len(backoff) == 0


def test_memory_is_bounded() -> None:
    clock = Clock()
    backoff = FailureBackoff(max_sources=100, max_users_per_source=2, forget_after=60, clock=clock)
    for i in range(1000):
        backoff.failed(f"10.0.{i // 256}.{i % 256}", "admin")
    assert len(backoff) == 100
    assert backoff.failures("10.0.3.231") == 1  # the most recent are kept
    assert backoff.failures("10.0.0.0") == 0
    for i in range(50):  # many usernames from one address: counted, not all remembered
        backoff.failed("10.9.9.9", f"user{i}")
    assert backoff.failures("10.9.9.9") == 50
    backoff.succeeded("10.9.9.9", "user49")
    assert backoff.failures("10.9.9.9") == 50
    clock.now += 61
    assert backoff.failures("10.9.9.9") == 0  # forgotten after a quiet minute


def test_wait_sleeps_the_delay() -> None:
    backoff = FailureBackoff(free_failures=0, base_delay=0.2)
    backoff.failed("10.0.0.1", "admin")

    async def scenario() -> tuple[float, float]:
        start = time.monotonic()
        waited = await backoff.wait("10.0.0.1")
        return waited, time.monotonic() - start

    waited, elapsed = asyncio.run(scenario())
    assert 0.15 < waited <= 0.2 and elapsed >= waited - 0.01


# ---------------------------------------------------------------------------- pending connections


def test_pending_connections_are_bounded() -> None:
    clock = Clock()
    pending: PendingConnections[str] = PendingConnections(3, eviction_age=1.0, clock=clock)
    assert [pending.admit(f"c{i}", "10.0.0.1") for i in range(3)] == [(True, None)] * 3
    assert pending.admit("c3", "10.0.0.1") == (False, None)  # all young: the newcomer is dropped at once
    assert len(pending) == 3 and "c3" not in pending
    clock.now += 1.0
    assert pending.admit("c4", "10.0.0.1") == (True, "c0")  # the oldest stale one makes room
    assert "c0" not in pending and "c4" in pending
    pending.done("c1")  # authenticated: no longer counted
    assert pending.admit("c5", "10.0.0.2") == (True, None)


def test_eviction_prefers_the_busiest_source() -> None:
    clock = Clock()
    pending: PendingConnections[str] = PendingConnections(4, eviction_age=0.5, clock=clock)
    pending.admit("user", "192.0.2.7")  # the oldest, but its address is not the one flooding
    clock.now += 0.1
    for i in range(3):
        pending.admit(f"flood{i}", "198.51.100.1")
    clock.now += 1.0
    assert pending.admit("new", "203.0.113.5") == (True, "flood0")
    assert "user" in pending


# ---------------------------------------------------------------------------- session caps


def test_session_limits() -> None:
    limits = SessionLimits(3, 2)
    a1, a2 = limits.acquire("alice"), limits.acquire("alice")
    with pytest.raises(LimitExceeded, match="too many sessions for user alice: this server allows 2 per user"):
        limits.acquire("alice")
    b1 = limits.acquire("bob")
    with pytest.raises(LimitExceeded, match="too many sessions: this server allows 3$"):
        limits.acquire("carol")
    assert (limits.count(), limits.count("alice"), limits.count("bob")) == (3, 2, 1)
    a1.release()
    a1.release()  # idempotent
    assert limits.count() == 2
    limits.check("carol")
    limits.acquire("alice")
    b1.release()
    a2.release()
    assert limits.count() == 1 and limits.count("bob") == 0


@pytest.mark.parametrize("kwargs", [{"max_total": 0}, {"max_total": 1, "max_per_user": 0}])
def test_session_limits_must_be_positive(kwargs) -> None:
    with pytest.raises(ValueError):
        SessionLimits(**kwargs)


def test_guard_uses_its_options() -> None:
    guard = LoginGuard(GuardOptions(max_sessions=5, max_sessions_per_user=None, max_unauthenticated=7))
    assert guard.pending.limit == 7
    for _ in range(5):
        guard.sessions.acquire("admin")
    with pytest.raises(LimitExceeded):
        guard.sessions.acquire("admin")
    guard.connections.acquire("admin")  # counted separately from sessions
