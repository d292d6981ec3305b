"""Processors: stages between normalization and the outputs (alarms, actions).

A processor runs inline on every batch, so `process` must be cheap and must not wait: anything
slow (an HTTP call, a NETCONF edit) goes to a task of the processor's own with a bounded queue.
Processors may add alarms to the batch they are given; the outputs then carry them like any
other telemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..model import Batch, TargetStatus
    from ..pipeline import Pipeline


@runtime_checkable
class Processor(Protocol):
    name: str

    async def start(self, pipeline: Pipeline) -> None: ...

    def process(self, batch: Batch) -> None:
        """Look at (and possibly add alarms to) one batch; never blocks."""
        ...

    def status(self, status: TargetStatus, batch: Batch) -> None:
        """A target's health changed."""
        ...

    def tick(self, now_ns: int, batch: Batch) -> None:
        """Called about once a second (timers: 'unreachable for T s')."""
        ...

    async def stop(self) -> None: ...


BUILTIN: dict[str, str] = {
    "alarms": "qstrata.collectors.processors.alarms:AlarmProcessor",
    "actions": "qstrata.collectors.processors.actions:ActionProcessor",
}
"""The built-in processors by name, in pipeline order (actions act on the alarms raised before)."""
