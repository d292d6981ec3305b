"""The one place where a collector is assembled: config -> pipeline (processors, outputs) -> inputs
-> target manager (and leases when instances share the work) -> config watcher.

One asyncio process. `Collector` is usable in tests (several in one event loop); `run_collector`
runs one until told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import outputs
from .config import CollectorConfig
from .pipeline import Pipeline
from .processors.actions import ActionProcessor
from .processors.alarms import AlarmProcessor
from .store import Retention, parse_store_url
from .targets import TargetInput, TargetManager

log = logging.getLogger("qstrata.collectors")


def default_instance() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{socket.gethostname()}-{os.getpid()}")


@dataclass
class CollectOptions:
    config: CollectorConfig | None = None
    store: str | None = "sqlite:collector.db"
    """``sqlite:PATH``, or None for no store."""
    prometheus: tuple[str, int] | None = None
    nats: str | None = None
    """Publish to this NATS server, and share targets with the other instances using it."""
    from_nats: str | None = None
    """Consume this NATS server's stream (an input)."""
    durable: str = "qstrata-store"
    gnmi_port: int | None = None
    """Serve the telemetry as a gNMI target on this port (0: a free one)."""
    gnmi_host: str = "127.0.0.1"
    gnmi_insecure: bool = False
    state_dir: str = "collector-state"
    """Users, credentials.json and the northbound TLS CA."""
    instance: str = field(default_factory=default_instance)
    share_targets: bool = True
    lease_ttl: float = 5.0
    queue_items: int | None = None
    dashboard: tuple[str, int] | None = None
    """Serve the web dashboard on (host, port) (port 0: a free one)."""
    dashboard_fallback: bool = False
    """When the dashboard's port is taken, take a free one (else the start fails)."""
    topology: Any = None
    """The network the dashboard draws: a `dashboard.graph.Graph`, a topology YAML or an
    endpoints.json path; None: the targets alone."""
    retry: Any = None
    """A `session.RetryPolicy` for the gNMI input (tests shorten its waits); None: the defaults."""


def _graph(topology: Any):
    """`CollectOptions.topology` -> a `Graph` (or None); `GraphError` when the file is bad."""
    if topology is None:
        return None
    from .dashboard.graph import Graph, load_graph

    return topology if isinstance(topology, Graph) else load_graph(topology)


class Collector:
    def __init__(self, options: CollectOptions, target_input: TargetInput | None = None) -> None:
        self.options = options
        self.config = options.config or CollectorConfig(None)
        self.alarms = AlarmProcessor(list(self.config.rules))
        self.actions = ActionProcessor(list(self.config.actions), self.config.rule_actions, self._target)
        outs: list[Any] = []
        if options.store:
            retention = self.config.retention or Retention()
            outs.append(outputs.create("sqlite", path=parse_store_url(options.store), retention=retention))
        if options.prometheus:
            outs.append(outputs.create("prometheus", host=options.prometheus[0], port=options.prometheus[1]))
        if options.nats:
            outs.append(outputs.create("nats", url=options.nats, instance=options.instance))
        if options.gnmi_port is not None:
            outs.append(outputs.create("gnmi", port=options.gnmi_port, host=options.gnmi_host,
                                       state_dir=options.state_dir, insecure=options.gnmi_insecure,
                                       instance=options.instance))
        if options.dashboard:
            outs.append(outputs.create("dashboard", host=options.dashboard[0], port=options.dashboard[1],
                                       store=parse_store_url(options.store) if options.store else None,
                                       graph=_graph(options.topology), fallback=options.dashboard_fallback,
                                       health=self.health))
        kwargs = {"queue_items": options.queue_items} if options.queue_items else {}
        self.pipeline = Pipeline(outs, [self.alarms, self.actions], instance=options.instance, **kwargs)
        if target_input is None:
            from .inputs import create

            target_input = create("gnmi", pipeline=self.pipeline, **({"policy": options.retry} if options.retry else {}))
        self.target_input = target_input
        self.manager = TargetManager(self.target_input, on_removed=self.pipeline.forget_target)
        self.leases = None
        self.input = None
        self.watcher = None
        self._lease_nc = None

    def _target(self, name: str):
        return self.config.targets.get(name)

    async def start(self) -> None:
        """Start everything; raises `NatsUnavailable` / `StoreError` / `OSError` with a one-line
        message when an output or input cannot start."""
        o = self.options
        await self.pipeline.start()
        if o.from_nats:
            from .inputs import create

            self.input = create("nats", url=o.from_nats, pipeline=self.pipeline, durable=o.durable)
            await self.input.start()
        if o.nats and o.share_targets and self.config.targets:
            from .leases import LeaseManager
            from .natsutil import connect

            self._lease_nc = await connect(o.nats, f"qstrata-collector-{o.instance}-leases", purpose="leases")
            self.leases = LeaseManager(self._lease_nc, o.instance, self.manager.set_owned, ttl=o.lease_ttl)
            self.manager.owned = set()
            await self.leases.start()
        self.apply(self.config)
        if self.config.source is not None:
            from .watch import ConfigWatcher

            self.watcher = ConfigWatcher(self.config, self.apply)
            self.watcher.start()

    @property
    def dashboard_url(self) -> str | None:
        """Where the dashboard listens once started (None: no dashboard)."""
        for o in self.pipeline.passive:
            if o.name == "dashboard":
                return o.url
        return None

    def describe(self) -> str:
        o = self.options
        outs = [q.output.name for q in self.pipeline.queues] + [p.name for p in self.pipeline.passive]
        return (f"collector {o.instance}: {len(self.config.targets)} targets, {len(self.config.rules)} alarm rules, "
                f"outputs {', '.join(outs) or 'none'}" + (f", input {o.from_nats}" if o.from_nats else "")
                + (f", dashboard {self.dashboard_url}" if self.dashboard_url else ""))

    def apply(self, config: CollectorConfig) -> None:
        """A (re)loaded configuration: targets, alarm rules and actions take effect now."""
        self.config = config
        self.alarms.set_rules(list(config.rules))
        self.actions.configure(list(config.actions), config.rule_actions)
        if self.leases is not None:
            self.leases.set_targets(n for n, t in config.targets.items() if t.enabled)
        self.manager.set_targets(config.targets)

    async def stop(self) -> None:
        """Clean shutdown: inputs stop, leases are given back, every output writes what it has."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.input is not None:
            await self.input.stop()
        if self.leases is not None:
            await self.leases.stop()
        self.manager.set_targets({})
        stop_input = getattr(self.target_input, "stop", None)
        if stop_input is not None:
            await stop_input()
        if self._lease_nc is not None:
            from .natsutil import close
            await close(self._lease_nc)
        await self.pipeline.stop()

    def health(self) -> dict[str, Any]:
        h = self.pipeline.health()
        h["config"] = {"source": str(self.config.source) if self.config.source else None,
                       "error": self.watcher.error if self.watcher else None,
                       "reloads": self.watcher.reloads if self.watcher else 0}
        h["collecting"] = sorted(self.manager.active)
        if self.leases is not None:
            h["members"] = sorted(self.leases.members)
            h["leases"] = self.leases.health()
        if self.input is not None:
            h["input"] = self.input.health()
        if hasattr(self.target_input, "health"):
            h["gnmi"] = self.target_input.health()
        h["actions"] = self.actions.health()
        return h


async def run_collector(options: CollectOptions, stop: asyncio.Event, health_interval: float = 60.0,
                        on_started: Callable[[Collector], None] | None = None) -> None:
    collector = Collector(options)
    try:
        await collector.start()
    except BaseException:
        await collector.stop()
        raise
    if on_started is not None:
        on_started(collector)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), health_interval)
            except TimeoutError:
                _log_health(collector.health())
    finally:
        await collector.stop()


def _log_health(h: dict[str, Any]) -> None:
    outs = ", ".join(f"{n}: {o['state']} queued {o['queued']} dropped {o['dropped']}" for n, o in h["outputs"].items())
    down = [n for n, t in h["targets"].items() if not t["reachable"]]
    log.info("health: %d updates ingested, %d series; outputs: %s; targets down: %s%s%s", h["ingested"], h["series"],
             outs, ", ".join(down) or "none", _leases_text(h.get("leases")),
             f"; config error: {h['config']['error']}" if h["config"]["error"] else "")


def _leases_text(leases: dict[str, Any] | None) -> str:
    """How the shared targets stand: how many are collected here, or that leases cannot be renewed."""
    if leases is None:
        return ""
    if leases["state"] != "ok":
        return (f"; leases: cannot be renewed for {leases['failing_for']:.0f} s ({leases['error']}), still collecting "
                f"the {leases['held']} targets held here")
    members = len(leases["members"])
    return (f"; leases: {leases['held']} of {leases['targets']} targets collected here, {members} "
            f"member{'s' if members != 1 else ''}")
