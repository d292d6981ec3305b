"""NATS JetStream output: every normalized update, alarm and target status, at least once.

Delivery: each message is published with a ``Nats-Msg-Id`` and counted as delivered only when
JetStream acknowledges it (the message is then in the stream's file store). A publish that fails
or gets no ack (server down, restarting, slow) is retried with the same id, forever, with
backoff; meanwhile new batches wait in the output's bounded queue (the pipeline drops the oldest
when it is full, and counts them). So: no acknowledged update is ever lost, an update is lost
only if the queue overflows (counted in the health view), and an update may be stored twice only
if its ack was lost and the retry came after JetStream's duplicate window (2 min) -- consumers
recognise that by the message id, and the embedded store by (series, timestamp).

Throughput: updates of one target go in messages of up to `max_updates` (JSON), published with
up to `window` acks outstanding.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any

import nats

from ..natsutil import (
    MSG_ID,
    PREFIX,
    RULE,
    STREAM,
    close,
    connect,
    encode_alarm,
    encode_status,
    encode_updates,
    ensure_stream,
    subject_token,
)

if TYPE_CHECKING:
    from ..model import Batch
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.nats")


class NatsOutput:
    name = "nats"

    def __init__(self, url: str, *, prefix: str = PREFIX, stream: str = STREAM, window: int = 64,
                 max_updates: int = 1000, ack_timeout: float = 2.0, instance: str | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.stream = stream
        self.window = window
        self.max_updates = max_updates
        self.ack_timeout = ack_timeout
        self.instance = instance
        self.boot = f"{random.getrandbits(48):012x}"
        self._seq = 0
        self.nc = None
        self.js = None
        self.acked = 0
        self.duplicates = 0
        self.retries = 0
        self.messages_acked = 0
        self.unpublished = 0
        """Messages given up at shutdown (never acknowledged)."""
        self.last_error = ""

    async def start(self, pipeline: Pipeline) -> None:
        self.instance = self.instance or pipeline.instance
        self.nc = await connect(self.url, f"qstrata-collector-{self.instance}", purpose="output")
        self.js = self.nc.jetstream()
        await ensure_stream(self.js, self.prefix, self.stream)
        log.info("nats: publishing to %s (stream %s, subjects %s.>)", self.url, self.stream, self.prefix)

    def _id(self) -> str:
        self._seq += 1
        return f"{self.instance}.{self.boot}.{self._seq}"

    def messages(self, batches: list[Batch]) -> list[tuple[str, bytes, dict[str, str], int]]:
        """(subject, payload, headers, updates carried) for a list of batches, ids assigned."""
        out = []
        for batch in batches:
            by_target: dict[str, list[list[Any]]] = {}
            for s, v, t in zip(batch.series, batch.values, batch.ts, strict=True):
                by_target.setdefault(s.target, []).append([s.path, v, t])
            for target, rows in by_target.items():
                subject = f"{self.prefix}.telemetry.{subject_token(target or '_collector')}"
                for i in range(0, len(rows), self.max_updates):
                    chunk = rows[i:i + self.max_updates]
                    out.append((subject, encode_updates(target, chunk), {MSG_ID: self._id()}, len(chunk)))
            for alarm in batch.alarms:
                out.append((f"{self.prefix}.alarms.{subject_token(alarm.agent)}", encode_alarm(alarm),
                            {MSG_ID: self._id(), RULE: alarm.rule}, 0))
            for status in batch.statuses:
                out.append((f"{self.prefix}.status.{subject_token(status.target)}", encode_status(status),
                            {MSG_ID: self._id()}, 0))
        return out

    async def write(self, batches: list[Batch]) -> None:
        messages = self.messages(batches)
        acked_before = self.messages_acked
        gate = asyncio.Semaphore(self.window)

        async def one(subject: str, payload: bytes, headers: dict[str, str], n: int) -> None:
            async with gate:
                await self._publish(subject, payload, headers)
            self.acked += n
            self.messages_acked += 1

        pending = len(messages)
        try:
            await asyncio.gather(*(one(*m) for m in messages))
        except asyncio.CancelledError:  # shutdown: what was not acknowledged is counted
            self.unpublished += pending - (self.messages_acked - acked_before)
            raise

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Until JetStream acknowledges this message (same id on every attempt)."""
        delay = 0.05
        while True:
            try:
                ack = await self.js.publish(subject, payload, timeout=self.ack_timeout, headers=headers)
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                self.retries += 1
                text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if text != self.last_error:
                    self.last_error = text
                    log.warning("nats: publish to %s not acknowledged (%s); retrying", self.url, text)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
                continue
            if ack.duplicate:
                self.duplicates += 1
            if self.last_error:
                log.info("nats: publishing again to %s", self.url)
                self.last_error = ""
            return

    def abandon(self, batches: list[Batch]) -> None:
        """Batches still queued at shutdown, which will never be published: counted."""
        self.unpublished += len(self.messages(batches))

    async def stop(self) -> None:
        connected = bool(self.nc and self.nc.is_connected)
        if self.unpublished or not connected:  # an outage at shutdown is always accounted for, 0 included
            log.log(logging.ERROR if self.unpublished else logging.INFO,
                    "nats: %d messages could not be published (%s: %s)%s", self.unpublished, self.url,
                    "not acknowledged" if connected else "unreachable", "; they are lost" if self.unpublished else "")
        if self.nc is not None:
            await close(self.nc)

    def health(self) -> dict[str, Any]:
        connected = bool(self.nc and self.nc.is_connected)
        return {"url": self.url, "connected": connected, "reconnects": self.nc.stats["reconnects"] if self.nc else 0,
                "last_error": self.last_error, "acked_updates": self.acked,
                "acked_messages": self.messages_acked,
                "unpublished_messages": self.unpublished, "duplicates": self.duplicates, "retries": self.retries}
