"""Digital twin of a Polatis-class fibre cross-connect switch.

Serves `optical-switch` (cross-connects, port-config, opm-power, product-information) and the
`qstrata-optical-switch` augment (per-port insertion-loss, crosstalk, attached-fibre;
switch-characteristics). The fabric itself lives in the world's plant so that light follows it;
this twin is its management view:

- a committed cross-connect change darkens the ports involved for `switching-time`, and the QKD
  links riding them drop to PENDING, re-lock and come back with the new path's loss;
- opm-power reports the light arriving at each port from outside (classical channels traced
  through the plant), clipped to the monitor's range -60..+28 dBm;
- port status is FAILED while the attached fibre is cut.

The switch has no YANG notifications of its own here (optical-switch only defines APS ones), so
it emits DeviceEvent(kind="state") when a port's status changes, when a cross-connect finishes
switching, and when a port's power moves by more than 1 dB.

prepare() refuses ports the hardware does not have, an egress shared by two pairs, a port that
is both an ingress and an egress, a port connected to itself, and re-cabling by configuration
(an attached-fibre that names another fibre or far end than the plant has). Per-port
insertion-loss and crosstalk and the fibre's length/attenuation are twin calibration: committed
values replace the modelled ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from qstrata.bindings.generated import optical_switch as opsw

from .base import ConfigTransaction, DeviceClock, DeviceEvent, DeviceRefusal, Inventory, JsonTree
from .config_model import ChangeTracker, Staged, update_records
from .events import EventHub
from .physics.switch import opm_reading_dbm
from .plant import SwitchFabric
from .topology import Endpoint
from .topology_keys import SWITCH_NODE
from .world import DEVICE_ORDER, World
from .yangjson import as_float, decimal64

OPSW = "optical-switch"
QSOPSW = "qstrata-optical-switch"
POWER_CHANGE_DB = 1.0


PAIRS = (f"{OPSW}:cross-connects", "pair")
PORTS = (f"{OPSW}:port-config", "port")
WATCH = {PAIRS: ("ingress",), PORTS: ("port-id",)}
"""The lists the twin keeps from change lists, with their keys (`config_model.ConfigModel`)."""


_pair_path = opsw.cross_connects.pair.entry
_port_path = opsw.port_config.port.entry


class SwitchTwin:
    """DeviceDriver of one optical switch in a `World`."""

    tick_order = DEVICE_ORDER

    def __init__(self, world: World, name: str, **options: Any) -> None:
        self.name = name
        self.world = world
        self.clock: DeviceClock = world
        node = world.topology.nodes.get(name)
        self.options = {**(node.options if node else {}), **options}
        if name not in world.plant.switches:
            raise ValueError(f"{name} is not a switch of topology {world.topology.name}")
        self.fabric: SwitchFabric = world.plant.switches[name]
        self.hub = EventHub()
        self._status: dict[int, str] = {}
        self._power: dict[int, float] = {}
        self._switching: set[int] = set()
        self._pairs: dict[int, int] = {}
        """Configured cross-connects, ingress -> egress."""
        self.tracker = ChangeTracker(name, (PAIRS[0], PORTS[0]), WATCH)
        """The configuration as the datastore has it, kept from change lists."""

    # -- inventory ---------------------------------------------------------------------------

    def _attached(self, port: int) -> dict[str, Any] | None:
        fibre = self.world.plant.fibre_at(Endpoint(self.name, port))
        if fibre is None:
            return None
        far = fibre.spec.other_end(Endpoint(self.name, port))
        return {
            "fibre-id": fibre.spec.id,
            "length": decimal64(fibre.spec.length_km, 3),
            "attenuation": decimal64(fibre.attenuation_db_per_km, 3),
            "remote-device": far.device,
            "remote-port": str(far.port),
        }

    def inventory_config(self) -> JsonTree:
        labels = {int(k): str(v) for k, v in (SWITCH_NODE.get(self.options, "port_labels") or {}).items()}
        ports = []
        for port in self.fabric.port_ids:
            entry: dict[str, Any] = {
                "port-id": port,
                f"{QSOPSW}:insertion-loss": decimal64(self.fabric.insertion_loss_db(port, port) / 2.0, 2),
                f"{QSOPSW}:crosstalk": decimal64(self.fabric.crosstalk_db(port), 1),
            }
            attached = self._attached(port)
            label = labels.get(port) or (attached["remote-device"] if attached else "")
            if label:
                entry["label"] = label
            if attached:
                entry[f"{QSOPSW}:attached-fibre"] = attached
            ports.append(entry)
        config: JsonTree = {f"{OPSW}:port-config": {"port": ports}}
        pairs = [{"ingress": i, "egress": e} for i, e in sorted(self.fabric.pairs.items())]
        if pairs:
            config[f"{OPSW}:cross-connects"] = {"pair": pairs}
        return config

    # -- DeviceDriver ------------------------------------------------------------------------

    async def start(self) -> Inventory:
        self.world.host(self.name, self)
        self.world.attach(self)
        self._status = {p: self._port_status(p) for p in self.fabric.port_ids}
        self._power = {p: self._power_dbm(p) for p in self.fabric.port_ids}
        config = self.inventory_config()
        self._pairs = dict(self.fabric.pairs)
        self.tracker.seed(config)
        return Inventory(modules=(OPSW, QSOPSW), config=config)

    async def prepare(self, txn: ConfigTransaction) -> None:
        pairs, ports = self._stage(txn).result
        try:
            self._check(pairs, ports)
        except DeviceRefusal:
            self.tracker.refused()
            raise

    def _stage(self, txn: ConfigTransaction) -> Staged:
        """Apply the change list to the configuration copy; read back the pairs and ports it
        touched (pair: egress, or None when deleted; port: its entry, or None)."""
        staged = self.tracker.stage(txn)
        pairs: dict[int, int | None] = {}
        for key in staged.touched(PAIRS, self._pairs):
            raw = staged.model.entry(PAIRS, (key,))
            pairs[int(key)] = None if raw is None or raw.get("egress") is None else int(raw["egress"])
        ports = {int(key): staged.model.entry(PORTS, (key,)) for key in staged.touched(PORTS, ())}
        staged.result = (pairs, ports)
        return staged

    def _check(self, delta: dict[int, int | None], ports: dict[int, dict[str, Any] | None]) -> None:
        """The cross-connects after the change (at most one per port: the whole set is looked at)
        and the touched ports."""
        valid = set(self.fabric.port_ids)
        pairs = dict(self._pairs)
        update_records(pairs, delta)
        egress_of: dict[int, int] = {}
        for ingress, egress in pairs.items():
            for port, leaf in ((ingress, "ingress"), (egress, "egress")):
                if port not in valid:
                    raise DeviceRefusal(
                        f"port {port} does not exist on {self.name} (ports 1..{max(valid)})",
                        _pair_path(ingress, below=leaf),
                    )
            if ingress == egress:
                raise DeviceRefusal(f"port {ingress} cannot be connected to itself", _pair_path(ingress, below="egress"))
            if egress in egress_of:
                raise DeviceRefusal(
                    f"egress {egress} is already used by the pair with ingress {egress_of[egress]}",
                    _pair_path(ingress, below="egress"),
                )
            egress_of[egress] = ingress
        for ingress in pairs:
            if ingress in egress_of:
                raise DeviceRefusal(
                    f"port {ingress} is already the egress of the pair with ingress {egress_of[ingress]}",
                    _pair_path(ingress),
                )
        for port, entry in ports.items():
            if entry is None:
                continue
            if port not in valid:
                raise DeviceRefusal(f"port {port} does not exist on {self.name}", _port_path(port))
            self._check_cabling(port, entry.get(f"{QSOPSW}:attached-fibre"))

    def _check_cabling(self, port: int, wanted: dict[str, Any] | None) -> None:
        if not wanted:
            return
        actual = self._attached(port) or {}
        for leaf in ("fibre-id", "remote-device", "remote-port"):
            if leaf in wanted and str(wanted[leaf]) != str(actual.get(leaf)):
                raise DeviceRefusal(
                    f"port {port}: the plant has {leaf} {actual.get(leaf)!r} here, not {wanted[leaf]!r}; "
                    "re-cabling cannot be done by configuration",
                    _port_path(port, below=f"{QSOPSW}:attached-fibre/{leaf}"),
                )

    async def commit(self, txn: ConfigTransaction) -> None:
        staged = self.tracker.staged(txn) or self._stage(txn)
        self.tracker.committed()
        delta, ports = staged.result
        now = self.world.now_ns
        for ingress, egress in delta.items():
            if egress is None:
                if self._pairs.pop(ingress, None) is not None:
                    self.world.plant.disconnect(self.name, ingress, now)
                continue
            self._pairs[ingress] = egress
        for ingress, egress in delta.items():
            if egress is not None and self.fabric.pairs.get(ingress) != egress:
                self.world.plant.connect(self.name, ingress, egress, now)
        self._switching = {p for p, until in self.fabric.dark_until_ns.items() if until > now}
        for port, entry in ports.items():
            if entry is not None:
                self._calibrate(port, entry)

    def _calibrate(self, port: int, entry: dict[str, Any]) -> None:
        loss = as_float(entry.get(f"{QSOPSW}:insertion-loss"))
        if loss is not None and loss != self.fabric.port_loss_db.get(port):
            self.fabric.port_loss_db[port] = loss
            self.world.plant.version += 1
        crosstalk = as_float(entry.get(f"{QSOPSW}:crosstalk"))
        if crosstalk is not None and crosstalk != self.fabric.port_crosstalk_db.get(port):
            self.fabric.port_crosstalk_db[port] = crosstalk
            self.world.plant.version += 1
        wanted = entry.get(f"{QSOPSW}:attached-fibre") or {}
        fibre = self.world.plant.fibre_at(Endpoint(self.name, port))
        if fibre is None:
            return
        length, attenuation = as_float(wanted.get("length")), as_float(wanted.get("attenuation"))
        if length is not None and length != fibre.spec.length_km:
            self.world.plant.set_length(fibre.spec.id, length)
        if attenuation is not None and abs(attenuation - fibre.spec.attenuation_db_per_km) > 1e-9:
            self.world.plant.set_attenuation(fibre.spec.id, attenuation)

    async def abort(self, txn: ConfigTransaction) -> None:
        """Another participant refused: forget what prepare applied to the configuration copy."""
        self.tracker.aborted(txn)

    def read_state(self) -> JsonTree:
        opts = self.options
        return {
            f"{OPSW}:product-information": {
                "manufacturer": str(SWITCH_NODE.get(opts, "manufacturer", "qstrata")),
                "serial-number": str(SWITCH_NODE.get(opts, "serial", f"TWIN-{self.name}")),
                "model-name": str(SWITCH_NODE.get(opts, "model", f"twin-ofs-{len(self.fabric.port_ids)}")),
                "software-version": str(SWITCH_NODE.get(opts, "software_version", "1.0.0")),
            },
            f"{OPSW}:port-config": {
                "port": [{"port-id": p, "status": self._port_status(p)} for p in self.fabric.port_ids]
            },
            f"{OPSW}:opm-power": {
                "port": [{"port-id": p, "power": decimal64(self._power_dbm(p), 2)} for p in self.fabric.port_ids]
            },
            f"{QSOPSW}:switch-characteristics": {
                "switching-time": self.fabric.params.switching_time_us,
                "port-count": len(self.fabric.port_ids),
            },
        }

    def events(self) -> AsyncIterator[DeviceEvent]:
        return self.hub.subscribe()

    async def stop(self) -> None:
        self.world.detach(self)
        self.world.unhost(self.name)
        self.hub.close()

    # -- measurements ------------------------------------------------------------------------

    def _port_status(self, port: int) -> str:
        fibre = self.world.plant.fibre_at(Endpoint(self.name, port))
        return "FAILED" if fibre is not None and fibre.cut else "ENABLED"

    def _power_dbm(self, port: int) -> float:
        light = self.world.classical_light()
        return opm_reading_dbm(light.port_power_dbm(Endpoint(self.name, port)), self.fabric.params)

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        changed: list[str] = []
        for port in self.fabric.port_ids:
            status = self._port_status(port)
            if status != self._status.get(port):
                self._status[port] = status
                changed.append(_port_path(port, below="status"))
            power = self._power_dbm(port)
            if abs(power - self._power.get(port, power)) > POWER_CHANGE_DB:
                changed.append(f"/{OPSW}:opm-power/port[port-id='{port}']/power")
            if abs(power - self._power.get(port, power)) > POWER_CHANGE_DB or port not in self._power:
                self._power[port] = power
        done = {p for p in self._switching if not self.fabric.is_dark(p, now_ns)}
        if done:
            self._switching -= done
            changed.append(f"/{OPSW}:cross-connects")
        if changed:
            self.hub.publish(DeviceEvent("state", {}, tuple(changed), now_ns))
