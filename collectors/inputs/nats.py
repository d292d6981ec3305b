"""NATS JetStream input (`qstrata collect --from-nats URL`): build a store (or any output) from the
stream other collectors publish to.

A durable pull consumer reads the stream from where it left off. Messages are acknowledged only
after every output has written what they carried (`Pipeline.drained`): the stream is the buffer,
so nothing is dropped, and after a crash the unacknowledged messages come again. Duplicates are
recognised by their ``Nats-Msg-Id`` (the last `dedup_window` ids are remembered) and, past that,
by the store itself (a sample is keyed by series and timestamp). After a crash, the messages the
dead process had fetched are redelivered `ACK_WAIT` seconds later.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ..model import Update
from ..natsutil import MSG_ID, PREFIX, STREAM, close, connect, decode, ensure_stream
from ..tasks import cancel_and_wait

if TYPE_CHECKING:
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.nats")

ACK_WAIT = 10.0
"""Seconds before JetStream redelivers a message fetched but not acknowledged: after a crash, what
the dead consumer had in hand comes back this long after. A fetch (64 messages of at most 1,000
updates) is written well within it."""


class NatsInput:
    name = "nats"

    def __init__(self, url: str, pipeline: Pipeline, *, durable: str = "qstrata-store", prefix: str = PREFIX,
                 stream: str = STREAM, fetch: int = 64, dedup_window: int = 200_000) -> None:
        self.url = url
        self.pipeline = pipeline
        self.durable = durable
        self.prefix = prefix
        self.stream = stream
        self.fetch = fetch
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.dedup_window = dedup_window
        self.nc = None
        self._task: asyncio.Task | None = None
        self.messages = 0
        self.duplicates = 0
        self.rejected = 0
        self.last_error = ""

    async def start(self) -> None:
        self.nc = await connect(self.url, f"qstrata-collector-{self.pipeline.instance}-in", purpose="input")
        js = self.nc.jetstream()
        await ensure_stream(js, self.prefix, self.stream)
        config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT, max_ack_pending=20_000)
        self.sub = await js.pull_subscribe(f"{self.prefix}.>", durable=self.durable, stream=self.stream, config=config)
        self._task = asyncio.create_task(self._run(), name="nats-input")
        log.info("nats input: consuming %s (stream %s, durable consumer %s)", self.url, self.stream, self.durable)

    def _is_duplicate(self, msg_id: str | None) -> bool:
        if not msg_id:
            return False
        if msg_id in self._seen:
            return True
        self._seen[msg_id] = None
        if len(self._seen) > self.dedup_window:
            self._seen.popitem(last=False)
        return False

    async def _run(self) -> None:
        while True:
            try:
                msgs = await self.sub.fetch(self.fetch, timeout=1)
            except asyncio.CancelledError:
                raise
            except nats.errors.TimeoutError:
                continue
            except (nats.errors.Error, OSError) as exc:
                text = str(exc) or type(exc).__name__
                if text != self.last_error:
                    self.last_error = text
                    log.warning("nats input: fetch failed (%s); retrying", text)
                await asyncio.sleep(0.5)
                continue
            self.last_error = ""
            self._ingest(msgs)
            await self.pipeline.drained()  # written by every output: now the stream may forget them
            for msg in msgs:
                try:
                    await msg.ack()
                except (nats.errors.Error, OSError):
                    pass  # redelivered later; recognised as a duplicate

    def _ingest(self, msgs: list[Any]) -> None:
        updates: list[Update] = []
        for msg in msgs:
            self.messages += 1
            if self._is_duplicate((msg.headers or {}).get(MSG_ID)):
                self.duplicates += 1
                continue
            try:
                kind, payload = decode(msg.subject, msg.data, msg.headers, self.prefix)
            except (ValueError, KeyError, TypeError) as exc:
                self.rejected += 1
                log.warning("nats input: message on %s ignored: %s", msg.subject, exc)
                continue
            if kind == "telemetry":
                updates.extend(payload)
                continue
            if updates:  # keep the order: updates before a status or alarm go first
                self.pipeline.ingest(updates)
                updates = []
            if kind == "alarms":
                self.pipeline.ingest_alarms(payload)
            else:
                self.pipeline.target_status(payload)
        if updates:
            self.pipeline.ingest(updates)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self.nc is not None:
            await close(self.nc)

    def health(self) -> dict[str, Any]:
        return {"url": self.url, "connected": bool(self.nc and self.nc.is_connected), "messages": self.messages,
                "duplicates": self.duplicates, "rejected": self.rejected, "last_error": self.last_error}
