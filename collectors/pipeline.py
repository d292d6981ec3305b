"""inputs -> normalize -> processors -> outputs, with a bounded queue per output.

Ingestion (`Pipeline.ingest`) is synchronous and cheap: normalize the list of updates into one
`Batch`, let the processors look at it, append it to every output's queue, return. Nothing on
that path awaits, so a slow output (NATS down, a stalled disk) can never slow an input down.
Each output has its own `OutputQueue`: a deque of batches bounded in items; when it is full the
oldest batches are dropped (fresh telemetry is worth more than old) and counted, and the health
view says so. A worker task per output drains its queue, handing the output everything queued
at once so that it can write in large transactions.

Back-pressure instead of drops is available to inputs that can wait (the NATS input: the stream
is the buffer): `await pipeline.drained()` returns once every output has written what was
ingested before the call.

Alarm transitions and action results are recorded in one order, the order batches are emitted
(a batch's alarms before its action runs): logged, kept in `events` (what `qstrata up` shows),
handed to every output in that order (the store's alarm log). A processor that learns something
later (an action's result) records it with `record`, never behind the back of the outputs.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

from .model import ActionRun, Alarm, Batch, TargetStatus, Update
from .normalize import Normalizer
from .outputs import Output
from .processors import Processor
from .tasks import cancel_and_wait

log = logging.getLogger("qstrata.collectors.pipeline")
alarm_log = logging.getLogger("qstrata.collectors.alarms")

DEFAULT_QUEUE_ITEMS = 500_000
"""Per output. At 400 targets x 500 values every 10 s that is 25 s of telemetry."""
MAX_WRITE_ITEMS = 50_000
"""Items handed to one `Output.write` call."""
EVENTS_KEPT = 1000
"""Alarm transitions and action runs kept in `Pipeline.events` for readers that poll it."""


UNREACHABLE_DRAIN = 2.0
"""Seconds a disconnected output gets at shutdown to deliver what is queued (its server may be
back by then); a connected one gets the pipeline's whole timeout."""


class OutputQueue:
    """One output's bounded queue and the worker that drains it."""

    def __init__(self, output: Output, max_items: int = DEFAULT_QUEUE_ITEMS, *,
                 max_write_items: int = MAX_WRITE_ITEMS, retry_delays: tuple[float, ...] = (0.1, 0.5, 1, 2, 5)) -> None:
        self.output = output
        self.max_items = max_items
        self.max_write_items = max_write_items
        self.retry_delays = retry_delays
        self._queue: collections.deque[Batch] = collections.deque()
        self._queued = 0
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None
        self.offered = 0
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self._last_drop_log = 0.0

    # -------------------------------------------------------------- producer side
    def offer(self, batch: Batch) -> None:
        """Queue a batch; never blocks. Drops the oldest batches when over the bound."""
        n = len(batch)
        if not n:
            return
        self.offered += n
        self._queue.append(batch)
        self._queued += n
        while self._queued > self.max_items and len(self._queue) > 1:
            old = self._queue.popleft()
            self._queued -= len(old)
            self.dropped += len(old)
            self._log_drop()
        self._idle.clear()
        self._wake.set()

    def _log_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 10:
            self._last_drop_log = now
            log.warning("output %s is behind: queue full (%d items), %d dropped so far%s", self.output.name,
                        self.max_items, self.dropped, f"; last error: {self.last_error}" if self.last_error else "")

    @property
    def queued(self) -> int:
        return self._queued + self._in_flight

    # -------------------------------------------------------------- worker
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"output-{self.output.name}")

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batches: list[Batch] = []
            items = 0
            while self._queue and (not batches or items + len(self._queue[0]) <= self.max_write_items):
                batch = self._queue.popleft()
                batches.append(batch)
                items += len(batch)
            self._queued -= items
            self._in_flight = items
            await self._write(batches, items)
            self._in_flight = 0

    async def _write(self, batches: list[Batch], items: int) -> None:
        for attempt in range(len(self.retry_delays) + 1):
            try:
                await self.output.write(batches)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an output failing must not kill its worker
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt == len(self.retry_delays):
                    self.dropped += items
                    log.error("output %s: giving up on %d items after %d attempts: %s", self.output.name, items,
                              attempt + 1, self.last_error)
                    return
                if attempt == 0:
                    log.warning("output %s: write failed (%s); retrying", self.output.name, self.last_error)
                await asyncio.sleep(self.retry_delays[attempt])
            else:
                self.written += items
                if self.last_error and attempt:
                    log.info("output %s: writing again", self.output.name)
                return

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def close(self, timeout: float) -> None:
        """Drain (up to `timeout` s; `UNREACHABLE_DRAIN` s for an output that reports itself
        disconnected), then stop the worker and the output. Batches left are handed to the
        output's ``abandon(batches)`` when it has one (it says what is lost in its own units),
        else counted in a log line."""
        if self.output.health().get("connected") is False:
            timeout = min(timeout, UNREACHABLE_DRAIN)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            abandon = getattr(self.output, "abandon", None)
            if abandon is not None:
                abandon(list(self._queue))
            else:
                log.error("output %s: %d items not written at shutdown", self.output.name, self.queued)
        await cancel_and_wait(self._task)
        await self.output.stop()

    def health(self) -> dict[str, Any]:
        extra = self.output.health()
        error = self.last_error or extra.pop("last_error", "")
        state = "ok"
        if extra.get("connected") is False or (error and self.queued):
            state = "failing"
        elif self._queued > self.max_items // 2:
            state = "behind"
        return {"state": state, "queued": self.queued, "offered": self.offered, "written": self.written,
                "dropped": self.dropped, "errors": self.errors, "last_error": error, **extra}


class Pipeline:
    """The collector's one pipeline (one asyncio process)."""

    def __init__(self, outputs: Iterable[Output] = (), processors: Iterable[Processor] = (), *,
                 normalizer: Normalizer | None = None, instance: str = "collector",
                 queue_items: int = DEFAULT_QUEUE_ITEMS, tick_interval: float = 1.0) -> None:
        self.instance = instance
        self.normalizer = normalizer or Normalizer()
        self.registry = self.normalizer.registry
        self.processors = list(processors)
        outputs = list(outputs)
        self.queues = [OutputQueue(o, queue_items) for o in outputs if getattr(o, "wants_batches", True)]
        self.passive = [o for o in outputs if not getattr(o, "wants_batches", True)]
        """Outputs that read the series registry themselves (Prometheus): started and stopped only."""
        self.targets: dict[str, TargetStatus] = {}
        self.active_alarms: dict[str, Alarm] = {}
        """Raised, not yet cleared, by id: whatever raised them (rules here, or another collector)."""
        self.events: collections.deque[tuple[int, Alarm | ActionRun]] = collections.deque(maxlen=EVENTS_KEPT)
        """The latest alarm transitions and action runs, numbered in the order they were recorded."""
        self.events_recorded = 0
        self.tick_interval = tick_interval
        self.ingested = 0
        self._gc_size = self._gc_stable = self._gc_frozen = 0
        self._tick_task: asyncio.Task | None = None
        self._started = False

    # -------------------------------------------------------------- inputs call these
    def ingest(self, updates: list[Update]) -> Batch:
        """Normalize, process and queue one list of updates. Synchronous: never waits."""
        batch = self.normalizer.normalize(updates)
        self.ingested += len(updates)
        self._emit(batch)
        return batch

    def target_status(self, status: TargetStatus) -> None:
        """A target's session changed (up, down, synced, counters): kept for the health view and
        for staleness, turned into agents/agent series, shown to processors, sent to outputs."""
        self.targets[status.target] = status
        batch = Batch(statuses=[status])
        self.normalizer.status(status, batch)
        for p in self.processors:
            p.status(status, batch)
        self._emit(batch, processed=True)

    def ingest_alarms(self, alarms: list[Alarm]) -> None:
        """Alarms raised elsewhere (another collector, through NATS): stored and published here
        too, not re-evaluated."""
        self._emit(Batch(alarms=list(alarms)), processed=True)

    # -------------------------------------------------------------- processors call these
    def record(self, batch: Batch) -> None:
        """What a processor learnt after the fact (an action's result, an alarm transition it
        held back until then): recorded now, after everything emitted before, not processed again."""
        self._emit(batch, processed=True)

    def events_since(self, seen: int) -> list[tuple[int, Alarm | ActionRun]]:
        """Events numbered above `seen` that are still kept, oldest first."""
        return [e for e in self.events if e[0] > seen]

    def forget_target(self, name: str) -> None:
        """A target no longer collected here (removed from the configuration, or its lease went to
        another instance): its series stop being exported, its alarms are cleared."""
        self.normalizer.drop_target(name)
        self.targets.pop(name, None)
        for p in self.processors:
            forget = getattr(p, "forget", None)
            if forget is not None:
                forget(name)

    def target_up(self, name: str) -> bool:
        """Whether a target's values are fresh. Unknown health (no input reported any, e.g. data
        replayed from NATS without status messages) counts as up."""
        status = self.targets.get(name)
        return status is None or status.reachable

    # -------------------------------------------------------------- internals
    def _emit(self, batch: Batch, processed: bool = False) -> None:
        if not processed:
            for p in self.processors:
                p.process(batch)
        if batch.alarms:
            self._track(batch.alarms)
        if batch.runs:
            for run in batch.runs:
                self._journal(run)
        for q in self.queues:
            q.offer(batch)

    def _track(self, alarms: list[Alarm]) -> None:
        for a in alarms:
            if a.cleared_ns is None:
                self.active_alarms[a.alarm_id] = a
                alarm_log.warning("alarm raised: %s (%s)", a.text, a.agent)
            else:
                self.active_alarms.pop(a.alarm_id, None)
                alarm_log.info("alarm cleared: %s (%s)", a.text, a.agent)
            self._journal(a)

    def _journal(self, event: Alarm | ActionRun) -> None:
        self.events_recorded += 1
        self.events.append((self.events_recorded, event))

    def _settle_gc(self) -> None:
        """Once the series set has grown and then stopped growing for a few ticks (the initial
        sync of the targets is done), move everything alive to the garbage collector's permanent
        generation: hundreds of thousands of long-lived series, routes and cached paths no longer
        have to be traversed by every full collection (measured: pauses of 0.3 s every few seconds
        under the 400 x 500 load). Refcounting still frees them; only reference cycles alive at
        that moment would stay, once."""
        size = len(self.registry)
        if size != self._gc_size:
            self._gc_size, self._gc_stable = size, 0
            return
        self._gc_stable += 1
        if self._gc_stable == 3 and size > self._gc_frozen * 1.1 + 1000:
            gc.collect()
            gc.freeze()
            self._gc_frozen = size
            log.debug("%d series settled: long-lived objects moved out of the collector's way", size)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            self._settle_gc()
            self.normalizer.refresh_counters()
            batch = Batch()
            now = time.time_ns()
            for p in self.processors:
                p.tick(now, batch)
            if len(batch):
                self._emit(batch, processed=True)

    # -------------------------------------------------------------- life cycle
    async def start(self) -> None:
        for q in self.queues:
            await q.output.start(self)
            q.start()
        for o in self.passive:
            await o.start(self)
        for p in self.processors:
            await p.start(self)
        self._tick_task = asyncio.create_task(self._ticker(), name="pipeline-tick")
        self._started = True

    async def drained(self) -> None:
        """Until every output has written everything queued so far."""
        for q in self.queues:
            await q.wait_idle()

    async def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown: processors stop, then every output writes what is queued (up to
        `timeout` s each) and closes. Nothing ingested before the call is lost."""
        if self._tick_task is not None:
            self._tick_task.cancel()
        for p in self.processors:
            await p.stop()
        for q in self.queues:
            await q.close(timeout)
        for o in self.passive:
            await o.stop()
        self._started = False

    def health(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "ingested": self.ingested,
            "rejected": self.normalizer.rejected,
            "series": len(self.registry),
            "alarms_active": len(self.active_alarms),
            "outputs": {**{q.output.name: q.health() for q in self.queues},
                        **{o.name: {"state": "ok", "queued": 0, "dropped": 0, **o.health()} for o in self.passive}},
            "targets": {name: {"reachable": s.reachable, "state": s.state, "reason": s.reason, "synced": s.synced,
                               "reconnects": s.reconnects, "duplicates": s.duplicates,
                               "last_update_ns": s.last_update_ns,
                               "updates_received": self.normalizer.received(name)}
                        for name, s in sorted(self.targets.items())},
        }
