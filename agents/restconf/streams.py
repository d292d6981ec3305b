"""RFC 8040 s6 event streams: the NETCONF stream as server-sent events.

What the agent's bus carries becomes notifications here: commits to running are RFC 6470
``netconf-config-change``, device notifications (the ETSI ``sdqkdn_*`` a twin raises) pass as
they are. Each is kept in a bounded history (`HISTORY`) for ``start-time``/``stop-time``
replay (RFC 8040 s4.8.7-8) and handed to every subscriber's bounded queue; a subscriber too slow
to keep up is cut off rather than let the queue grow. ``filter`` is an XPath on the
notification's content (s4.8.4). NACM decides per subscriber (RFC 8341 s3.4.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from qstrata.agents.events import CommitEvent, DeviceEvent, EventBus

STREAM = "NETCONF"
HISTORY = 1024
"""Notifications kept for replay."""
QUEUE = 256
"""Notifications a subscriber may have waiting; beyond, it is disconnected."""
_NCN = "ietf-netconf-notifications"
_OPS = {"create": "create", "delete": "delete", "modify": "replace"}


def time_text(unix_ns: int) -> str:
    when = dt.datetime.fromtimestamp(unix_ns / 1e9, dt.UTC)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> int:
    """A date-and-time (already checked by `query`) as Unix nanoseconds."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1e9)


@dataclass(frozen=True)
class Notification:
    time_ns: int
    module: str
    name: str
    content: dict
    """JSON-IETF: ``{"module:name": {...}}``."""


def config_change(event: CommitEvent) -> Notification:
    by: dict = {"server": [None]} if event.username is None else {
        "username": event.username, "session-id": event.session_id or 0}
    edits = [{"target": change.path, "operation": _OPS[change.op]} for change in event.changes]
    body = {"changed-by": by, "datastore": event.datastore, "edit": edits}
    return Notification(event.time_ns or time.time_ns(), _NCN, "netconf-config-change",
                        {f"{_NCN}:netconf-config-change": body})


@dataclass(eq=False)
class Subscriber:
    may_receive: Callable[[Notification], bool]
    queue: asyncio.Queue[Notification | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    """Notifications to write; ``None`` wakes the writer to end the stream."""
    ended: bool = False

    def offer(self, note: Notification) -> None:
        if self.ended or not self.may_receive(note):
            return
        try:
            self.queue.put_nowait(note)
        except asyncio.QueueFull:
            self.ended = True  # cut off: the writer ends the stream when it sees it

    def end(self) -> None:
        """End the stream now (the agent stops, the peer went away): the writer would otherwise
        sleep in its queue until the next notification or keep-alive. A full queue needs no
        wake-up, its writer is not waiting."""
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class StreamHub:
    """The NETCONF stream of one agent."""

    def __init__(self, bus: EventBus) -> None:
        self.history: deque[Notification] = deque(maxlen=HISTORY)
        self.created_ns = time.time_ns()
        self.subscribers: set[Subscriber] = set()
        self.closed = False
        self._unsubscribe = bus.subscribe(self._on_event, CommitEvent, DeviceEvent)

    def close(self) -> None:
        self.closed = True
        self._unsubscribe()
        for sub in tuple(self.subscribers):
            sub.end()

    def _on_event(self, event: CommitEvent | DeviceEvent) -> None:
        if isinstance(event, CommitEvent):
            if event.datastore != "running" or not event.changes:
                return
            note = config_change(event)
        elif event.kind == "notification" and event.data:
            member = next(iter(event.data))
            module, _, name = member.partition(":")
            note = Notification(event.time_ns or time.time_ns(), module, name, event.data)
        else:
            return
        self.history.append(note)
        for sub in tuple(self.subscribers):
            sub.offer(note)

    def replay(self, start_ns: int, stop_ns: int | None) -> list[Notification]:
        return [n for n in self.history if n.time_ns >= start_ns and (stop_ns is None or n.time_ns <= stop_ns)]

    def subscribe(self, may_receive: Callable[[Notification], bool]) -> Subscriber:
        sub = Subscriber(may_receive)
        if self.closed:
            sub.end()
        else:
            self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)


def encode_json(note: Notification) -> str:
    """RFC 8040 s6.4: ``ietf-restconf:notification`` with eventTime and the content."""
    return json.dumps({"ietf-restconf:notification": {"eventTime": time_text(note.time_ns), **note.content}})


def encode_xml(note: Notification, content_xml: str) -> str:
    return ('<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">'
            f"<eventTime>{time_text(note.time_ns)}</eventTime>{content_xml.strip()}</notification>")


def sse_event(text: str) -> bytes:
    """One server-sent event: every line of the message as a ``data:`` field (W3C EventSource)."""
    return ("".join(f"data: {line}\n" for line in text.splitlines() or [""]) + "\n").encode()
