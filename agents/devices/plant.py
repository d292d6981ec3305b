"""Live state of the passive plant: fibres (attenuation drift, cuts) and switch fabrics.

The switch fabric lives here, not in the switch twin, because light follows the fabric whether
or not a management agent for that switch runs in this process; the twin is its management view.
Every change that can re-route light bumps `Plant.version` so cached traces are recomputed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .physics.switch import SwitchParameters
from .topology import Endpoint, Fibre, Topology
from .topology_keys import CROSS_CONNECT, SWITCH_NODE, SWITCH_PORT


@dataclass(slots=True)
class FibreState:
    spec: Fibre
    attenuation_db_per_km: float
    cut: bool = False
    eavesdropper: float = 0.0
    """Fraction of the pulses an intercept-resend eavesdropper on this fibre attacks (0: none)."""

    @property
    def loss_db(self) -> float:
        return self.spec.length_km * self.attenuation_db_per_km + self.spec.connector_loss_db


@dataclass(slots=True)
class SwitchFabric:
    """Cross-connects of one switch; a port is dark until `dark_until_ns` after a change."""

    name: str
    params: SwitchParameters
    port_ids: tuple[int, ...]
    pairs: dict[int, int] = field(default_factory=dict)
    dark_until_ns: dict[int, int] = field(default_factory=dict)
    port_loss_db: dict[int, float] = field(default_factory=dict)
    """Per-port insertion loss (qstrata-optical-switch): a cross-connect costs the sum of its
    two ports' values; by default each port carries half of the switch's insertion loss."""
    port_crosstalk_db: dict[int, float] = field(default_factory=dict)

    def insertion_loss_db(self, in_port: int, out_port: int) -> float:
        half = self.params.insertion_loss_db / 2.0
        return self.port_loss_db.get(in_port, half) + self.port_loss_db.get(out_port, half)

    def crosstalk_db(self, port: int) -> float:
        """How strongly other lit paths leak into `port`."""
        return self.port_crosstalk_db.get(port, self.params.crosstalk_db)

    def peer(self, port: int) -> int | None:
        """The port light entering `port` leaves by (a beam-steering connection is two-way)."""
        if port in self.pairs:
            return self.pairs[port]
        for ingress, egress in self.pairs.items():
            if egress == port:
                return ingress
        return None

    def is_dark(self, port: int, now_ns: int) -> bool:
        return self.dark_until_ns.get(port, 0) > now_ns


@dataclass(slots=True)
class Plant:
    topology: Topology
    fibres: dict[str, FibreState]
    switches: dict[str, SwitchFabric]
    version: int = 0

    @classmethod
    def build(cls, topology: Topology) -> Plant:
        fibres = {f.id: FibreState(f, f.attenuation_db_per_km) for f in topology.fibres.values()}
        switches = {}
        for node in topology.nodes_of_kind("switch"):
            opts = node.options
            params = SwitchParameters(
                insertion_loss_db=float(SWITCH_NODE.get(opts, "insertion_loss_db", 1.0)),
                crosstalk_db=float(SWITCH_NODE.get(opts, "crosstalk_db", -50.0)),
                switching_time_us=int(SWITCH_NODE.get(opts, "switching_time_us", 25_000)),
            )
            ports = SWITCH_NODE.get(opts, "ports", 16)
            port_ids = tuple(range(1, int(ports) + 1)) if isinstance(ports, int) else tuple(
                sorted(int(SWITCH_PORT.get(p, "id") if isinstance(p, dict) else p) for p in ports)
            )
            fabric = SwitchFabric(node.name, params, port_ids)
            for pair in SWITCH_NODE.get(opts, "cross_connects") or []:
                fabric.pairs[int(CROSS_CONNECT.get(pair, "ingress"))] = int(CROSS_CONNECT.get(pair, "egress"))
            switches[node.name] = fabric
        return cls(topology, fibres, switches)

    def fibre_at(self, end: Endpoint) -> FibreState | None:
        spec = self.topology.fibre_at(end)
        return None if spec is None else self.fibres[spec.id]

    def connect(self, switch: str, ingress: int, egress: int, now_ns: int) -> None:
        """Make (or move) a cross-connect; the ports involved go dark for the switching time."""
        fabric = self.switches[switch]
        touched = {ingress, egress}
        old = fabric.pairs.get(ingress)
        if old is not None:
            touched.add(old)
        fabric.pairs[ingress] = egress
        self._darken(fabric, touched, now_ns)

    def disconnect(self, switch: str, ingress: int, now_ns: int) -> None:
        fabric = self.switches[switch]
        egress = fabric.pairs.pop(ingress, None)
        self._darken(fabric, {ingress} | ({egress} if egress is not None else set()), now_ns)

    def _darken(self, fabric: SwitchFabric, ports: set[int], now_ns: int) -> None:
        until = now_ns + fabric.params.switching_time_us * 1000
        for port in ports:
            fabric.dark_until_ns[port] = until
        self.version += 1

    def set_length(self, fibre_id: str, length_km: float) -> None:
        """Plant records corrected (e.g. by the switch's attached-fibre calibration)."""
        state = self.fibres[fibre_id]
        state.spec = dataclasses.replace(state.spec, length_km=length_km)
        self.version += 1

    def set_attenuation(self, fibre_id: str, db_per_km: float) -> None:
        state = self.fibres[fibre_id]
        state.spec = dataclasses.replace(state.spec, attenuation_db_per_km=db_per_km)
        state.attenuation_db_per_km = db_per_km
        self.version += 1

    def add_loss(self, fibre_id: str, extra_db: float) -> None:
        """A bend or a bad splice: `extra_db` more loss, spread over the fibre's length."""
        spec = self.fibres[fibre_id].spec
        self.set_attenuation(fibre_id, spec.attenuation_db_per_km + extra_db / max(spec.length_km, 1e-3))

    def set_launch_power(self, channel_id: str, dbm: float) -> None:
        """A classical channel's transmitter changed power (lit, dimmed, switched off): the Raman
        noise it causes in every fibre it crosses changes with it."""
        channels = self.topology.classical_channels
        channels[channel_id] = dataclasses.replace(channels[channel_id], launch_power_dbm=float(dbm))
        self.version += 1

    def set_eavesdropper(self, fibre_id: str, fraction: float) -> None:
        """An intercept-resend eavesdropper now attacks `fraction` of the pulses crossing the fibre
        (0: she has left). Links read it at their next tick, so an attack starts and ends on a
        tick boundary of the simulated clock."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"an eavesdropper attacks a fraction of the pulses in [0, 1], not {fraction}")
        self.fibres[fibre_id].eavesdropper = float(fraction)
        self.version += 1

    def set_cut(self, fibre_id: str, cut: bool) -> None:
        self.fibres[fibre_id].cut = cut
        self.version += 1
