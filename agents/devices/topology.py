"""The physical plant as written in a topology YAML: devices, fibres, classical channels.

A topology is data only; `World` turns it into live state. Format::

    name: default
    nodes:
      - {name: alice, kind: qkd, location: Lab A, interfaces: [{id: 1}]}
      - {name: sw1, kind: switch, ports: 16, cross_connects: [{ingress: 1, egress: 9}]}
    fibres:
      - {id: f1, length_km: 10, attenuation_db_per_km: 0.2,
         a: {device: alice, port: 1}, b: {device: sw1, port: 1}}
    classical_channels:
      - {id: c1, fibre: f1, from: alice, launch_power_dbm: -10, wavelength_nm: 1310}

Node keys other than `name` and `kind` are the options of that kind's twin. A fibre end is a
device port: a QKD interface id (`qkdi_id`), a switch port id, or a memory node's port. A
classical channel enters `fibre` at the end of device `from` and follows the light path on
(through cross-connects) like any light would.

Which keys each entry may hold is declared once, in `topology_keys`, and read through it; a key
that no reader knows is a problem of the file (`topology_check`), never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .topology_keys import CHANNEL, FIBRE, FIBRE_END, NODE, TOP


class TopologyError(ValueError):
    """The topology file is inconsistent (unknown device, port used twice, ...).

    `issues` are one line each, ``FILE: YAML.PATH: what is wrong``; the message is the first one
    (and how many more)."""

    def __init__(self, message: str, issues: list[str] | None = None) -> None:
        self.issues = issues or [message]
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(self.issues[0] + more if issues else message)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A fibre end: device name and port number on it."""

    device: str
    port: int


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    """The entry's other keys: those of every node (`topology_keys.NODE`, read by the properties
    below) and its kind's own (read by its twin)."""

    @property
    def location(self) -> str:
        return str(NODE.get(self.options, "location") or "")

    @property
    def qkdn_id(self) -> str | None:
        """The node's uuid when the file fixes it (else the world derives one from name and seed)."""
        value = NODE.get(self.options, "qkdn_id")
        return str(value) if value else None

    @property
    def netconf_port(self) -> int | None:
        """The agent's NETCONF port when the file fixes it."""
        return int(NODE.get(self.options, "netconf_port") or 0) or None

    @property
    def gnmi_port(self) -> int | None:
        """The agent's own gNMI port when the file fixes it (else it shares `qstrata up`'s gateway)."""
        return int(NODE.get(self.options, "gnmi_port") or 0) or None


@dataclass(frozen=True, slots=True)
class Fibre:
    id: str
    length_km: float
    attenuation_db_per_km: float
    a: Endpoint
    b: Endpoint
    connector_loss_db: float = 0.0

    @property
    def loss_db(self) -> float:
        return self.length_km * self.attenuation_db_per_km + self.connector_loss_db

    def other_end(self, end: Endpoint) -> Endpoint:
        return self.b if end == self.a else self.a


@dataclass(frozen=True, slots=True)
class ClassicalChannel:
    id: str
    fibre: str
    source: str
    launch_power_dbm: float
    wavelength_nm: float = 1310.0
    raman_beta_per_km_nm: float | None = None


@dataclass(frozen=True)
class Topology:
    name: str
    nodes: dict[str, Node]
    fibres: dict[str, Fibre]
    classical_channels: dict[str, ClassicalChannel]
    options: dict[str, Any] = field(default_factory=dict)
    plugged: dict[Endpoint, Fibre] = field(default_factory=dict)
    """Which fibre is plugged into each port (derived from `fibres`)."""

    @property
    def seed(self) -> int:
        return int(TOP.get(self.options, "seed", 0))

    @property
    def qkd_parameters(self) -> Any:
        """The QKD nodes' parameter set unless a node names its own (a name, or {base, field: value})."""
        return TOP.get(self.options, "qkd_parameters")

    @property
    def gnmi_gateway_port(self) -> int:
        """`qstrata up`'s one gNMI port for the agents without their own (0: a free one)."""
        return int(TOP.get(self.options, "gnmi_gateway_port") or 0)

    def fibre_at(self, end: Endpoint) -> Fibre | None:
        """The fibre plugged into a port, if any."""
        return self.plugged.get(end)

    def ports_of(self, device: str) -> list[int]:
        """Ports of a device that have a fibre plugged in, in order."""
        return sorted(end.port for end in self.plugged if end.device == device)

    def nodes_of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]


def _endpoint(raw: dict[str, Any]) -> Endpoint:
    return Endpoint(str(FIBRE_END.get(raw, "device")), int(FIBRE_END.get(raw, "port")))


def problems(doc: Any, source: str = "topology") -> list[str]:
    """Every problem of a topology document (`topology_check`) as ``SOURCE: YAML.PATH: what is
    wrong``; [] when `parse` will build it."""
    from .topology_check import check

    return [f"{source}: {issue}" for issue in check(doc)]


def parse(doc: dict[str, Any], source: str = "topology") -> Topology:
    """Check the YAML document's dict (`problems`), then build the `Topology`."""
    issues = problems(doc, source)
    if issues:
        raise TopologyError("", issues)
    nodes: dict[str, Node] = {}
    for raw in TOP.get(doc, "nodes") or []:
        name, kind = str(NODE.get(raw, "name")), str(NODE.get(raw, "kind"))
        nodes[name] = Node(name, kind, {k: v for k, v in raw.items() if k not in ("name", "kind")})
    fibres: dict[str, Fibre] = {}
    plugged: dict[Endpoint, Fibre] = {}
    for raw in TOP.get(doc, "fibres") or []:
        fibre = Fibre(
            id=str(FIBRE.get(raw, "id")),
            length_km=float(FIBRE.get(raw, "length_km")),
            attenuation_db_per_km=float(FIBRE.get(raw, "attenuation_db_per_km", 0.2)),
            a=_endpoint(FIBRE.get(raw, "a")),
            b=_endpoint(FIBRE.get(raw, "b")),
            connector_loss_db=float(FIBRE.get(raw, "connector_loss_db", 0.0)),
        )
        for end in (fibre.a, fibre.b):
            plugged[end] = fibre
        fibres[fibre.id] = fibre
    channels: dict[str, ClassicalChannel] = {}
    for raw in TOP.get(doc, "classical_channels") or []:
        beta = CHANNEL.get(raw, "raman_beta_per_km_nm")
        channel = ClassicalChannel(
            id=str(CHANNEL.get(raw, "id")), fibre=str(CHANNEL.get(raw, "fibre")), source=str(CHANNEL.get(raw, "from")),
            launch_power_dbm=float(CHANNEL.get(raw, "launch_power_dbm")),
            wavelength_nm=float(CHANNEL.get(raw, "wavelength_nm", 1310.0)),
            raman_beta_per_km_nm=None if beta is None else float(beta),
        )
        channels[channel.id] = channel
    options = {k: v for k, v in doc.items() if k not in ("name", "nodes", "fibres", "classical_channels")}
    return Topology(str(TOP.get(doc, "name", "unnamed")), nodes, fibres, channels, options, plugged)


def read(path: str | Path) -> Any:
    """A topology YAML file's document, unchecked (`TopologyError`: it cannot be read, or is not
    YAML)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(parse)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TopologyError(f"{path}: {where}: not YAML: {problem}") from None


def load(path: str | Path) -> Topology:
    """Read and check a topology YAML file."""
    return parse(read(path), str(path))


DEFAULT_TOPOLOGY = Path(__file__).with_name("topologies") / "default.yaml"
