"""Where light goes and what it picks up on the way: traces, loss, background noise.

Pure functions of a `Plant`: a trace follows fibre -> switch port -> cross-connect -> egress ->
fibre ... until it reaches a device that is not a switch. Loss sums fibre loss and switch
insertion loss; the background yield adds Raman scattering of classical channels sharing the
fibres and crosstalk from lit neighbour ports of the switches on the way (physics.md §1, §3).
"""

from __future__ import annotations

from dataclasses import dataclass

from .physics import raman
from .physics.switch import crosstalk_power_w
from .physics.units import dbm_to_watt, photon_energy_j, watt_to_dbm
from .plant import Plant
from .topology import Endpoint

MAX_HOPS = 64


@dataclass(frozen=True, slots=True)
class FibreHop:
    fibre: str
    entry: Endpoint
    exit: Endpoint


@dataclass(frozen=True, slots=True)
class SwitchHop:
    switch: str
    in_port: int
    out_port: int


Hop = FibreHop | SwitchHop


@dataclass(frozen=True, slots=True)
class Trace:
    """The light path from a port. `end` is the device port reached, or None with `broken`."""

    start: Endpoint
    hops: tuple[Hop, ...]
    end: Endpoint | None
    broken: str | None = None

    def reversed(self) -> Trace:
        """The same path walked from the other end (only meaningful when `end` is set)."""
        hops: list[Hop] = []
        for hop in reversed(self.hops):
            if isinstance(hop, FibreHop):
                hops.append(FibreHop(hop.fibre, hop.exit, hop.entry))
            else:
                hops.append(SwitchHop(hop.switch, hop.out_port, hop.in_port))
        return Trace(self.end or self.start, tuple(hops), self.start, self.broken)


def trace(plant: Plant, start: Endpoint) -> Trace:
    """Follow the light leaving `start`, a device port. When `start` is a switch port the light
    enters the switch there (a QKD interface whose attachment point names a switch port but whose
    patch cord the topology does not list)."""
    hops: list[Hop] = []
    here = start
    if start.device in plant.switches:
        here = _through_switch(plant, start, hops)
        if here is None:
            return Trace(start, tuple(hops), None, _no_connection(start))
    for _ in range(MAX_HOPS):
        fibre = plant.fibre_at(here)
        if fibre is None:
            return Trace(start, tuple(hops), None, f"nothing plugged into {here.device} port {here.port}")
        far = fibre.spec.other_end(here)
        hops.append(FibreHop(fibre.spec.id, here, far))
        if fibre.cut:
            return Trace(start, tuple(hops), None, f"fibre {fibre.spec.id} is cut")
        if far.device not in plant.switches:
            return Trace(start, tuple(hops), far)
        nxt = _through_switch(plant, far, hops)
        if nxt is None:
            return Trace(start, tuple(hops), None, _no_connection(far))
        here = nxt
    return Trace(start, tuple(hops), None, "light path loops")


def _through_switch(plant: Plant, entry: Endpoint, hops: list[Hop]) -> Endpoint | None:
    fabric = plant.switches[entry.device]
    out = fabric.peer(entry.port)
    if out is None:
        return None
    hops.append(SwitchHop(entry.device, entry.port, out))
    return Endpoint(entry.device, out)


def _no_connection(at: Endpoint) -> str:
    return f"{at.device} port {at.port} has no cross-connect"


def loss_db(plant: Plant, path: Trace) -> float:
    """Fibre loss (with its current attenuation) plus switch insertion losses."""
    total = 0.0
    for hop in path.hops:
        if isinstance(hop, FibreHop):
            total += plant.fibres[hop.fibre].loss_db
        else:
            total += plant.switches[hop.switch].insertion_loss_db(hop.in_port, hop.out_port)
    return total


def eavesdroppers(plant: Plant, path: Trace) -> tuple[tuple[str, float], ...]:
    """(fibre, fraction of pulses attacked) of every eavesdropper on the path, in path order."""
    return tuple((hop.fibre, plant.fibres[hop.fibre].eavesdropper) for hop in path.hops
                 if isinstance(hop, FibreHop) and plant.fibres[hop.fibre].eavesdropper > 0.0)


def dark_until_ns(plant: Plant, path: Trace) -> int:
    """Until when a switch on the path is still moving (0 when none is)."""
    until = 0
    for hop in path.hops:
        if isinstance(hop, SwitchHop):
            dark = plant.switches[hop.switch].dark_until_ns
            until = max(until, dark.get(hop.in_port, 0), dark.get(hop.out_port, 0))
    return until


@dataclass(frozen=True, slots=True)
class Light:
    """Classical light in one fibre: entering at `entry` with `power_w`."""

    channel: str
    entry: Endpoint
    power_w: float
    wavelength_nm: float
    beta: float


@dataclass(frozen=True, slots=True)
class ClassicalLight:
    """Where every classical channel shines: per fibre, and into each switch port."""

    in_fibre: dict[str, tuple[Light, ...]]
    into_port: dict[Endpoint, tuple[Light, ...]]

    def port_power_dbm(self, end: Endpoint) -> float:
        return watt_to_dbm(sum(light.power_w for light in self.into_port.get(end, ())))


def classical_light(plant: Plant) -> ClassicalLight:
    """Propagate every classical channel from its launch through fibres and cross-connects."""
    in_fibre: dict[str, list[Light]] = {}
    into_port: dict[Endpoint, list[Light]] = {}
    for ch in plant.topology.classical_channels.values():
        spec = plant.topology.fibres[ch.fibre]
        start = spec.a if spec.a.device == ch.source else spec.b
        beta = raman.DEFAULT_BETA_PER_KM_NM if ch.raman_beta_per_km_nm is None else ch.raman_beta_per_km_nm
        power = dbm_to_watt(ch.launch_power_dbm)
        here = start
        for _ in range(MAX_HOPS):
            fibre = plant.fibre_at(here)
            if fibre is None or fibre.cut:
                break
            in_fibre.setdefault(fibre.spec.id, []).append(Light(ch.id, here, power, ch.wavelength_nm, beta))
            power *= 10.0 ** (-fibre.loss_db / 10.0)
            far = fibre.spec.other_end(here)
            if far.device not in plant.switches:
                break
            into_port.setdefault(far, []).append(Light(ch.id, far, power, ch.wavelength_nm, beta))
            fabric = plant.switches[far.device]
            out = fabric.peer(far.port)
            if out is None:
                break
            power *= 10.0 ** (-fabric.insertion_loss_db(far.port, out) / 10.0)
            here = Endpoint(far.device, out)
    return ClassicalLight(
        {k: tuple(v) for k, v in in_fibre.items()}, {k: tuple(v) for k, v in into_port.items()}
    )


def background_photon_rate(
    plant: Plant, path: Trace, light: ClassicalLight, filter_nm: float, wavelength_nm: float
) -> float:
    """Noise photons per second reaching the receiver at the end of `path` (walked tx -> rx).

    Raman light is born at the quantum wavelength inside the receiver's filter; crosstalk leaks
    the neighbour's own light. Each contribution is attenuated by the rest of the path.
    """
    transmittances = [_transmittance(plant, hop) for hop in path.hops]
    downstream = 1.0
    rate = 0.0
    for index in range(len(path.hops) - 1, -1, -1):
        hop = path.hops[index]
        if isinstance(hop, FibreHop):
            fibre = plant.fibres[hop.fibre]
            noise_w = 0.0
            for lt in light.in_fibre.get(hop.fibre, ()):
                formula = raman.forward_power_w if lt.entry == hop.entry else raman.backward_power_w
                noise_w += formula(
                    lt.power_w, fibre.spec.length_km, fibre.attenuation_db_per_km, filter_nm, lt.beta
                )
            rate += noise_w * downstream / photon_energy_j(wavelength_nm)
        else:
            fabric = plant.switches[hop.switch]
            for nbr in _neighbours(fabric.port_ids, hop.in_port, hop.out_port):
                for lt in light.into_port.get(Endpoint(hop.switch, nbr), ()):
                    leak_w = crosstalk_power_w(watt_to_dbm(lt.power_w), fabric.crosstalk_db(hop.out_port))
                    rate += leak_w * downstream / photon_energy_j(lt.wavelength_nm)
        downstream *= transmittances[index]
    return rate


def _transmittance(plant: Plant, hop: Hop) -> float:
    if isinstance(hop, FibreHop):
        return 10.0 ** (-plant.fibres[hop.fibre].loss_db / 10.0)
    return 10.0 ** (-plant.switches[hop.switch].insertion_loss_db(hop.in_port, hop.out_port) / 10.0)


def _neighbours(port_ids: tuple[int, ...], *ports: int) -> set[int]:
    """Ports physically next to the given ones in the fibre array (id +-1)."""
    valid = set(port_ids)
    near = {p + d for p in ports for d in (-1, 1)}
    return (near & valid) - set(ports)
