"""What `qstrata up` does with a network besides starting its agents, read from the topology file.

Three optional top-level sections of the topology YAML (ignored by the twins):

    controller:      # configured over NETCONF after start-up, unless --bare
      cross_connects: [{switch: sw1, ingress: 1, egress: 9}]
      qkd_links: [{id: UUID, a: {node: alice, interface: 1}, b: {node: bob, interface: 1}}]
      entanglement_links: [{id: UUID, cutoff_ms: 300, a: {node: mem-a, memory: mem0, switch: sw1, port: 5},
                            b: {node: mem-b, memory: mem0, switch: sw1, port: 6}}]
      saes: [{id: sae-alice, node: alice}]          # key delivery (ETSI GS QKD 014): an SAE and its KME's node
      qkd_apps: [{id: UUID, master: sae-alice, slaves: [sae-bob],
                  session: {id: UUID, rate: 4000000, burst: 4000000},     # token bucket: bit/s, bits
                  fetch: {rate: 1600000, key_size: 8192}}]                # up's built-in application
    scenario:        # scripted disturbances, simulated seconds after the controller is done
      - {at_s: 60, channel: c-tenant, launch_power_dbm: -18, text: "..."}    # Raman noise
      - {at_s: 90, fibre: spool-25, extra_loss_db: 3, text: "..."}          # a bent fibre
      - {at_s: 120, fibre: spool-25, eavesdropper: 0.3, until_s: 180}       # intercept-resend on 30 %
    collector:       # the collector's alarm rules and actions (collectors/README.md syntax)
      prometheus_port: 0
      alarms: [...]  # without an unreachable-for rule, DEFAULT_UNREACHABLE is added
      actions: [...]

Problems are reported like the rest of the topology: ``FILE: YAML.PATH: what is wrong``. The keys
each entry may hold are declared once, as the `Keys` below, and read only through them (see
agents/devices/topology_keys.py).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qstrata.agents.devices.topology import Topology
from qstrata.agents.devices.topology_check import Checker
from qstrata.agents.devices.topology_keys import TOP, Keys
from qstrata.bindings.spelling import hint

CONTROLLER = Keys("controller section", "cross_connects", "qkd_links", "entanglement_links", "saes", "qkd_apps")
CONTROLLER_CROSS_CONNECT = Keys("controller cross-connect", "switch", "ingress", "egress")
QKD_LINK = Keys("QKD link", "id", "a", "b")
QKD_LINK_END = Keys("QKD link end", "node", "interface")
ENTANGLEMENT_LINK = Keys("entanglement link", "id", "cutoff_ms", "a", "b")
ENTANGLEMENT_END = Keys("entanglement link end", "node", "memory", "switch", "port")
SAE = Keys("SAE", "id", "node")
QKD_APP = Keys("qkd_app", "id", "master", "slaves", "session", "fetch")
SESSION = Keys("session", "id", "rate", "burst")
FETCH = Keys("fetch", "rate", "key_size")
SAE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
"""SAE IDs of the plan: what every ETSI GS QKD 014 client puts in a URL path as it is (none of them
encodes it), a strict subset of what qstrata-ss and `qstrata sae add` accept."""
SCENARIO_STEP = Keys("scenario step", "at_s", "text", "channel", "launch_power_dbm", "fibre", "extra_loss_db",
                     "eavesdropper", "until_s")
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
class SaePlan:
    id: str
    """The SAE ID: the common name of its client certificate."""
    node: str
    """The QKD node whose KME it calls."""


@dataclass(frozen=True)
class SessionPlan:
    id: str
    rate: int
    """Bit/s (simulated: `qstrata up --speed X` configures X times as many per wall second)."""
    burst: int


@dataclass(frozen=True)
class FetchPlan:
    rate: float
    """Bits per simulated second that up's built-in application fetches."""
    key_size: int


@dataclass(frozen=True)
class QkdAppPlan:
    id: str
    master: str
    slaves: tuple[str, ...]
    session: SessionPlan | None = None
    fetch: FetchPlan | None = None


Hop = tuple[str, str]
"""(next hop node, QKD link id) on the way to a node."""


@dataclass(frozen=True)
class ControllerPlan:
    cross_connects: tuple[CrossConnect, ...] = ()
    qkd_links: tuple[QkdLinkPlan, ...] = ()
    entanglement_links: tuple[EntanglementPlan, ...] = ()
    saes: tuple[SaePlan, ...] = ()
    qkd_apps: tuple[QkdAppPlan, ...] = ()

    def node_of(self, sae: str) -> str:
        """The QKD node of a declared SAE."""
        return next(s.node for s in self.saes if s.id == sae)

    def kme_nodes(self) -> list[str]:
        """The QKD nodes whose KMEs the controller configures: with key delivery in the plan, every
        node of a QKD link or of an SAE, in the plan's order."""
        if not self.saes:
            return []
        names = [n for link in self.qkd_links for n in (link.a.node, link.b.node)] + [s.node for s in self.saes]
        return list(dict.fromkeys(names))

    def kme_routes(self) -> dict[str, dict[str, Hop]]:
        """Each KME node's forwarding table: for every other node it reaches over the QKD links, the
        first hop of a path with the fewest hops (ties: the links in the plan's order). A relayed
        path goes through trusted nodes, each of which uses its own table."""
        adjacent: dict[str, list[Hop]] = {}
        for link in self.qkd_links:
            adjacent.setdefault(link.a.node, []).append((link.b.node, link.id))
            adjacent.setdefault(link.b.node, []).append((link.a.node, link.id))
        tables: dict[str, dict[str, Hop]] = {}
        for source in self.kme_nodes():
            first: dict[str, Hop] = {}
            frontier = [(node, (node, link)) for node, link in adjacent.get(source, [])]
            while frontier:
                following = []
                for node, hop in frontier:
                    if node != source and node not in first:
                        first[node] = hop
                        following += [(n, hop) for n, _ in adjacent.get(node, [])]
                frontier = following
            tables[source] = first
        return tables


@dataclass(frozen=True)
class ScenarioStep:
    at_s: float
    """Simulated seconds after the controller finished."""
    text: str
    channel: str | None = None
    launch_power_dbm: float | None = None
    fibre: str | None = None
    extra_loss_db: float | None = None
    eavesdropper: float | None = None
    """Fraction of the fibre's pulses an intercept-resend eavesdropper attacks from now on (0: she
    leaves)."""


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


def _positive_integers(c: Checker, entry: dict, at: str, keys: Keys, *names: str) -> list[int | None]:
    """The required integers `names` of `entry` (1 or more), None for each that is missing or wrong."""
    return [c.integer(keys.get(entry, k), f"{at}.{k}", 1) if k in entry else c.missing(at, k) for k in names]


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
    for at, entry in c.entries(CONTROLLER.get(top, "cross_connects"), "controller.cross_connects",
                               CONTROLLER_CROSS_CONNECT):
        switch = _node(c, entry, at, topology, "switch", CONTROLLER_CROSS_CONNECT, "switch")
        ports = _positive_integers(c, entry, at, CONTROLLER_CROSS_CONNECT, "ingress", "egress")
        if switch and None not in ports:
            xcs.append(CrossConnect(switch, ports[0], ports[1]))
    links = []
    for at, entry in c.entries(CONTROLLER.get(top, "qkd_links"), "controller.qkd_links", QKD_LINK):
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
    for at, entry in c.entries(CONTROLLER.get(top, "entanglement_links"), "controller.entanglement_links",
                               ENTANGLEMENT_LINK):
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
    saes, declared = _saes(c, CONTROLLER.get(top, "saes"), topology)
    apps = _qkd_apps(c, CONTROLLER.get(top, "qkd_apps"), declared)
    return ControllerPlan(tuple(xcs), tuple(links), tuple(elinks), saes, apps)


def _saes(c: Checker, raw: Any, topology: Topology | None) -> tuple[tuple[SaePlan, ...], set[str]]:
    """The well-formed SAEs, and every SAE ID declared (the applications may name an SAE whose
    entry has a problem of its own: that is reported once, at the entry)."""
    saes: dict[str, SaePlan] = {}
    declared: set[str] = set()
    for at, entry in c.entries(raw, "controller.saes", SAE):
        sae_id = SAE.get(entry, "id")
        if sae_id is None:
            c.missing(at, "id", "the SAE ID")
        elif not isinstance(sae_id, str) or not SAE_ID.match(sae_id):
            c.add(f"{at}.id", f"expected an SAE ID ([A-Za-z0-9][A-Za-z0-9._-]*, at most 255), got {sae_id!r}")
            sae_id = None
        elif sae_id in declared:
            c.add(f"{at}.id", f"SAE {sae_id} is listed twice")
            sae_id = None
        else:
            declared.add(sae_id)
        node = _node(c, entry, at, topology, "qkd", SAE)
        if sae_id and node:
            saes[sae_id] = SaePlan(sae_id, node)
    return tuple(saes.values()), declared


def _qkd_apps(c: Checker, raw: Any, saes: set[str]) -> tuple[QkdAppPlan, ...]:
    apps = []
    for at, entry in c.entries(raw, "controller.qkd_apps", QKD_APP):
        app_id = _uuid(c, entry, at, QKD_APP)
        master = QKD_APP.get(entry, "master")
        if master is None:
            c.missing(at, "master", "the SAE that asks for keys (server_app_id)")
        elif not isinstance(master, str) or master not in saes:
            c.add(f"{at}.master", f"{master!r} is not an SAE of controller.saes{hint(master, sorted(saes))}")
            master = None
        slaves = []
        for j, slave in enumerate(c.listing(QKD_APP.get(entry, "slaves"), f"{at}.slaves")):
            if not isinstance(slave, str) or slave not in saes:
                c.add(f"{at}.slaves[{j}]", f"{slave!r} is not an SAE of controller.saes{hint(slave, sorted(saes))}")
            elif slave == master or slave in slaves:
                c.add(f"{at}.slaves[{j}]", f"{slave} is the master or listed twice")
            else:
                slaves.append(slave)
        if "slaves" not in entry:
            c.missing(at, "slaves", "the SAEs that fetch the keys (client_app_id)")
        session = _session(c, QKD_APP.get(entry, "session"), f"{at}.session")
        fetch = _fetch(c, QKD_APP.get(entry, "fetch"), f"{at}.fetch")
        if app_id and master and slaves and session is not False and fetch is not False:
            apps.append(QkdAppPlan(app_id, master, tuple(slaves), session or None, fetch or None))
    return tuple(apps)


def _session(c: Checker, raw: Any, at: str) -> SessionPlan | None | bool:
    """The session's plan, None without one, False when it has problems."""
    if raw is None:
        return None
    entry = _entry(c, raw, at, SESSION)
    if entry is None:
        return False
    session_id = _uuid(c, entry, at, SESSION)
    rate, burst = _positive_integers(c, entry, at, SESSION, "rate", "burst")
    if session_id and rate and burst:
        return SessionPlan(session_id, rate, burst)
    return False


def _fetch(c: Checker, raw: Any, at: str) -> FetchPlan | None | bool:
    """What up's built-in application fetches: None for nothing, False when it has problems."""
    if raw is None:
        return None
    entry = _entry(c, raw, at, FETCH)
    if entry is None:
        return False
    rate = c.number(entry, "rate", at, required=True, positive=True, keys=FETCH)
    size = c.integer(FETCH.get(entry, "key_size", 256), f"{at}.key_size", 8)
    if size is not None and size % 8:
        c.add(f"{at}.key_size", f"must be a multiple of 8 bits, got {size}")
        size = None
    if rate is not None and size is not None:
        return FetchPlan(rate, size)
    return False


def _scenario(c: Checker, raw: Any, topology: Topology | None) -> tuple[ScenarioStep, ...]:
    steps = []
    for at, entry in c.entries(raw, "scenario", SCENARIO_STEP):
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
            if SCENARIO_STEP.get(entry, "eavesdropper") is not None:
                fraction = c.number(entry, "eavesdropper", at, required=True, minimum=0, keys=SCENARIO_STEP)
                until = c.number(entry, "until_s", at, minimum=0, keys=SCENARIO_STEP)
                if fraction is not None and fraction > 1:
                    c.add(f"{at}.eavesdropper", f"{fraction:g} is not a fraction of the pulses (0 to 1)")
                elif until is not None and at_s is not None and until <= at_s:
                    c.add(f"{at}.until_s", f"{until:g} is not after at_s ({at_s:g})")
                elif at_s is not None and fraction is not None:
                    steps += eavesdropper_steps(fibre, fraction, at_s, until, text)
                continue
            loss = c.number(entry, "extra_loss_db", at, required=True, minimum=0, keys=SCENARIO_STEP)
            if at_s is not None and loss is not None:
                steps.append(ScenarioStep(at_s, text, fibre=fibre, extra_loss_db=loss))
        elif not (c.guessed(at, "channel") or c.guessed(at, "fibre")):
            c.add(at, "expected 'channel' (with launch_power_dbm) or 'fibre' (with extra_loss_db or eavesdropper)")
    return tuple(sorted(steps, key=lambda s: s.at_s))


def eavesdropper_steps(fibre: str, fraction: float, at_s: float, until_s: float | None = None,
                       text: str = "") -> list[ScenarioStep]:
    """An intercept-resend eavesdropper on `fibre` from `at_s` (until `until_s`, if given)."""
    steps = [ScenarioStep(at_s, text, fibre=fibre, eavesdropper=fraction)]
    if until_s is not None:
        steps.append(ScenarioStep(until_s, "", fibre=fibre, eavesdropper=0.0))
    return steps


EAVESDROPPER_FLAG = re.compile(r"^(?P<fibre>.+):(?P<fraction>[^:@]+?)(?P<pct>%?)"
                               r"(?:@(?P<start>[^-]+)(?:-(?P<stop>.+))?)?$")


def eavesdropper_flag(spec: str, topology: Topology | None) -> list[ScenarioStep]:
    """`up --eavesdropper FIBRE:FRACTION[@START[-STOP]]` as scenario steps (FRACTION 0..1 or a
    percentage, START and STOP simulated seconds after the controller is done; default: from 0 to
    the end); raises ValueError with what is wrong, in one line."""
    found = EAVESDROPPER_FLAG.match(spec.strip())
    if found is None:
        raise ValueError("expected FIBRE:FRACTION[@START[-STOP]], e.g. spool-25:0.3@60-120")
    fibre = found["fibre"]
    if topology is not None and fibre not in topology.fibres:
        raise ValueError(f"unknown fibre {fibre!r}" + hint(fibre, list(topology.fibres)))
    try:
        fraction = float(found["fraction"]) / (100.0 if found["pct"] else 1.0)
        start = float(found["start"]) if found["start"] is not None else 0.0
        stop = float(found["stop"]) if found["stop"] is not None else None
    except ValueError:
        raise ValueError("FRACTION, START and STOP are numbers, e.g. spool-25:0.3@60-120") from None
    if not 0.0 < fraction <= 1.0 or not math.isfinite(fraction):
        raise ValueError(f"the fraction of pulses attacked is above 0 and at most 1 (or 100%), not {found['fraction']}"
                         f"{found['pct']}")
    if not (math.isfinite(start) and start >= 0.0) or stop is not None and not (math.isfinite(stop) and stop > start):
        raise ValueError("START is 0 or more and STOP after START (simulated seconds)")
    return eavesdropper_steps(fibre, fraction, start, stop, "")


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
