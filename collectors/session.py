"""One target's gNMI session: connect, Subscribe (STREAM), feed the pipeline, and when it ends,
decide -- from the gRPC status -- whether to come back soon, later, or not until told.

The retry policy is pure (`RetryPolicy`, `classify`) so it is tested without sockets; the loop
(`TargetSession.run`) is the one place that touches grpc.aio. One loop for every way a session
ends (openconfig/gnmi's manager):

* transport trouble (UNAVAILABLE, a dropped stream, a watchdog that saw no sync_response, an
  agent that ended the stream) -> `backoff`: exponential with jitter, from 0.2 s up to 5 s, reset
  once a session has delivered its sync_response;
* the request or the login is wrong (INVALID_ARGUMENT, UNIMPLEMENTED, NOT_FOUND,
  PERMISSION_DENIED, UNAUTHENTICATED, a TLS handshake the CA does not vouch for, an unreadable
  credentials or CA file) -> `failed` with the reason: the same request would fail the same way,
  so it is retried only every 60 s, or at once when the target's configuration changes (the
  input then starts a new session).

The reason says what happened, in the words an operator uses (`classify`): connection refused
(nothing listens), timed out (the agent took the connection but does not answer: stopped,
overloaded -- also a stream whose keepalive pings go unanswered), connection lost (an
established stream dropped), TLS mismatch (which side speaks TLS), a TLS handshake the CA does
not vouch for, login refused (wrong password), unknown target (a gateway serving other agents).

Every change is reported as a `TargetStatus` snapshot through `Pipeline.target_status`; counters
(duplicates, last update) at most once a second while updates flow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from qstrata.bindings.wire.address import host_port
from qstrata.bindings.wire.auth import call_metadata
from qstrata.bindings.wire.tls import explain_connect_failure

from . import tlsprobe
from .config import TargetConfig
from .gnmi_codec import JSON_IETF, PROTO, ResponseDecoder, subscribe_request
from .model import SubscriptionState, TargetStatus
from .tlsprobe import Speaks

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.gnmi")



def channel_options(connect_timeout: float, keepalive: float, keepalive_timeout: float) -> tuple[tuple[str, int], ...]:
    """gRPC channel arguments for one session's channel. gRPC takes its connect timeout (TCP plus
    TLS and HTTP/2 set-up) from ``min_reconnect_backoff_ms``: at 0.2 s a busy agent's TLS handshake
    "failed" and a stopped agent looked like a TLS error. A ping unanswered for
    ``http2.ping_timeout_ms`` ends the transport (``keepalive_timeout_ms`` alone did not, with
    grpcio 1.85): a stopped agent is found within keepalive + keepalive_timeout seconds."""
    return (
        ("grpc.keepalive_time_ms", int(keepalive * 1000)),
        ("grpc.keepalive_timeout_ms", int(keepalive_timeout * 1000)),
        ("grpc.http2.ping_timeout_ms", int(keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.enable_retries", 0),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", int(connect_timeout * 1000)),
    )


FATAL_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND,
                         grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE})
_TLS_WORDS = ("handshake", "ssl", "certificate", "tls")
STATUS_INTERVAL = 1.0
"""Seconds between counter-only status snapshots while updates flow."""


@dataclass(frozen=True)
class RetryPolicy:
    initial: float = 0.2
    factor: float = 1.6
    maximum: float = 5.0
    jitter: float = 0.2
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""
    failed: float = 60.0
    """Delay after a failure that would repeat itself (wrong password, bad path, bad CA)."""
    sync_timeout: float = 30.0
    """Watchdog: a session without sync_response this many seconds after it started is restarted."""
    connect_timeout: float = 10.0
    """Seconds for TCP, TLS and HTTP/2 set-up before an attempt counts as timed out."""
    keepalive: float = 10.0
    """Seconds between keepalive pings on a stream (the agents permit them)."""
    keepalive_timeout: float = 5.0
    """Seconds an unanswered ping waits before the stream counts as timed out."""

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0-based) after transport trouble."""
        base = min(self.maximum, self.initial * self.factor ** attempt)
        return base * (1 + self.jitter * (2 * (rng or random).random() - 1))


@dataclass(frozen=True)
class Outcome:
    """How a session ended: `state` is what the target is now (`backoff` or `failed`)."""

    state: SubscriptionState
    reason: str


def classify(code: grpc.StatusCode | None, details: str, *, tls: bool | None = None, established: bool = False,
             address: str = "", connect_timeout: float | None = None, speaks: Speaks | None = None) -> Outcome:
    """How a session ended -> retry soon (`backoff`) or not until told (`failed`), with the reason
    in plain words. `tls`: whether the session offered TLS (None: unknown); `established`: whether
    the agent had answered in this session (a dropped stream is not a failed set-up); `address`
    and `connect_timeout` only make the reason more precise; `speaks`: what the port answered a TLS
    handshake of our own with (`tlsprobe`), when gRPC said only that the socket closed."""
    text = details or (code.name if code else "the stream ended")
    if code is None:
        return Outcome("backoff", text)
    low = text.lower()
    where = f" {address}" if address else ""
    if code == grpc.StatusCode.UNAVAILABLE:
        if established:
            if "ping timeout" in low or "keepalive" in low:
                return Outcome("backoff", f"timed out: the agent stopped answering (keepalive ping unanswered: {text})")
            return Outcome("backoff", f"connection lost: {text}")
        if "connection refused" in low:
            return Outcome("backoff", f"connection refused: nothing listens on{where or ' that address'} "
                                      f"(is the agent running?)")
        if "timed out" in low or "deadline" in low or "endpoint closing" in low:
            within = f" within {connect_timeout:g} s" if connect_timeout else ""
            return Outcome("backoff", f"timed out: {address or 'the agent'} took the connection but did not answer"
                                      f"{within} (is the agent stopped or overloaded?)")
        if tls is not None and "socket closed" in low:
            return _closed_in_setup(text, tls, speaks)
        if tls is not None:
            meaning = explain_connect_failure(text, tls=tls)
            if "wrong_version_number" in low:
                return Outcome("failed", f"TLS mismatch: the collector speaks TLS, {meaning} ({text})")
            if meaning is not None and "socket closed" in low:  # may also be an agent going away: keep retrying
                side = "the collector speaks TLS" if tls else "the collector speaks plain text"
                return Outcome("backoff", f"TLS mismatch? {side}; {meaning} ({text})")
            if meaning is not None:
                return Outcome("failed", f"TLS handshake failed: {meaning} ({text})")
        if any(w in low for w in _TLS_WORDS):
            return Outcome("failed", f"TLS handshake failed (is tls-ca the agent's CA, is it serving TLS?): {text}")
        return Outcome("backoff", f"unreachable: {text}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Outcome("failed", f"login refused: {text}")
    if code == grpc.StatusCode.NOT_FOUND and low.startswith("unknown target"):
        return Outcome("failed", f"{text}{' at' + where if where else ''} (it serves other targets: check gnmi-target)")
    if code in FATAL_CODES:
        return Outcome("failed", f"{code.name}: {text}")
    return Outcome("backoff", f"{code.name}: {text}")


def _closed_in_setup(text: str, tls: bool, speaks: Speaks | None) -> Outcome:
    """The target closed the connection during set-up: what the port speaks says why."""
    if tls and speaks == "plain":
        return Outcome("failed", f"TLS mismatch: the collector speaks TLS, the target does not speak TLS on this port "
                                 f"(it serves plain text: connect without TLS) ({text})")
    if not tls and speaks in ("tls", "mutual-tls"):
        return Outcome("failed", "TLS mismatch: the collector speaks plain text, the target serves TLS on this port "
                                 f"(give its CA: tls-ca, or the credentials file's ca) ({text})")
    if tls and speaks == "mutual-tls":
        return Outcome("failed", "TLS refused: the target requires a client certificate (mutual TLS) and the collector "
                                 f"has none to give ({text})")
    return Outcome("backoff", f"connection lost during set-up: the target closed it ({text})")


class SetupError(Exception):
    """Something on the collector's side (a file) stops a session from being opened."""


def read_setup(target: TargetConfig) -> tuple[tuple[tuple[str, str], ...], grpc.ChannelCredentials | None]:
    """Call metadata and channel credentials, read now (agents rotate passwords; the file is the
    truth). TLS: tls-ca, else the CA the agent's credentials file names (unless insecure)."""
    try:
        username, password = target.credentials()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SetupError(f"cannot read credentials {target.credentials_file}: {getattr(exc, 'strerror', None) or exc}"
                         ) from None
    metadata = call_metadata(username, password)
    ca: Path | None = target.tls_ca
    if ca is None and target.insecure is not True and target.credentials_file is not None:
        try:
            named = json.loads(target.credentials_file.read_text(encoding="utf-8")).get("ca")
        except (OSError, ValueError, AttributeError):
            named = None
        if named:
            ca = Path(named) if Path(named).is_absolute() else target.credentials_file.parent / named
    if target.insecure is True or (ca is None and target.insecure is None):
        return metadata, None
    if ca is None:
        return metadata, grpc.ssl_channel_credentials()
    try:
        return metadata, grpc.ssl_channel_credentials(ca.read_bytes())
    except OSError as exc:
        raise SetupError(f"cannot read the TLS CA {ca}: {exc.strerror or exc}") from None


class TargetSession:
    """Collects one target until cancelled. Counters survive reconnects (one object per target,
    kept by the input across configuration changes)."""

    def __init__(self, config: TargetConfig, pipeline: Pipeline, policy: RetryPolicy | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.policy = policy or RetryPolicy()
        self.state: SubscriptionState = "connecting"
        self.reachable = False
        self.synced = False
        self.reason = ""
        self.reconnects = 0
        self.sessions = 0
        self.attempts = 0
        """Subscribe calls made (connection attempts), successful or not."""
        self.duplicates = 0
        self.received = 0
        self.last_update_ns = 0
        self.closed = False
        """Set by the input when the target is removed: nothing more is reported."""
        self.encoding = PROTO
        self._attempt = 0
        self._established = False
        """The agent answered in the current session (its end is then a lost connection)."""
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ reporting
    def report(self) -> None:
        if self.closed:
            return
        self.pipeline.target_status(TargetStatus(
            self.config.name, self.reachable, self.state, self.reason, self.synced, self.reconnects,
            self.duplicates, time.time_ns(), self.last_update_ns))

    def _set(self, state: SubscriptionState, reachable: bool, reason: str = "") -> None:
        self.state, self.reachable, self.reason = state, reachable, reason
        if not reachable:
            self.synced = False
        self.report()

    def retry_now(self) -> None:
        """Cut a backoff or failed wait short (the configuration changed)."""
        self._wake.set()

    def health(self) -> dict[str, object]:
        return {"state": self.state, "reachable": self.reachable, "synced": self.synced, "reason": self.reason,
                "reconnects": self.reconnects, "attempts": self.attempts, "updates_received": self.received, "duplicates": self.duplicates,
                "last_update_ns": self.last_update_ns, "encoding": "PROTO" if self.encoding == PROTO else "JSON_IETF"}

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        name = self.config.name
        while True:
            self._set("connecting", False, self.reason)
            outcome = await self._session()
            if outcome is None:  # the agent does not speak PROTO: again at once with JSON_IETF
                continue
            if outcome.state == "failed":
                delay = self.policy.failed
                log.error("target %s: %s; not retried for %g s (or until its configuration changes)", name,
                          outcome.reason, delay)
            else:
                delay = self.policy.delay(self._attempt)
                self._attempt += 1
                level = logging.WARNING if self._attempt <= 1 or self._attempt % 20 == 0 else logging.DEBUG
                log.log(level, "target %s: %s; retrying in %.1f s (attempt %d)", name, outcome.reason, delay,
                        self._attempt)
            self._set(outcome.state, False, outcome.reason)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def _session(self) -> Outcome | None:
        cfg = self.config
        self.attempts += 1
        try:
            metadata, creds = read_setup(cfg)
        except SetupError as exc:
            return Outcome("failed", str(exc))
        address = host_port(cfg.address or "", cfg.port or 0)
        p = self.policy
        options = channel_options(p.connect_timeout, p.keepalive, p.keepalive_timeout)
        channel = (grpc.aio.secure_channel(address, creds, options=options) if creds is not None
                   else grpc.aio.insecure_channel(address, options=options))
        self._established = False
        request = subscribe_request(cfg.gnmi_target or cfg.name, cfg.subscriptions, self.encoding)
        decoder = ResponseDecoder(cfg.name)
        call = None
        try:
            subscribe = channel.stream_stream("/gnmi.gNMI/Subscribe",
                                              request_serializer=gnmi_pb2_serialize, response_deserializer=None)
            call = subscribe(iter((request,)), metadata=metadata)
            return await self._read(call, decoder)
        except grpc.aio.AioRpcError as exc:
            if (exc.code() == grpc.StatusCode.UNIMPLEMENTED and self.encoding == PROTO
                    and "encoding" in (exc.details() or "").lower()):
                log.info("target %s does not send PROTO; subscribing with JSON_IETF", cfg.name)
                self.encoding = JSON_IETF
                return None
            details = exc.details() or ""
            speaks = None
            if exc.code() == grpc.StatusCode.UNAVAILABLE and not self._established and "socket closed" in details.lower():
                speaks = await tlsprobe.probe(cfg.address or "", cfg.port or 0, p.connect_timeout)
            return classify(exc.code(), details, tls=creds is not None, established=self._established,
                            address=address, connect_timeout=p.connect_timeout, speaks=speaks)
        except TimeoutError:
            return Outcome("backoff", f"no sync_response within {self.policy.sync_timeout:g} s (watchdog)")
        finally:
            if call is not None:
                call.cancel()
            await channel.close(grace=None)

    async def _read(self, call, decoder: ResponseDecoder) -> Outcome:
        ingest = self.pipeline.ingest
        loop = asyncio.get_running_loop()
        up = False
        next_report = 0.0
        async with asyncio.timeout(self.policy.sync_timeout) as watchdog:
            while True:
                data = await call.read()
                if data is grpc.aio.EOF:
                    break
                try:
                    decoded = decoder.decode(data)
                except ValueError as exc:
                    return Outcome("backoff", f"bad response: {exc}")
                data = None  # ~80 KB a notification: 400 sessions waiting must not each hold their last one
                if not up:
                    up = True
                    self._established = True
                    self.sessions += 1
                    if self.sessions > 1:
                        self.reconnects += 1
                    self._set("subscribed", True)
                    log.info("target %s: subscribed (%s)", self.config.name,
                             "PROTO" if self.encoding == PROTO else "JSON_IETF")
                if decoded.updates:
                    ingest(decoded.updates)
                    self.received += len(decoded.updates)
                    self.last_update_ns = time.time_ns()
                    self.duplicates += decoded.duplicates
                if decoded.sync and not self.synced:
                    self.synced = True
                    self._attempt = 0
                    watchdog.reschedule(None)
                    self.report()
                    next_report = loop.time() + STATUS_INTERVAL
                elif decoded.error:
                    return Outcome("backoff", f"the agent reported: {decoded.error}")
                elif self.synced and loop.time() >= next_report:
                    next_report = loop.time() + STATUS_INTERVAL
                    self.report()
                decoded = None  # nor its updates (another 30 KB each)
        code = await call.code()
        if code != grpc.StatusCode.OK:
            return classify(code, await call.details() or "", established=up)
        return Outcome("backoff", "the agent ended the subscription")


def gnmi_pb2_serialize(message) -> bytes:
    return message.SerializeToString()
