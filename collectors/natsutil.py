"""NATS JetStream plumbing shared by the NATS output, the NATS input and the target leases:
connecting (reconnect forever, errors as log lines, never tracebacks), the stream, and the wire
format of messages.

Subjects (``PREFIX`` is ``qstrata`` by default; dots in target names become ``_``):

    PREFIX.telemetry.TARGET   {"target": T, "updates": [[path, value, timestamp_ns], ...]}
    PREFIX.alarms.AGENT       {"qstrata-telemetry:telemetry": {"alarms": {"alarm": [ENTRY]}}}
                              (header Qstrata-Rule: the rule's name)
    PREFIX.status.TARGET      a TargetStatus as JSON

Every message carries a ``Nats-Msg-Id`` header, ``INSTANCE.BOOT.SEQ``: unique per collector
process, the same on every retry of one message, so JetStream drops a retried message it already
stored (within the stream's duplicate window) and consumers can recognise redeliveries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from .model import Alarm, TargetStatus, Update

log = logging.getLogger("qstrata.collectors.nats")

STREAM = "QSTRATA"
PREFIX = "qstrata"
DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers message ids (its default)."""
MSG_ID = "Nats-Msg-Id"
RULE = "Qstrata-Rule"


class NatsUnavailable(Exception):
    """NATS could not be reached (at start-up) or JetStream is not enabled; one-line message."""


async def connect(url: str, name: str, timeout: float = 5.0, purpose: str = "") -> Client:
    """Connected client that reconnects forever. Errors after start-up are logged (one line, and
    once per outage), naming the connection's `purpose` (a collector may hold several: its output,
    its leases, its input); at start-up an unreachable server raises `NatsUnavailable` after
    `timeout`. Closing the client is not an outage: it is not logged as one."""
    state: dict[str, Any] = {"last_error": "", "down": False, "connected": False, "nc": None}
    where = f"NATS {url}" + (f" ({purpose})" if purpose else "")

    async def error_cb(exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        if text != state["last_error"]:
            state["last_error"] = text
            if state["connected"] and not state["nc"].is_closed:  # at start-up the caller reports it once
                log.warning("%s: %s", where, text)

    async def disconnected_cb() -> None:
        if not state["down"] and not (state["nc"] is not None and state["nc"].is_closed):
            state["down"] = True
            log.warning("%s: disconnected; reconnecting", where)

    async def reconnected_cb() -> None:
        state["down"] = False
        state["last_error"] = ""
        log.info("%s: reconnected", where)

    try:
        nc = await asyncio.wait_for(nats.connect(
            servers=[url], name=name, allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            connect_timeout=2, ping_interval=5, max_outstanding_pings=2, error_cb=error_cb,
            disconnected_cb=disconnected_cb, reconnected_cb=reconnected_cb), timeout)
        state["connected"], state["nc"] = True, nc
        return nc
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        detail = state["last_error"] or str(exc) or type(exc).__name__
        raise NatsUnavailable(f"cannot reach NATS at {url} within {timeout:g} s: {detail}") from None


async def ensure_stream(js: JetStreamContext, prefix: str = PREFIX, stream: str = STREAM,
                        max_age: float | None = None) -> None:
    """Create the stream if it is missing (a file stream over ``PREFIX.>``); an existing one is
    left as the operator configured it."""
    no_js = "the NATS server does not have JetStream enabled (start it with -js)"
    try:
        await js.stream_info(stream)
        return
    except NotFoundError:
        pass
    except (nats.errors.NoRespondersError, ServiceUnavailableError):
        raise NatsUnavailable(no_js) from None
    config = StreamConfig(name=stream, subjects=[f"{prefix}.>"], storage=StorageType.FILE,
                          duplicate_window=DUPLICATE_WINDOW, max_age=max_age)
    try:
        await js.add_stream(config)
    except (nats.errors.NoRespondersError, ServiceUnavailableError):
        raise NatsUnavailable(no_js) from None
    except APIError as exc:
        raise NatsUnavailable(f"cannot create stream {stream}: {exc.description or exc}") from None
    log.info("NATS: created stream %s on %s.>", stream, prefix)


async def close(nc: Client, timeout: float = 5.0) -> None:
    """End a client whatever the server's state: drained (what it holds is flushed) when
    connected, closed at once when not. The NATS client, closed while its server is unreachable,
    writes its pending buffer to a transport it has already closed and raises RuntimeError
    (nats-py 2.x): that is the outage the caller already knows of, not a failure to report."""
    try:
        if nc.is_connected:
            await asyncio.wait_for(nc.drain(), timeout)
            return
    except (TimeoutError, nats.errors.Error, OSError, RuntimeError):
        pass
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.close(), timeout)
    except (TimeoutError, nats.errors.Error, OSError, RuntimeError):
        pass


def subject_token(name: str) -> str:
    return name.replace(".", "_").replace("*", "_").replace(">", "_").replace(" ", "_") or "_"


def encode_updates(target: str, updates: list[list[Any]]) -> bytes:
    return json.dumps({"target": target, "updates": updates}, separators=(",", ":")).encode()


def encode_alarm(alarm: Alarm) -> bytes:
    return json.dumps({"qstrata-telemetry:telemetry": {"alarms": {"alarm": [alarm.to_yang()]}}},
                      separators=(",", ":")).encode()


def encode_status(status: TargetStatus) -> bytes:
    return json.dumps(dataclasses.asdict(status), separators=(",", ":")).encode()


def decode(subject: str, data: bytes, headers: dict[str, str] | None, prefix: str = PREFIX
           ) -> tuple[str, Any]:
    """("telemetry", [Update]) | ("alarms", [Alarm]) | ("status", TargetStatus); ValueError when
    the message is not one of ours."""
    kind = subject[len(prefix) + 1:].split(".", 1)[0] if subject.startswith(prefix + ".") else ""
    body = json.loads(data)
    if kind == "telemetry":
        target = body["target"]
        return kind, [Update(target, p, v, int(t)) for p, v, t in body["updates"]]
    if kind == "alarms":
        rule = (headers or {}).get(RULE, "")
        return kind, [Alarm.from_yang(e, rule) for e in body["qstrata-telemetry:telemetry"]["alarms"]["alarm"]]
    if kind == "status":
        return kind, TargetStatus(**body)
    raise ValueError(f"not a qstrata subject: {subject}")
