"""The in-process event bus from an agent to its front ends, and the events on it.

The datastore publishes what it committed, the device driver what it reported, front ends who
came and went. NETCONF turns them into RFC 5277/6470 notifications, gNMI into on-change
updates, without either importing the other or any device code. Subscribers are plain
callables run synchronously in publish order: they must only record or enqueue (never block,
never await); a subscriber that raises is logged and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from qstrata.bindings.diff import Change

log = logging.getLogger("qstrata.events")

JsonTree = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommitEvent:
    """A transaction that changed a datastore (netconf-config-change, gNMI on-change)."""

    datastore: str
    changes: tuple[Change, ...]
    session_id: int | None = None
    username: str | None = None
    time_ns: int = 0
    """Wall clock (ns since the epoch) when the change was installed."""


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something the device reports on its own.

    kind="notification": `data` is a JSON-IETF tree of one YANG notification, e.g.
    ``{"etsi-qkd-sdn-node:sdqkdn_link_down": {"qkd_link": {...}}}``.
    kind="state": operational state changed under `paths`; the core's operational read compares
    the state under them with what it handed out last and gives subscribers the change.
    `time_ns` is the device's clock (a twin's simulated nanoseconds, see `DeviceClock`).
    """

    kind: Literal["notification", "state"]
    data: JsonTree = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    time_ns: int = 0


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A management session started or ended (RFC 6470 netconf-session-start/-end)."""

    kind: Literal["start", "end"]
    session_id: int
    username: str
    source_host: str | None = None
    transport: str = "netconf-ssh"
    termination_reason: str | None = None
    """closed, killed, dropped, timeout, bad-hello, other (RFC 6470)."""
    killed_by: int | None = None


@dataclass(frozen=True, slots=True)
class ConfirmedCommitEvent:
    """A confirmed commit started, was extended, completed, was cancelled or timed out (RFC 6470
    netconf-confirmed-commit)."""

    kind: Literal["start", "cancel", "timeout", "extend", "complete"]
    session_id: int | None
    username: str | None
    timeout: int | None = None
    persist_id: str | None = None


@dataclass(frozen=True, slots=True)
class CapabilityEvent:
    """The server's capabilities changed (RFC 6470 netconf-capability-change)."""

    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()


Event = CommitEvent | DeviceEvent | SessionEvent | ConfirmedCommitEvent | CapabilityEvent
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, tuple[type, ...] | None]] = []

    def subscribe(self, subscriber: Subscriber, *kinds: type) -> Callable[[], None]:
        """Call `subscriber` for every event (of the given types); returns the unsubscribe."""
        entry = (subscriber, kinds or None)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for subscriber, kinds in tuple(self._subscribers):
            if kinds is not None and not isinstance(event, kinds):
                continue
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed", subscriber)

    def has_subscribers(self, kind: type) -> bool:
        return any(kinds is None or kind in kinds for _, kinds in self._subscribers)
