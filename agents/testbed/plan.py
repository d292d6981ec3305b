"""What `qstrata up` does with a network besides starting its agents, read from the topology file.

Three optional top-level sections of the topology YAML (ignored by the twins):

    controller:      # configured over NETCONF after start-up, unless --bare
      cross_connects: [{switch: sw1, ingress: 1, egress: 9}]
      qkd_links: [{id: UUID, a: {node: alice, interface: 1}, b: {node: bob, interface: 1}}]
      entanglement_links: [{id: UUID, cutoff_ms: 300, a: {node: mem-a, memory: mem0, switch: sw1, port: 5},
                            b: {node: mem-b, memory: mem0, switch: sw1, port: 6}}]
    scenario:        # scripted disturbances, simulated seconds after the controller is done
      - {at_s: 60, channel: c-tenant, launch_power_dbm: -18, text: "..."}    # Raman noise
      - {at_s: 90, fibre: spool-25, extra_loss_db: 3, text: "..."}          # a bent fibre
    collector:       # the collector's alarm rules and actions (collectors/README.md syntax)
      prometheus_port: 0
      alarms: [...]  # without an unreachable-for rule, DEFAULT_UNREACHABLE is added
      actions: [...]

Problems are reported like the rest of the topology: ``FILE: YAML.PATH: what is wrong``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from qstrata.agents.devices.topology import Topology, TopologyError
from qstrata.agents.devices.topology_check import Checker


@dataclass(frozen=True)
class CrossConnect:
    switch: str
    ingress: int
    egress: int


@dataclass(frozen=True)
class QkdLinkEnd:
    node: str
    interface: int


@dataclass(frozen=True)
class QkdLinkPlan:
    id: str
    a: QkdLinkEnd
    b: QkdLinkEnd


@dataclass(frozen=True)
class EntanglementEnd:
    node: str
    memory: str
    switch: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class EntanglementPlan:
    id: str
    a: EntanglementEnd
    b: EntanglementEnd
    cutoff_ms: float | None = None
    """Memory cut-off: unconsumed half-pairs are discarded this long after heralding."""


@dataclass(frozen=True)
class ControllerPlan:
    cross_connects: tuple[CrossConnect, ...] = ()
    qkd_links: tuple[QkdLinkPlan, ...] = ()
    entanglement_links: tuple[EntanglementPlan, ...] = ()


@dataclass(frozen=True)
class ScenarioStep:
    at_s: float
    """Simulated seconds after the controller finished."""
    text: str
    channel: str | None = None
    launch_power_dbm: float | None = None
    fibre: str | None = None
    extra_loss_db: float | None = None


DEFAULT_UNREACHABLE: dict[str, Any] = {"name": "agent-unreachable", "unreachable-for": "5s", "severity": "CRITICAL"}
"""Every agent `qstrata up` starts is watched: a collector that loses one says so within seconds.
Added unless the collector section has an unreachable-for rule of its own (or a rule by that name)."""


def with_default_alarms(alarms: tuple[Any, ...]) -> tuple[Any, ...]:
    """The collector section's alarm rules, plus `DEFAULT_UNREACHABLE` when it has no such rule."""
    if any(isinstance(a, dict) and ("unreachable-for" in a or a.get("name") == DEFAULT_UNREACHABLE["name"])
           for a in alarms):
        return alarms
    return (*alarms, dict(DEFAULT_UNREACHABLE))


@dataclass(frozen=True)
class CollectorPlan:
    prometheus_port: int = 0
    alarms: tuple[Any, ...] = with_default_alarms(())
    actions: tuple[Any, ...] = ()


@dataclass(frozen=True)
class NetworkPlan:
    controller: ControllerPlan = field(default_factory=ControllerPlan)
    scenario: tuple[ScenarioStep, ...] = ()
    collector: CollectorPlan | None = field(default_factory=CollectorPlan)


def plan_of(topology: Topology, source: str) -> NetworkPlan:
    """The controller, scenario and collector sections of a checked topology; raises
    `TopologyError` with every problem."""
    c = Checker()
    opts = topology.options
    controller = _controller(c, opts.get("controller"), topology)
    scenario = _scenario(c, opts.get("scenario"), topology)
    collector = _collector(c, opts.get("collector"))
    if c.issues:
        raise TopologyError("", [f"{source}: {issue}" for issue in c.issues])
    return NetworkPlan(controller, scenario, collector)


def _node(c: Checker, entry: dict, at: str, topology: Topology, kind: str) -> str | None:
    name = entry.get("node") if "node" in entry else entry.get("switch")
    key = "node" if "node" in entry or kind != "switch" else "switch"
    if name is None:
        c.add(at, f"missing field {key!r}")
        return None
    node = topology.nodes.get(name)
    if node is None:
        c.add(f"{at}.{key}", f"unknown node {name!r}")
        return None
    if node.kind != kind:
        c.add(f"{at}.{key}", f"{name} is a {node.kind} node, not a {kind} node")
        return None
    return name


def _uuid(c: Checker, entry: dict, at: str) -> str | None:
    value = entry.get("id")
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        c.add(f"{at}.id" if "id" in entry else at, f"expected a UUID, got {value!r}" if "id" in entry
              else "missing field 'id' (a UUID)")
        return None


def _controller(c: Checker, raw: Any, topology: Topology) -> ControllerPlan:
    if raw is None:
        return ControllerPlan()
    top = c.mapping(raw, "controller")
    if top is None:
        return ControllerPlan()
    xcs = []
    for i, item in enumerate(c.listing(top.get("cross_connects"), "controller.cross_connects")):
        at = f"controller.cross_connects[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        switch = _node(c, entry, at, topology, "switch")
        ports = [c.integer(entry.get(k), f"{at}.{k}", 1) if k in entry else c.add(at, f"missing field {k!r}")
                 for k in ("ingress", "egress")]
        if switch and None not in ports:
            xcs.append(CrossConnect(switch, ports[0], ports[1]))
    links = []
    for i, item in enumerate(c.listing(top.get("qkd_links"), "controller.qkd_links")):
        at = f"controller.qkd_links[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        lid = _uuid(c, entry, at)
        ends = []
        for side in ("a", "b"):
            end = c.mapping(entry.get(side), f"{at}.{side}")
            if end is None:
                continue
            node = _node(c, end, f"{at}.{side}", topology, "qkd")
            iface = c.integer(end.get("interface", 1), f"{at}.{side}.interface", 1)
            if node and iface:
                ends.append(QkdLinkEnd(node, iface))
        if lid and len(ends) == 2:
            links.append(QkdLinkPlan(lid, ends[0], ends[1]))
    elinks = []
    for i, item in enumerate(c.listing(top.get("entanglement_links"), "controller.entanglement_links")):
        at = f"controller.entanglement_links[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        lid = _uuid(c, entry, at)
        ends = []
        for side in ("a", "b"):
            end = c.mapping(entry.get(side), f"{at}.{side}")
            if end is None:
                continue
            node = _node(c, end, f"{at}.{side}", topology, "memory")
            switch = port = None
            if "switch" in end:
                switch = _node(c, {"switch": end["switch"]}, f"{at}.{side}", topology, "switch")
                port = c.integer(end.get("port"), f"{at}.{side}.port", 1)
            memory = end.get("memory", "mem0")
            if node:
                ends.append(EntanglementEnd(node, str(memory), switch, port))
        cutoff = c.number(entry, "cutoff_ms", at, positive=True)
        if lid and len(ends) == 2:
            elinks.append(EntanglementPlan(lid, ends[0], ends[1], cutoff))
    return ControllerPlan(tuple(xcs), tuple(links), tuple(elinks))


def _scenario(c: Checker, raw: Any, topology: Topology) -> tuple[ScenarioStep, ...]:
    steps = []
    for i, item in enumerate(c.listing(raw, "scenario")):
        at = f"scenario[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        at_s = c.number(entry, "at_s", at, required=True, minimum=0)
        text = str(entry.get("text", ""))
        if "channel" in entry:
            if entry["channel"] not in topology.classical_channels:
                c.add(f"{at}.channel", f"unknown classical channel {entry['channel']!r}")
                continue
            power = c.number(entry, "launch_power_dbm", at, required=True)
            if at_s is not None and power is not None:
                steps.append(ScenarioStep(at_s, text, channel=entry["channel"], launch_power_dbm=power))
        elif "fibre" in entry:
            if entry["fibre"] not in topology.fibres:
                c.add(f"{at}.fibre", f"unknown fibre {entry['fibre']!r}")
                continue
            loss = c.number(entry, "extra_loss_db", at, required=True, minimum=0)
            if at_s is not None and loss is not None:
                steps.append(ScenarioStep(at_s, text, fibre=entry["fibre"], extra_loss_db=loss))
        else:
            c.add(at, "expected 'channel' (with launch_power_dbm) or 'fibre' (with extra_loss_db)")
    return tuple(sorted(steps, key=lambda s: s.at_s))


def _collector(c: Checker, raw: Any) -> CollectorPlan | None:
    if raw is False:
        return None
    if raw is None:
        return CollectorPlan()
    top = c.mapping(raw, "collector")
    if top is None:
        return None
    port = c.integer(top.get("prometheus_port", 0), "collector.prometheus_port", 0, 65535)
    return CollectorPlan(port or 0, with_default_alarms(tuple(c.listing(top.get("alarms"), "collector.alarms"))),
                         tuple(c.listing(top.get("actions"), "collector.actions")))
