"""`qstrata up` assembled: check -> agents -> endpoints.json -> collector -> controller -> scenario,
then the status loop until told to stop, then everything stops in reverse order.

Everything that can be checked is checked before the first agent starts (topology, the plan
sections, the collector's alarm rules and actions), so a bad file costs nothing and leaves
nothing running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from qstrata.agents.devices.plant_control import LocalPlant, PlantControl
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY, Endpoint, Topology, TopologyError, parse, read
from qstrata.bindings.wire.netconf_client import NetconfEndpoint
from qstrata.collectors.config import ConfigError
from qstrata.collectors.config import load as load_collector_config

from .endpoints import (
    ENDPOINTS_FILE,
    AgentEndpoint,
    CollectorEndpoint,
    write_endpoints,
)
from .hosting import HostedAgent, HostOptions, InProcessHost, ProcessHost
from .paths import shown
from .plan import NetworkPlan, ScenarioStep, eavesdropper_flag, plan_of
from .status import AgentRow, KeyRow, StatusDisplay, view_of

log = logging.getLogger("qstrata.up")

NETWORK_TOPOLOGY = DEFAULT_TOPOLOGY.with_name("network.yaml")
"""The built-in network of `qstrata up` (documented in the file)."""


@dataclass
class UpOptions:
    topology: Path | None = None
    state_dir: Path = Path("state/up")
    listen: str = "127.0.0.1"
    speed: float = 1.0
    seed: int | None = None
    processes: bool = False
    bare: bool = False
    base_port: int = 0
    collector: bool = True
    gnmi_insecure: bool = False
    status_interval: float = 1.0
    dashboard_port: int | None = 8765
    """The collector's web dashboard on `listen`; taken: a free port. None: no dashboard."""
    eavesdroppers: tuple[str, ...] = ()
    """`--eavesdropper FIBRE:FRACTION[@START[-STOP]]` flags: scenario steps added to the topology's."""


def check(options: UpOptions) -> tuple[Path, Topology, NetworkPlan]:
    """Everything about the files that can be known before starting; raises `TopologyError` with
    every problem as ``FILE: YAML.PATH: what``: the world's, the plan sections' (without their
    references into a world that has problems) and the collector's, all at once."""
    path = Path(options.topology) if options.topology else NETWORK_TOPOLOGY
    doc = read(path)
    issues: list[str] = []
    topology = plan = None
    try:
        topology = parse(doc, str(path))
    except TopologyError as exc:
        issues += exc.issues
    if isinstance(doc, dict):
        plan, found = plan_of(doc, topology, str(path))
        issues += found
        steps: list[ScenarioStep] = []
        for spec in options.eavesdroppers:
            try:
                steps += eavesdropper_flag(spec, topology)
            except ValueError as exc:
                issues.append(f"--eavesdropper {spec}: {exc}")
        if steps:
            plan = replace(plan, scenario=tuple(sorted((*plan.scenario, *steps), key=lambda s: s.at_s)))
    if plan is not None and plan.collector is not None and (plan.collector.alarms or plan.collector.actions):
        nodes = _node_names(doc, topology)
        if nodes is not None:
            issues += _collector_issues(path, nodes, plan)
    if issues:
        raise TopologyError("", issues)
    assert topology is not None and plan is not None
    return path, topology, plan


def _node_names(doc: dict[str, Any], topology: Topology | None) -> list[tuple[str, str]] | None:
    """(name, kind) of the nodes the collector's actions may name: the world's, or when it has
    problems, the well-formed entries of its node list (None: there is no node list to go by)."""
    if topology is not None:
        return [(n.name, n.kind) for n in topology.nodes.values()]
    raw = doc.get("nodes")
    if not isinstance(raw, list):
        return None
    return [(n["name"], str(n.get("kind", ""))) for n in raw if isinstance(n, dict) and isinstance(n.get("name"), str)]


def _collector_doc(plan: NetworkPlan, targets: Any) -> dict[str, Any]:
    assert plan.collector is not None
    doc: dict[str, Any] = dict(targets)
    if plan.collector.alarms:
        doc["alarms"] = list(plan.collector.alarms)
    if plan.collector.actions:
        doc["actions"] = list(plan.collector.actions)
    return doc


def _collector_issues(path: Path, nodes: list[tuple[str, str]], plan: NetworkPlan) -> list[str]:
    """The collector's own checks on the alarms and actions, reported against the topology file."""
    stand_ins = [{"name": name, "kind": kind, "address": "127.0.0.1:1", "netconf": "127.0.0.1:1", "username": "check"}
                 for name, kind in nodes]
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "collector.yaml"
        probe.write_text(yaml.safe_dump(_collector_doc(plan, {"targets": stand_ins})), encoding="utf-8")
        try:
            load_collector_config(probe)
        except ConfigError as exc:
            return [i.replace(f"{probe}: ", f"{path}: collector.", 1) for i in exc.issues]
    return []


class Network:
    """One running network; `start`, then `run` until the stop event, then `stop`."""

    def __init__(self, options: UpOptions, display: StatusDisplay | None = None) -> None:
        # Every path this network writes into a file (collector.yaml, endpoints.json, each agent's
        # credentials.json) is absolute, so a reader resolves it the same way from any folder. The
        # file's problems name it as the user did.
        path, self.topology, self.plan = check(options)
        self.topology_path = Path(os.path.abspath(path))
        self.options = replace(options, state_dir=Path(os.path.abspath(options.state_dir)),
                               topology=self.topology_path if options.topology else None)
        self.display = display or StatusDisplay()
        self.host: InProcessHost | ProcessHost | None = None
        self.agents: list[HostedAgent] = []
        self.collector: Any = None
        self.prometheus_url: str | None = None
        self.store_path: Path | None = None
        self.dashboard_url: str | None = None
        self.dashboard_note = ""
        """Said next to the dashboard's URL when it is not on the port asked for."""
        self._tasks: list[asyncio.Task] = []
        self._started = time.monotonic()
        self._events_seen = 0
        self._alarms_shown: dict[str, Any] = {}
        """Active alarms as the pipeline recorded them, by alarm id (what the table shows)."""
        self.controller_done = asyncio.Event()
        self._process_alarms: Any = None
        self.keys: Any = None
        """The built-in key delivery application (`keyapp.KeyApplication`), once configured."""
        self.pairs: Any = None
        """The built-in entangled-state application (`pairapp.PairApplication`), once configured."""

    @property
    def state_dir(self) -> Path:
        return self.options.state_dir

    def say(self, text: str) -> None:
        log.info("%s", text)
        self.display.event(text)

    # ---------------------------------------------------------------- start

    async def start(self) -> None:
        o = self.options
        o.state_dir.mkdir(parents=True, exist_ok=True)
        host_options = HostOptions(self.topology_path, o.state_dir, o.listen, o.speed, o.seed, o.base_port,
                                   gnmi_insecure=o.gnmi_insecure)
        self.host = ProcessHost(self.topology, host_options, say=self.say, agent_down=self._agent_down) \
            if o.processes else InProcessHost(self.topology, host_options)
        self._endpoints_path().unlink(missing_ok=True)  # a crashed run's file lists ports nobody serves
        saved = sorted(name for name in self.topology.nodes if (o.state_dir / name / "datastore").is_dir())
        if o.bare and saved:  # agents restore their saved running configuration, --bare or not
            self.say(f"--bare: the agents restore what an earlier run saved in {shown(o.state_dir)} ({len(saved)} of "
                     f"{len(self.topology.nodes)} have a saved configuration); a new --state-dir starts unconfigured")
        self.agents = await self.host.start()
        self.say(f"{len(self.agents)} agents up ({'one process each' if o.processes else 'one process'}) "
                 f"in {time.monotonic() - self._started:.1f} s")
        if o.collector and self.plan.collector is not None:
            await self._start_collector()
        # once, when everything it lists serves: a script waiting for the file can use every entry
        self._write_endpoints(self._collector_endpoint())
        if not o.bare:
            self._tasks.append(asyncio.create_task(self._configure(), name="up-controller"))
        elif o.eavesdroppers:  # no controller and no scripted scenario: the flags' steps, from now
            from .scenario import run_scenario

            steps = tuple(s for s in self.plan.scenario if s.eavesdropper is not None)
            self._tasks.append(asyncio.create_task(run_scenario(self._plant(), steps, o.speed, self.say),
                                                   name="up-eavesdropper"))

    def _agent_down(self, name: str, down: bool, text: str) -> None:
        """An agent's process died or serves again (--processes): the collector's alarm says so."""
        if self.collector is not None:
            if self._process_alarms is None:
                from .collection import ProcessAlarms

                self._process_alarms = ProcessAlarms(self.collector)
            self._process_alarms(name, down, text)

    def endpoints(self) -> list[AgentEndpoint]:
        """Every agent's entry of endpoints.json: where it listens."""
        return [h.endpoint for h in self.agents]

    def _collector_endpoint(self) -> CollectorEndpoint | None:
        if self.collector is None:
            return None
        return CollectorEndpoint(self.prometheus_url, str(self.store_path) if self.store_path else None,
                                 dashboard=self.dashboard_url)

    def _endpoints_path(self) -> Path:
        return self.state_dir / ENDPOINTS_FILE

    def _write_endpoints(self, collector: CollectorEndpoint | None) -> None:
        write_endpoints(self.state_dir, self.topology.name, self.topology_path, self.endpoints(), collector)

    async def _start_collector(self) -> None:
        """The collector subscribes to every agent over gNMI (collection.py says how and to what),
        in both hosting modes; its YAML is kept in the state directory for reference."""
        from qstrata.collectors.app import CollectOptions, Collector

        from .collection import targets_of

        assert self.plan.collector is not None
        config_path = self.state_dir / "collector.yaml"
        targets = targets_of(self.agents, self.options.gnmi_insecure)
        config_path.write_text(
            "# written by qstrata up: its agents, and the topology's collector section\n"
            + yaml.safe_dump(_collector_doc(self.plan, {"targets": targets}), sort_keys=False),
            encoding="utf-8")
        config = load_collector_config(config_path)
        self.store_path = self.state_dir / "collector.db"
        options = CollectOptions(config=config, store=f"sqlite:{self.store_path}",
                                 prometheus=(self.options.listen, self.plan.collector.prometheus_port),
                                 instance="up-collector", share_targets=False,
                                 dashboard=(None if self.options.dashboard_port is None
                                            else (self.options.listen, self.options.dashboard_port)),
                                 dashboard_fallback=True, topology=self._graph())
        self.collector = Collector(options)
        await self.collector.start()
        for out in self.collector.pipeline.passive:
            if getattr(out, "name", "") == "prometheus":
                self.prometheus_url = f"http://{self.options.listen}:{out.port}/metrics"
        self.dashboard_url = self.collector.dashboard_url
        dash = next((out for out in self.collector.pipeline.passive if getattr(out, "name", "") == "dashboard"), None)
        if dash is not None and dash.requested_port and dash.port != dash.requested_port:
            self.dashboard_note = f"(port {dash.requested_port} was taken)"
        self.say(f"collector up: store {self.store_path}, prometheus {self.prometheus_url}"
                 + (f", dashboard {self.dashboard_url}" if self.dashboard_url else ""))

    def _graph(self):
        """The topology as the dashboard draws it: the nodes and fibres this network was started
        from, handed over already parsed (the collector never reads device code's formats)."""
        from qstrata.collectors.dashboard.graph import Graph, GraphFibre, GraphNode

        t = self.topology
        return Graph(t.name, [GraphNode(n.name, n.kind, n.location) for n in t.nodes.values()],
                     [GraphFibre(f.id, f.length_km, {"device": f.a.device, "port": f.a.port},
                                 {"device": f.b.device, "port": f.b.port}) for f in t.fibres.values()],
                     str(self.topology_path))

    def _netconf_logins(self) -> dict[str, NetconfEndpoint]:
        from qstrata.collectors.config import read_credentials

        logins = {}
        for h in self.agents:
            user, password = read_credentials(h.credentials)
            logins[h.name] = NetconfEndpoint(h.endpoint.netconf.host, h.endpoint.netconf.port, user, password)
        return logins

    async def _configure(self) -> None:
        from .controller import Controller, ControllerError

        plan = self.plan.controller
        try:
            if plan.cross_connects or plan.qkd_links or plan.entanglement_links:
                await Controller(self._netconf_logins(), plan, say=self.say, speed=self.options.speed).run()
                self.say(f"controller: network configured {time.monotonic() - self._started:.1f} s after start")
        except ControllerError as exc:
            self.say(f"controller failed: {exc}")
            return
        finally:
            self.controller_done.set()
        if plan.entanglement_apps:
            from .pairapp import PairApplication

            self.pairs = PairApplication(plan.entanglement_apps, self._netconf_logins(), self.options.speed, self.say)
            await self.pairs.start()
        if any(app.fetch for app in plan.qkd_apps):
            await self._start_keys()
        if self.plan.scenario:
            from .scenario import run_scenario

            await run_scenario(self._plant(), self.plan.scenario, self.options.speed, self.say)

    async def _start_keys(self) -> None:
        """The built-in application fetching keys from the KMEs the controller configured."""
        from .keyapp import KeyApplication, KmeAccess

        kmes = {h.name: KmeAccess(h.endpoint.kme.url, Path(h.endpoint.kme.ca), h.state_dir)
                for h in self.agents if h.endpoint.kme is not None}
        self.keys = KeyApplication(self.plan.controller, kmes, self.options.speed, self.say)
        try:
            await self.keys.start()
        except OSError as exc:  # its certificates could not be written
            self.say(f"keys: application not started: {exc.strerror or exc}")
            self.keys = None

    def _plant(self) -> PlantControl:
        """Where the scenario's changes go: the world service's plant, or this process's."""
        if isinstance(self.host, ProcessHost):
            return self.host.plant()
        from qstrata.agents.devices.world import process_world

        return LocalPlant(process_world().plant)

    # ---------------------------------------------------------------- run

    def _fibre_of_port(self) -> dict[tuple[str, int], str]:
        out = {}
        for node in self.topology.nodes_of_kind("switch"):
            for port in self.topology.ports_of(node.name):
                fibre = self.topology.fibre_at(Endpoint(node.name, port))
                if fibre is not None:
                    out[(node.name, port)] = fibre.id
        return out

    def _watch_collector(self) -> None:
        """Alarm transitions and action results become events, in the order the collector's
        pipeline recorded them (raise, the raise's action results, clear), however many came
        since the last look."""
        from qstrata.collectors.model import Alarm

        events = self.collector.pipeline.events_since(self._events_seen)
        if events and events[0][0] > self._events_seen + 1:
            self.say(f"({events[0][0] - self._events_seen - 1} earlier alarm events not shown: see the store)")
        for seq, e in events:
            self._events_seen = seq
            if not isinstance(e, Alarm):
                self.say(f"action {e.action} ({e.transition}): {e.outcome}" + (f", {e.detail}" if e.detail else ""))
            elif e.cleared_ns is None:
                self._alarms_shown[e.alarm_id] = e
                self.say(f"alarm raised: {e.rule} on {e.agent} ({e.severity.rsplit(':', 1)[-1]}): {e.text}")
            else:
                self._alarms_shown.pop(e.alarm_id, None)
                self.say(f"alarm cleared: {e.rule} on {e.agent}: {e.text}")

    def view(self):
        o = self.options
        up = time.monotonic() - self._started
        title = (f"qstrata up: {self.topology.name}, {len(self.agents)} agents, speed {o.speed:g}x, "
                 f"up {int(up) // 60:02d}:{int(up) % 60:02d}   Ctrl-C stops")
        rows = [AgentRow(e.name, e.kind, f"{e.netconf.host}:{e.netconf.port}",
                         f"{e.gnmi.host}:{e.gnmi.port}" if e.gnmi else "-",
                         process=h.process.describe() if h.process is not None else "-",
                         kme=e.kme.url.removeprefix("https://") if e.kme else "-")
                for h in self.agents for e in (h.endpoint,)]
        keys = self.key_rows()
        if self.collector is None:
            return view_of(title, rows, [], self._fibre_of_port(), events=self.display.events,
                           endpoints=self.endpoint_lines(), keys=keys)
        pipeline = self.collector.pipeline
        # the alarms as recorded (a clear held back behind its raise's action is not shown early)
        return view_of(title, rows, pipeline.registry, self._fibre_of_port(), list(self._alarms_shown.values()),
                       self.display.events, pipeline.health().get("targets"), self.endpoint_lines(), keys)

    def key_rows(self) -> list[KeyRow]:
        """The built-in application's pairs, as the status table shows them."""
        if self.keys is None:
            return []
        now = time.monotonic()
        return [KeyRow(p.label, ", ".join(p.via) or "direct", p.keys, p.bits, p.delivered_rate(now, self.options.speed),
                       p.refusals, p.stored_bits, p.last_refusal,
                       any("not enough key" in r for r in p.refused)) for p in self.keys.pairs]

    def endpoint_lines(self) -> list[str]:
        """Where a person finds things, the dashboard first (the start-up summary and every frame
        of the status table show these)."""
        lines = []
        if self.dashboard_url:
            lines.append(f"dashboard  {self.dashboard_url}" + (f"  {self.dashboard_note}" if self.dashboard_note else ""))
        if self.collector is not None:
            lines.append(f"collector  store {shown(self.store_path)}  prometheus {self.prometheus_url}")
        lines.append(f"endpoints  {shown(self._endpoints_path())}   log {shown(self.state_dir / 'up.log')}")
        return lines

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + duration if duration else None
        while not stop.is_set():
            if self.collector is not None:
                self._watch_collector()
            self.display.show(self.view())
            timeout = self.options.status_interval
            if end is not None:
                timeout = min(timeout, end - loop.time())
                if timeout <= 0:
                    break
            try:
                await asyncio.wait_for(stop.wait(), timeout)
            except TimeoutError:
                pass

    # ---------------------------------------------------------------- stop

    async def stop(self) -> None:
        if isinstance(self.host, ProcessHost):
            await self.host.supervisor.halt()  # first: nothing is restarted while the network stops
        self._endpoints_path().unlink(missing_ok=True)  # nothing it lists serves any more
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.keys is not None:
            await self.keys.stop()
        if self.pairs is not None:
            await self.pairs.stop()
        if self.collector is not None:
            await self.collector.stop()
        if self.host is not None:
            await self.host.stop()
        log.info("network stopped")
