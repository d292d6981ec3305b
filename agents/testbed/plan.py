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

Problems are reported like the rest of the topology: ``FILE: YAML.PATH: what is wrong``. The keys
each entry may hold are declared once, as the `Keys` below, and read only through them (see
agents/devices/topology_keys.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qstrata.agents.devices.topology import Topology
from qstrata.agents.devices.topology_check import Checker
from qstrata.agents.devices.topology_keys import TOP, Keys

CONTROLLER = Keys("controller section", "cross_connects", "qkd_links", "entanglement_links")
CONTROLLER_CROSS_CONNECT = Keys("controller cross-connect", "switch", "ingress", "egress")
QKD_LINK = Keys("QKD link", "id", "a", "b")
QKD_LINK_END = Keys("QKD link end", "node", "interface")
ENTANGLEMENT_LINK = Keys("entanglement link", "id", "cutoff_ms", "a", "b")
ENTANGLEMENT_END = Keys("entanglement link end", "node", "memory", "switch", "port")
SCENARIO_STEP = Keys("scenario step", "at_s", "text", "channel", "launch_power_dbm", "fibre", "extra_loss_db")
COLLECTOR = Keys("collector section", "prometheus_port", "alarms", "actions")
"""The collector's own keys; its alarm rules and actions are the collector's format, checked by
collectors/config.py (network.check)."""


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


def plan_of(doc: Mapping[str, Any], topology: Topology | None, source: str) -> tuple[NetworkPlan, list[str]]:
    """The plan of the sections' well-formed entries, and every problem as ``SOURCE: YAML.PATH:
    what``. `topology` is the document's world, or None when it has problems of its own: then the
    sections are checked without their references to it (a node, fibre or channel that may only
    be misspelt there)."""
    c = Checker()
    controller = _controller(c, TOP.get(doc, "controller"), topology)
    scenario = _scenario(c, TOP.get(doc, "scenario"), topology)
    collector = _collector(c, TOP.get(doc, "collector"))
    return NetworkPlan(controller, scenario, collector), [f"{source}: {issue}" for issue in c.issues]


def _entry(c: Checker, item: Any, at: str, keys: Keys) -> dict | None:
    """A list item that must be a mapping of `keys`."""
    entry = c.mapping(item, at)
    if entry is not None:
        c.keys(entry, at, keys)
    return entry


def _node(c: Checker, entry: dict, at: str, topology: Topology | None, kind: str, keys: Keys,
          key: str = "node") -> str | None:
    """The node named by `entry[key]`, which must be a `kind` node of the topology."""
    name = keys.get(entry, key)
    if name is None:
        c.missing(at, key)
        return None
    if topology is None:
        return str(name)
    node = topology.nodes.get(name) if isinstance(name, str) else None
    if node is None:
        c.add(f"{at}.{key}", f"unknown node {name!r}")
        return None
    if node.kind != kind:
        c.add(f"{at}.{key}", f"{name} is a {node.kind} node, not a {kind} node")
        return None
    return name


def _uuid(c: Checker, entry: dict, at: str, keys: Keys) -> str | None:
    value = keys.get(entry, "id")
    if value is None:
        c.missing(at, "id", "a UUID")
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        c.add(f"{at}.id", f"expected a UUID, got {value!r}")
        return None


def _ends(c: Checker, entry: dict, at: str, link: Keys, keys: Keys) -> list[tuple[str, dict]]:
    """(path, mapping) of a link's ends `a` and `b`, their keys checked against `keys`."""
    ends = []
    for side in ("a", "b"):
        where = f"{at}.{side}"
        if side not in entry:
            c.missing(at, side)
            continue
        end = _entry(c, link.get(entry, side), where, keys)
        if end is not None:
            ends.append((where, end))
    return ends


def _controller(c: Checker, raw: Any, topology: Topology | None) -> ControllerPlan:
    if raw is None:
        return ControllerPlan()
    top = _entry(c, raw, "controller", CONTROLLER)
    if top is None:
        return ControllerPlan()
    xcs = []
    for i, item in enumerate(c.listing(CONTROLLER.get(top, "cross_connects"), "controller.cross_connects")):
        at = f"controller.cross_connects[{i}]"
        entry = _entry(c, item, at, CONTROLLER_CROSS_CONNECT)
        if entry is None:
            continue
        switch = _node(c, entry, at, topology, "switch", CONTROLLER_CROSS_CONNECT, "switch")
        ports = [c.integer(CONTROLLER_CROSS_CONNECT.get(entry, k), f"{at}.{k}", 1) if k in entry else c.missing(at, k)
                 for k in ("ingress", "egress")]
        if switch and None not in ports:
            xcs.append(CrossConnect(switch, ports[0], ports[1]))
    links = []
    for i, item in enumerate(c.listing(CONTROLLER.get(top, "qkd_links"), "controller.qkd_links")):
        at = f"controller.qkd_links[{i}]"
        entry = _entry(c, item, at, QKD_LINK)
        if entry is None:
            continue
        lid = _uuid(c, entry, at, QKD_LINK)
        ends = []
        for where, end in _ends(c, entry, at, QKD_LINK, QKD_LINK_END):
            node = _node(c, end, where, topology, "qkd", QKD_LINK_END)
            iface = c.integer(QKD_LINK_END.get(end, "interface", 1), f"{where}.interface", 1)
            if node and iface:
                ends.append(QkdLinkEnd(node, iface))
        if lid and len(ends) == 2:
            links.append(QkdLinkPlan(lid, ends[0], ends[1]))
    elinks = []
    for i, item in enumerate(c.listing(CONTROLLER.get(top, "entanglement_links"), "controller.entanglement_links")):
        at = f"controller.entanglement_links[{i}]"
        entry = _entry(c, item, at, ENTANGLEMENT_LINK)
        if entry is None:
            continue
        lid = _uuid(c, entry, at, ENTANGLEMENT_LINK)
        ends = []
        for where, end in _ends(c, entry, at, ENTANGLEMENT_LINK, ENTANGLEMENT_END):
            node = _node(c, end, where, topology, "memory", ENTANGLEMENT_END)
            switch = port = None
            if ENTANGLEMENT_END.get(end, "switch") is not None:
                switch = _node(c, end, where, topology, "switch", ENTANGLEMENT_END, "switch")
                port = c.integer(ENTANGLEMENT_END.get(end, "port"), f"{where}.port", 1)
            memory = ENTANGLEMENT_END.get(end, "memory", "mem0")
            if node:
                ends.append(EntanglementEnd(node, str(memory), switch, port))
        cutoff = c.number(entry, "cutoff_ms", at, positive=True, keys=ENTANGLEMENT_LINK)
        if lid and len(ends) == 2:
            elinks.append(EntanglementPlan(lid, ends[0], ends[1], cutoff))
    return ControllerPlan(tuple(xcs), tuple(links), tuple(elinks))


def _scenario(c: Checker, raw: Any, topology: Topology | None) -> tuple[ScenarioStep, ...]:
    steps = []
    for i, item in enumerate(c.listing(raw, "scenario")):
        at = f"scenario[{i}]"
        entry = _entry(c, item, at, SCENARIO_STEP)
        if entry is None:
            continue
        at_s = c.number(entry, "at_s", at, required=True, minimum=0, keys=SCENARIO_STEP)
        text = str(SCENARIO_STEP.get(entry, "text", ""))
        channel, fibre = SCENARIO_STEP.get(entry, "channel"), SCENARIO_STEP.get(entry, "fibre")
        if channel is not None:
            if not isinstance(channel, str) or topology is not None and channel not in topology.classical_channels:
                c.add(f"{at}.channel", f"unknown classical channel {channel!r}")
                continue
            power = c.number(entry, "launch_power_dbm", at, required=True, keys=SCENARIO_STEP)
            if at_s is not None and power is not None:
                steps.append(ScenarioStep(at_s, text, channel=channel, launch_power_dbm=power))
        elif fibre is not None:
            if not isinstance(fibre, str) or topology is not None and fibre not in topology.fibres:
                c.add(f"{at}.fibre", f"unknown fibre {fibre!r}")
                continue
            loss = c.number(entry, "extra_loss_db", at, required=True, minimum=0, keys=SCENARIO_STEP)
            if at_s is not None and loss is not None:
                steps.append(ScenarioStep(at_s, text, fibre=fibre, extra_loss_db=loss))
        elif not (c.guessed(at, "channel") or c.guessed(at, "fibre")):
            c.add(at, "expected 'channel' (with launch_power_dbm) or 'fibre' (with extra_loss_db)")
    return tuple(sorted(steps, key=lambda s: s.at_s))


def _collector(c: Checker, raw: Any) -> CollectorPlan | None:
    if raw is False:
        return None
    if raw is None:
        return CollectorPlan()
    top = _entry(c, raw, "collector", COLLECTOR)
    if top is None:
        return None
    port = c.integer(COLLECTOR.get(top, "prometheus_port", 0), "collector.prometheus_port", 0, 65535)
    return CollectorPlan(port or 0, with_default_alarms(tuple(c.listing(COLLECTOR.get(top, "alarms"), "collector.alarms"))),
                         tuple(c.listing(COLLECTOR.get(top, "actions"), "collector.actions")))
