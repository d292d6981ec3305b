"""Runs the actions of alarm rules: rate-limited, logged, never in the way of ingestion.

Each configured action has its own bounded queue and worker task, so a webhook that takes 5 s to
time out delays neither ingestion nor the NETCONF action next to it. A token bucket per action
(`ActionConfig.rate_limit`) caps how often it runs; runs beyond the cap and runs that do not fit
in the queue are skipped, counted and logged. Every run is logged with its outcome.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..actions import Action, ActionConfig, ActionError, create
from ..model import Alarm, Batch, TargetStatus

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


@dataclass
class Run:
    """One action run (or skip), kept in a short history for the health view and tests."""

    action: str
    alarm_id: str
    transition: str
    outcome: str
    """'ok', 'failed', 'rate-limited' or 'queue-full'."""
    detail: str


class _Runner:
    def __init__(self, config: ActionConfig, action: Action, history: collections.deque) -> None:
        self.config = config
        self.action = action
        self.bucket = TokenBucket(*config.rate_limit)
        self.queue: asyncio.Queue[Alarm] = asyncio.Queue(QUEUE_SIZE)
        self.history = history
        self.task: asyncio.Task | None = None
        self.counts = collections.Counter()

    def record(self, alarm: Alarm, outcome: str, detail: str) -> None:
        self.counts[outcome] += 1
        self.history.append(Run(self.config.name, alarm.alarm_id, "raise" if alarm.cleared_ns is None else "clear",
                                outcome, detail))

    def submit(self, alarm: Alarm) -> None:
        if not self.bucket.take():
            self.record(alarm, "rate-limited", "")
            log.warning("action %s skipped for alarm %s (%s): rate limit %d per %gs", self.config.name,
                        alarm.alarm_id, alarm.rule, *self.config.rate_limit)
            return
        try:
            self.queue.put_nowait(alarm)
        except asyncio.QueueFull:
            self.record(alarm, "queue-full", "")
            log.warning("action %s skipped for alarm %s: %d runs already waiting", self.config.name, alarm.alarm_id,
                        QUEUE_SIZE)

    async def work(self) -> None:
        while True:
            alarm = await self.queue.get()
            try:
                detail = await self.action.run(alarm)
            except asyncio.CancelledError:
                raise
            except ActionError as exc:
                self.record(alarm, "failed", str(exc))
                log.error("action %s for alarm %s (%s, %s) failed: %s", self.config.name, alarm.alarm_id, alarm.rule,
                          alarm.state, exc)
            except Exception as exc:  # a broken action must not end its worker
                self.record(alarm, "failed", f"{type(exc).__name__}: {exc}")
                log.exception("action %s for alarm %s crashed", self.config.name, alarm.alarm_id)
            else:
                self.record(alarm, "ok", detail)
                log.info("action %s for alarm %s (%s, %s): %s", self.config.name, alarm.alarm_id, alarm.rule,
                         alarm.state, detail)


class ActionProcessor:
    name = "actions"

    def __init__(self, actions: list[ActionConfig] = (), rule_actions: dict[str, tuple[str, ...]] | None = None,
                 resolve_target: Callable[[str], Any] | None = None) -> None:
        self.resolve_target = resolve_target
        self.history: collections.deque[Run] = collections.deque(maxlen=1000)
        self._runners: dict[str, _Runner] = {}
        self._rule_actions: dict[str, tuple[str, ...]] = {}
        self._started = False
        self.configure(list(actions), rule_actions or {})

    def configure(self, actions: list[ActionConfig], rule_actions: dict[str, tuple[str, ...]]) -> None:
        """(Re)load: runners of unchanged actions keep their queue and rate-limit state."""
        old = self._runners
        self._runners = {}
        for config in actions:
            runner = old.pop(config.name, None)
            if runner is None or runner.config != config or runner.config.options != config.options:
                if runner is not None and runner.task is not None:
                    runner.task.cancel()
                runner = _Runner(config, create(config, self.resolve_target), self.history)
                if self._started:
                    runner.task = asyncio.create_task(runner.work(), name=f"action-{config.name}")
            self._runners[config.name] = runner
        for runner in old.values():
            if runner.task is not None:
                runner.task.cancel()
        self._rule_actions = dict(rule_actions)

    async def start(self, pipeline: Pipeline) -> None:
        self._started = True
        for runner in self._runners.values():
            runner.task = asyncio.create_task(runner.work(), name=f"action-{runner.config.name}")

    def process(self, batch: Batch) -> None:
        if batch.alarms:
            self._dispatch(batch.alarms)

    def _dispatch(self, alarms: list[Alarm]) -> None:
        for alarm in alarms:
            transition = "raise" if alarm.cleared_ns is None else "clear"
            for name in self._rule_actions.get(alarm.rule, ()):
                runner = self._runners.get(name)
                if runner is not None and transition in runner.config.on:
                    runner.submit(alarm)

    def status(self, status: TargetStatus, batch: Batch) -> None:
        if batch.alarms:
            self._dispatch(batch.alarms)

    def tick(self, now_ns: int, batch: Batch) -> None:
        if batch.alarms:
            self._dispatch(batch.alarms)

    async def stop(self) -> None:
        for runner in self._runners.values():
            if runner.task is not None:
                runner.task.cancel()
        self._started = False

    def health(self) -> dict[str, dict[str, int]]:
        return {name: dict(r.counts) for name, r in self._runners.items()}
