"""Runs the actions of alarm rules: rate-limited, logged, never in the way of ingestion.

Each configured action has its own bounded queue and worker task, so a webhook that takes 5 s to
time out delays neither ingestion nor the NETCONF action next to it. A token bucket per action
(`ActionConfig.rate_limit`) caps how often it runs; runs beyond the cap and runs that do not fit
in the queue are skipped, counted and logged. Every run is logged with its outcome and recorded
(`model.ActionRun`) through the pipeline, so the store and `qstrata up` see it.

One alarm's story is recorded in the order it happened: its raise, the results of the actions
the raise started, then its clear. A transition of an alarm whose earlier actions are still
queued or running is held here (taken out of its batch) and recorded right after the last of
their results, with its own actions started then: however fast a condition clears, the clear is
never recorded before the result of the action taken for the raise. Alarms no action waits on
pass through untouched.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..actions import Action, ActionConfig, ActionError, create
from ..model import ActionRun, Alarm, Batch, TargetStatus

if TYPE_CHECKING:
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.actions")

QUEUE_SIZE = 100


class TokenBucket:
    def __init__(self, count: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(count)
        self.rate = count / per if per > 0 else float("inf")
        self.tokens = float(count)
        self.clock = clock
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _transition(alarm: Alarm) -> str:
    return "raise" if alarm.cleared_ns is None else "clear"


class _Runner:
    def __init__(self, config: ActionConfig, action: Action, done: Callable[[ActionRun, bool], None]) -> None:
        self.config = config
        self.action = action
        self.bucket = TokenBucket(*config.rate_limit)
        self.queue: asyncio.Queue[Alarm] = asyncio.Queue(QUEUE_SIZE)
        self.done = done
        """Called with every run's record, and whether it had been queued."""
        self.task: asyncio.Task | None = None
        self.counts = collections.Counter()

    def record(self, alarm: Alarm, outcome: str, detail: str, queued: bool) -> None:
        self.counts[outcome] += 1
        self.done(ActionRun(self.config.name, alarm.alarm_id, alarm.raised_ns, alarm.agent, alarm.rule,
                            _transition(alarm), outcome, detail, time.time_ns()), queued)  # type: ignore[arg-type]

    def submit(self, alarm: Alarm) -> bool:
        """Queue a run; False when it was skipped (and recorded as such)."""
        if not self.bucket.take():
            log.warning("action %s skipped for alarm %s (%s): rate limit %d per %gs", self.config.name,
                        alarm.alarm_id, alarm.rule, *self.config.rate_limit)
            self.record(alarm, "rate-limited", "", queued=False)
            return False
        try:
            self.queue.put_nowait(alarm)
        except asyncio.QueueFull:
            log.warning("action %s skipped for alarm %s: %d runs already waiting", self.config.name, alarm.alarm_id,
                        QUEUE_SIZE)
            self.record(alarm, "queue-full", "", queued=False)
            return False
        return True

    async def work(self) -> None:
        while True:
            alarm = await self.queue.get()
            try:
                detail = await self.action.run(alarm)
            except asyncio.CancelledError:
                raise
            except ActionError as exc:
                log.error("action %s for alarm %s (%s, %s) failed: %s", self.config.name, alarm.alarm_id, alarm.rule,
                          alarm.state, exc)
                self.record(alarm, "failed", str(exc), queued=True)
            except Exception as exc:  # a broken action must not end its worker
                log.exception("action %s for alarm %s crashed", self.config.name, alarm.alarm_id)
                self.record(alarm, "failed", f"{type(exc).__name__}: {exc}", queued=True)
            else:
                log.info("action %s for alarm %s (%s, %s): %s", self.config.name, alarm.alarm_id, alarm.rule,
                         alarm.state, detail)
                self.record(alarm, "ok", detail, queued=True)


class ActionProcessor:
    name = "actions"

    def __init__(self, actions: list[ActionConfig] = (), rule_actions: dict[str, tuple[str, ...]] | None = None,
                 resolve_target: Callable[[str], Any] | None = None) -> None:
        self.resolve_target = resolve_target
        self.history: collections.deque[ActionRun] = collections.deque(maxlen=1000)
        self._runners: dict[str, _Runner] = {}
        self._rule_actions: dict[str, tuple[str, ...]] = {}
        self._started = False
        self._pipeline: Pipeline | None = None
        self._batch: Batch | None = None
        """The batch being processed: runs skipped at once are recorded in it, after its alarms."""
        self._pending: dict[str, int] = {}
        """Runs queued or running, per alarm id."""
        self._held: dict[str, collections.deque[Alarm]] = {}
        """Transitions waiting for those runs, per alarm id, in order."""
        self.configure(list(actions), rule_actions or {})

    def configure(self, actions: list[ActionConfig], rule_actions: dict[str, tuple[str, ...]]) -> None:
        """(Re)load: runners of unchanged actions keep their queue and rate-limit state."""
        old = self._runners
        self._runners = {}
        dropped = False
        for config in actions:
            runner = old.pop(config.name, None)
            if runner is None or runner.config != config or runner.config.options != config.options:
                if runner is not None and runner.task is not None:
                    runner.task.cancel()
                    dropped = True
                runner = _Runner(config, create(config, self.resolve_target), self._done)
                if self._started:
                    runner.task = asyncio.create_task(runner.work(), name=f"action-{config.name}")
            self._runners[config.name] = runner
        for runner in old.values():
            if runner.task is not None:
                runner.task.cancel()
                dropped = True
        self._rule_actions = dict(rule_actions)
        if dropped:  # runs of a removed or replaced action will never report: nothing may wait for them
            self._pending.clear()
            self._release_all()

    async def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._started = True
        for runner in self._runners.values():
            runner.task = asyncio.create_task(runner.work(), name=f"action-{runner.config.name}")

    def process(self, batch: Batch) -> None:
        if batch.alarms:
            self._sequence(batch)

    def status(self, status: TargetStatus, batch: Batch) -> None:
        if batch.alarms:
            self._sequence(batch)

    def tick(self, now_ns: int, batch: Batch) -> None:
        if batch.alarms:
            self._sequence(batch)

    def _sequence(self, batch: Batch) -> None:
        """Start the actions of the batch's transitions; hold back those of alarms whose earlier
        actions have not reported yet."""
        passing = []
        for alarm in batch.alarms:
            held = self._held.get(alarm.alarm_id)
            if held is not None or self._pending.get(alarm.alarm_id):
                if held is None:
                    held = self._held[alarm.alarm_id] = collections.deque()
                held.append(alarm)
            else:
                passing.append(alarm)
        if len(passing) != len(batch.alarms):
            batch.alarms[:] = passing
        for alarm in passing:
            self._start(alarm, batch)

    def _start(self, alarm: Alarm, batch: Batch) -> None:
        transition = _transition(alarm)
        self._batch = batch
        try:
            for name in self._rule_actions.get(alarm.rule, ()):
                runner = self._runners.get(name)
                if runner is not None and transition in runner.config.on and runner.submit(alarm):
                    self._pending[alarm.alarm_id] = self._pending.get(alarm.alarm_id, 0) + 1
        finally:
            self._batch = None

    def _done(self, run: ActionRun, queued: bool) -> None:
        self.history.append(run)
        if not queued:  # skipped while its transition is being processed: recorded right after it
            if self._batch is not None:
                self._batch.runs.append(run)
            elif self._pipeline is not None:
                self._pipeline.record(Batch(runs=[run]))
            return
        if self._pipeline is not None:
            self._pipeline.record(Batch(runs=[run]))
        left = self._pending.get(run.alarm_id, 0) - 1
        if left > 0:
            self._pending[run.alarm_id] = left
            return
        self._pending.pop(run.alarm_id, None)
        self._release(run.alarm_id)

    def _release(self, alarm_id: str) -> None:
        """Record the held transitions of one alarm, in order, until one starts actions again."""
        held = self._held.get(alarm_id)
        while held and not self._pending.get(alarm_id):
            batch = Batch(alarms=[held.popleft()])
            self._start(batch.alarms[0], batch)
            if self._pipeline is not None:
                self._pipeline.record(batch)
        if not held:
            self._held.pop(alarm_id, None)

    def _release_all(self) -> None:
        for alarm_id in list(self._held):
            self._release(alarm_id)

    async def stop(self) -> None:
        for runner in self._runners.values():
            if runner.task is not None:
                runner.task.cancel()
        self._started = False
        self._pending.clear()
        self._release_all()  # held transitions are recorded before the outputs close

    def health(self) -> dict[str, dict[str, int]]:
        return {name: dict(r.counts) for name, r in self._runners.items()}
