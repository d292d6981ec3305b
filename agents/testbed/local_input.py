"""The collector's input for agents hosted in this process, until the gNMI input lands.

A stand-in with the gNMI input's contract (`collectors.targets.TargetInput`, then
`Pipeline.ingest` / `Pipeline.target_status`): every `interval` it reads each collected agent's
operational datastore (running merged with the device's state, what a gNMI subscription to the
whole agent delivers) and hands the leaves to the pipeline as `Update`s shaped exactly as the gNMI
input will shape them (`tree_to_updates` -> `gnmi_to_xpath`). It cannot reach agents in other
processes; `qstrata up --processes` needs the gNMI input for telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from qstrata.bindings.codecs.gnmi import tree_to_updates
from qstrata.bindings.paths import gnmi_to_xpath
from qstrata.collectors.model import TargetStatus, Update

if TYPE_CHECKING:
    from qstrata.agents.app import Agent
    from qstrata.collectors.config import TargetConfig
    from qstrata.collectors.pipeline import Pipeline

log = logging.getLogger("qstrata.up.input")


def agent_updates(agent: Agent, timestamp_ns: int) -> list[Update]:
    """One sample of every leaf of the agent's operational datastore (leaf-lists skipped)."""
    assert agent.datastore is not None
    tree = agent.datastore.operational()
    try:
        out = []
        for u in tree_to_updates(tree):
            kind = u.val.WhichOneof("value")
            if kind == "leaflist_val" or kind is None:
                continue
            value: Any
            if kind == "decimal_val":
                value = u.val.decimal_val.digits / 10 ** u.val.decimal_val.precision
            else:
                value = getattr(u.val, kind)
            out.append(Update(agent.options.name, gnmi_to_xpath(u.path), value, timestamp_ns))
        return out
    finally:
        tree.clear()


class LocalInput:
    """Polls in-process agents for the targets the collector's manager hands it."""

    def __init__(self, agents: dict[str, Agent], interval: float = 1.0) -> None:
        self.agents = agents
        self.interval = interval
        self.pipeline: Pipeline | None = None
        self._tasks: dict[str, asyncio.Task] = {}

    def bind(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        for name in list(self._tasks):
            self._restart(name)

    def target_added(self, target: TargetConfig) -> None:
        self._restart(target.name)

    def target_changed(self, target: TargetConfig) -> None:
        self._restart(target.name)

    def target_removed(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def _restart(self, name: str) -> None:
        self.target_removed(name)
        self._tasks[name] = asyncio.get_running_loop().create_task(self._poll(name), name=f"local-input-{name}")

    async def _poll(self, name: str) -> None:
        while self.pipeline is None:
            await asyncio.sleep(0.1)
        agent = self.agents.get(name)
        if agent is None:
            self.pipeline.target_status(TargetStatus(name, False, "failed", "not hosted in this process",
                                                     timestamp_ns=time.time_ns()))
            return
        self.pipeline.target_status(TargetStatus(name, True, "subscribed", synced=True, timestamp_ns=time.time_ns()))
        while True:
            try:
                self.pipeline.ingest(agent_updates(agent, time.time_ns()))
            except Exception as exc:  # one agent's bad sample must not stop its collection
                log.warning("%s: cannot read its state: %s", name, exc)
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
