"""Digital twin of a DV-QKD module serving ETSI GS QKD 015 (`etsi-qkd-sdn-node`).

Configuration comes in through `prepare`/`commit` (links, applications); the physics of each
link runs in the world's `QkdLinkSession`, shared with the peer node. Every world tick the twin
compares what it sees with what it last reported and emits:

- `sdqkdn_link_down` (reason) + `alarm` (MAJOR) when a link leaves ACTIVE;
- `event` when a link becomes ACTIVE;
- `sdqkdn_link_perf_update` every `perf_interval_s` (default 10 s) for enabled links, at once
  when a link becomes ACTIVE, and when skr moves by more than `perf_change` (20 %) or the QBER by
  more than 0.5 points since the last report;
- `sdqkdn_link_overloaded` when the applications' consumption exceeds the link's rate;
- `sdqkdn_interface_down` + `alarm` when the fibre at an interface is cut (qkdi_status FAILED);
- `alarm` (application, MINOR) when an application finds its key store empty;
- `sdqkdn_application_disconnected` when an application is deleted;
- DeviceEvent(kind="state") for every change of qkdn_status, qkdi_status, qkdl_status, app_status.

Key relay (the qstrata-ss service stratum) is the `ss_twin.KmeService` part, present when the
node acts as a KME (option `kme`, default on).

Key supply (`base.KeySupply`, for the agent's ETSI GS QKD 014 KME): key is taken from the link
sessions' stores as references into the links' key streams (`key_stream`), and KMEs reach each
other through the world's `kme_channel`. A link compromised by an eavesdropper
(`qkd_link.Compromise`) gives none (`KeyCompromised`) until a clean block has been released. Applications that fetch their keys through it (an
`ss-session-id` and SAEs: `qkd_config.App.delivers_keys`) draw no synthetic bandwidth: they
drain exactly what they fetch.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from . import key_stream, kme_channel, qkd_link, ss_twin
from . import qkd_config as cfg
from . import qkd_notifications as note
from .base import (
    ConfigTransaction,
    DeviceClock,
    DeviceEvent,
    DeviceRefusal,
    Inventory,
    JsonTree,
    KeyCompromised,
    KeyRef,
    KeyStock,
    KeyUnavailable,
    PeerHandler,
)
from .config_model import ChangeTracker, Staged
from .events import EventHub
from .physics import qkd as qkd_physics
from .topology import Endpoint
from .topology_keys import ATT_POINT, NODE, QKD_INTERFACE, QKD_NODE
from .world import DEVICE_ORDER, NS, World
from .yangjson import as_bool

log = logging.getLogger("qstrata.devices.qkd")

DEFAULT_PERF_INTERVAL_S = 10.0
QBER_CHANGE = 0.005
TICK_PIECE = 16  # links or applications per piece of a sliced tick (an alarm costs ~0.1 ms)


def qkd_parameters(spec: Any) -> qkd_physics.DecoyBB84Parameters:
    """A parameter set by name ("modern", "gys"), or {base: name, field: value, ...}."""
    if isinstance(spec, qkd_physics.DecoyBB84Parameters):
        return spec
    if isinstance(spec, dict):
        base = qkd_physics.PARAMETER_SETS[str(spec.get("base", "modern"))]
        return dataclasses.replace(base, **{k: v for k, v in spec.items() if k != "base"})
    return qkd_physics.PARAMETER_SETS[str(spec or "modern")]


class QkdTwin:
    """DeviceDriver of one QKD node in a `World`."""

    tick_order = DEVICE_ORDER

    def __init__(
        self,
        world: World,
        name: str,
        *,
        parameters: Any = None,
        estimator: str | None = None,
        relock_s: float | None = None,
        perf_interval_s: float | None = None,
        perf_change: float | None = None,
        kme: bool | None = None,
        **node_options: Any,
    ) -> None:
        """Keyword options override the node's options in the topology, which override the
        defaults (modern parameter set, finite-key estimator, 10 s re-lock, perf updates every
        10 s or on a 20 % skr change, KME on)."""
        self.name = name
        self.world = world
        self.clock: DeviceClock = world
        node = world.topology.nodes.get(name)
        options = {**(node.options if node else {}), **node_options}
        self.options = options

        def pick(value: Any, node_value: Any) -> Any:
            return value if value is not None else node_value

        self.params = qkd_parameters(parameters or QKD_NODE.get(options, "parameters")
                                     or world.topology.qkd_parameters)
        self.estimator = str(pick(estimator, QKD_NODE.get(options, "estimator", qkd_link.FINITE_KEY)))
        self.relock_ns = int(float(pick(relock_s, QKD_NODE.get(options, "relock_s", qkd_link.DEFAULT_RELOCK_S))) * NS)
        self.perf_interval_ns = int(float(pick(perf_interval_s, QKD_NODE.get(options, "perf_interval_s",
                                                                             DEFAULT_PERF_INTERVAL_S))) * NS)
        self.perf_change = float(pick(perf_change, QKD_NODE.get(options, "perf_change", 0.2)))
        kme = bool(pick(kme, QKD_NODE.get(options, "kme", True)))
        self.hardware = self._hardware_interfaces(options)
        self.qkdn_id = world.node_uuid(name)
        self.config = cfg.NodeConfig(self.qkdn_id, dict(self.hardware))
        self.tracker = ChangeTracker(name, (cfg.TOP, ss_twin.TOP), {**cfg.WATCH, **ss_twin.WATCH})
        """The configuration as the datastore has it, kept from change lists."""
        self.hub = EventHub()
        self.node_status = "NEW"
        self._link_seen: dict[str, dict[str, Any]] = {}
        self._iface_status: dict[int, str] = {}
        self._app_seen: dict[str, dict[str, Any]] = {}
        self._created: dict[str, int] = {}
        self._link_flags: dict[str, tuple[bool, bool]] = {}
        """Per backing link: (ACTIVE, short of key) at the last tick; a change marks its apps."""
        self._dirty_apps: set[str] = set()
        self._expiring: set[str] = set()
        self._windows: list[tuple[int, str]] = []
        """Heap of (end of an application's statistics window, app_id)."""
        self.kme = None
        if kme:
            self.kme = ss_twin.KmeService(self)
        self._secrets: dict[str, bytes] = {}
        self._peer_ids: dict[str, PeerHandler] = {}

    # -- inventory ---------------------------------------------------------------------------

    def _hardware_interfaces(self, options: dict[str, Any]) -> dict[int, cfg.Interface]:
        raw = QKD_NODE.get(options, "interfaces")
        ids = [int(QKD_INTERFACE.get(i, "id")) for i in raw] if raw else self.world.topology.ports_of(self.name) or [1]
        extra = {int(QKD_INTERFACE.get(i, "id")): i for i in raw or []}
        found = {}
        for qkdi_id in ids:
            spec = extra.get(qkdi_id, {})
            fibre = self.world.topology.fibre_at(Endpoint(self.name, qkdi_id))
            att = fibre.other_end(Endpoint(self.name, qkdi_id)) if fibre else None
            att_spec = QKD_INTERFACE.get(spec, "att_point") or {}
            found[qkdi_id] = cfg.Interface(
                qkdi_id=qkdi_id,
                att_device=att.device if att else ATT_POINT.get(att_spec, "device"),
                att_port=att.port if att else ATT_POINT.get(att_spec, "port"),
                role_support=str(QKD_INTERFACE.get(spec, "role_support", "TRANSCEIVER")),
                wavelength_range=str(QKD_INTERFACE.get(spec, "wavelength_range", "1530-1565")),
                max_absorption=QKD_INTERFACE.get(spec, "max_absorption", 40.0),
                model=str(QKD_INTERFACE.get(spec, "model", "qstrata DV-QKD twin")),
            )
        return found

    def inventory_config(self) -> JsonTree:
        interfaces = []
        for iface in self.hardware.values():
            entry: dict[str, Any] = {
                "qkdi_id": iface.qkdi_id,
                "qkdi_model": iface.model,
                "qkdi_type": note.ident(iface.technology),
                "qkdi_capabilities": {
                    "role_support": note.ident(iface.role_support),
                    "wavelength_range": iface.wavelength_range,
                },
            }
            if iface.max_absorption is not None:
                entry["qkdi_capabilities"]["max_absorption"] = f"{float(iface.max_absorption):.3f}"
            if iface.att_device is not None:
                entry["qkdi_att_point"] = {"device": iface.att_device, "port": int(iface.att_port or 0)}
            interfaces.append(entry)
        return {
            cfg.TOP: {
                "qkdn_id": self.qkdn_id,
                "qkdn_version": str(QKD_NODE.get(self.options, "version", "qstrata-qkd-twin 1.0")),
                "qkdn_location_id": str(NODE.get(self.options, "location", "")),
                "qkdn_capabilities": {
                    "link_stats_support": True,
                    "application_stats_support": True,
                    "key_relay_mode_enable": self.kme is not None,
                },
                "qkd_interfaces": {"qkd_interface": interfaces},
            }
        }

    # -- DeviceDriver ------------------------------------------------------------------------

    async def start(self) -> Inventory:
        config = self.inventory_config()
        modules = [cfg.MODULE, cfg.TYPES, note.FINITE_KEY_MODULE]
        if self.kme is not None:
            config.update(self.kme.inventory_config())
            modules.extend(m for m in self.kme.modules if m not in modules)
        self.world.host(self.name, self)
        self.world.attach(self)
        self._set_node_status("OPERATING")
        self.tracker.seed(config)
        return Inventory(modules=tuple(modules), config=config)

    async def prepare(self, txn: ConfigTransaction) -> None:
        staged = self._stage(txn)
        delta, kme = staged.result
        try:
            cfg.check(self.config, delta, self.hardware, self._qkdn_id_after(delta))
            if self.kme is not None:
                self.kme.prepare(kme, self.config, delta)
        except DeviceRefusal:
            self.tracker.refused()
            raise

    async def commit(self, txn: ConfigTransaction) -> None:
        staged = self.tracker.staged(txn) or self._stage(txn)
        self.tracker.committed()
        delta, kme = staged.result
        if delta.qkdn_id is not cfg._KEEP and delta.qkdn_id and delta.qkdn_id != self.qkdn_id:
            self.qkdn_id = delta.qkdn_id
            self.world.set_node_uuid(self.name, delta.qkdn_id)
        old_links = {k: self.config.links.get(k) for k in delta.links}
        old_apps = {k: self.config.apps.get(k) for k in delta.apps}
        self.config.apply(delta)
        for qkdl_id, link in delta.links.items():
            if link is None and old_links[qkdl_id] is not None:
                qkd_link.release(self.world, qkdl_id, self.name)
                self._link_seen.pop(qkdl_id, None)
        # links whose end moved: the touched ones and those on touched interfaces
        moved = {k: None for k, v in delta.links.items() if v is not None}
        for qkdi_id in delta.interfaces:
            moved.update(dict.fromkeys(self.config.link_ids_on(qkdi_id)))
        for qkdl_id in moved:
            link = self.config.links[qkdl_id]
            session = qkd_link.session(
                self.world, link.qkdl_id, params=self.params, estimator=self.estimator, relock_ns=self.relock_ns
            )
            session.configure(self._link_end(link))
        for app_id, app in delta.apps.items():
            before = old_apps[app_id]
            if app is None and before is not None:
                self._app_seen.pop(app_id, None)
                self._created.pop(app_id, None)
                self._emit(note.application_disconnected(app_id))
            elif app is not None and before is None:
                self._created[app_id] = self.world.now_ns
            self._dirty_apps.add(app_id)
            if app is not None and app.expiration_time:
                self._expiring.add(app_id)
            else:
                self._expiring.discard(app_id)
        # consumers of the links the change touched, or whose applications it touched
        drawn = dict(moved)
        for app_id, app in delta.apps.items():
            for x in (old_apps[app_id], app):
                if x is not None:
                    drawn.update(dict.fromkeys(x.backing))
        self._update_consumers(drawn)
        if self.kme is not None:
            self.kme.commit(kme, self.config, delta, old_apps)

    def _stage(self, txn: ConfigTransaction) -> Staged:
        """Apply the change list to the configuration copy and read back, as records, only the
        entries it touched (everything when the copy was just seeded or re-read)."""
        staged = self.tracker.stage(txn)
        model = staged.model
        delta = cfg.Delta()
        for key in staged.touched(cfg.INTERFACES, self.config.interfaces):
            raw = model.entry(cfg.INTERFACES, (key,))
            delta.interfaces[int(key)] = None if raw is None else cfg.parse_interface(raw, self.hardware)
        for key in staged.touched(cfg.LINKS, self.config.links):
            raw = model.entry(cfg.LINKS, (key,))
            delta.links[key] = None if raw is None else cfg.parse_link(raw)
        for key in staged.touched(cfg.APPS, self.config.apps):
            raw = model.entry(cfg.APPS, (key,))
            delta.apps[key] = None if raw is None else cfg.parse_app(raw)
        if staged.changed((cfg.TOP,)):
            qkdn_id = model.get(cfg.QKDN_ID)
            key_relay = as_bool(model.get(cfg.KEY_RELAY), True)
            if qkdn_id != self.config.qkdn_id:
                delta.qkdn_id = qkdn_id
            if key_relay != self.config.key_relay:
                delta.key_relay = key_relay
        kme = self.kme.stage(staged) if self.kme is not None else None
        staged.result = (delta, kme)
        return staged

    def _qkdn_id_after(self, delta: cfg.Delta) -> str:
        qkdn_id = self.config.qkdn_id if delta.qkdn_id is cfg._KEEP else delta.qkdn_id
        return qkdn_id or self.qkdn_id

    async def abort(self, txn: ConfigTransaction) -> None:
        """Another participant refused: undo what prepare applied to the configuration copy, and
        re-seed it at the next transaction (running may have moved on without this twin: a
        refused restart replay is served anyway)."""
        self.tracker.aborted(txn)

    def read_state(self) -> JsonTree:
        node: dict[str, Any] = {"qkdn_status": note.ident(self.node_status)}
        node["qkd_interfaces"] = {
            "qkd_interface": [
                {"qkdi_id": i, "qkdi_status": note.ident(self._interface_status(i))} for i in self.config.interfaces
            ]
        }
        links = []
        for link in self.config.links.values():
            session = qkd_link.sessions(self.world).get(link.qkdl_id)
            performance = self._performance(link, session)
            finite = note.finite_key(session) if link.link_type == "PHYS" else None
            if finite is not None:
                performance[f"{note.FINITE_KEY_MODULE}:finite-key"] = finite
            links.append({
                "qkdl_id": link.qkdl_id,
                "qkdl_status": note.ident(session.status if session else "OFF"),
                "qkdl_performance": performance,
            })
        node["qkd_links"] = {"qkd_link": links}
        apps = []
        for app in self.config.apps.values():
            seen = self._app_seen.get(app.app_id, {})
            entry: dict[str, Any] = {
                "app_id": app.app_id,
                "app_status": note.ident(self._app_status(app)),
                "creation_time": self.world.date_and_time(self._created.get(app.app_id, 0)),
            }
            if self.kme is not None:
                units = self.kme.app_units(app.app_id)
                if units:
                    entry["qstrata-ss:service-unit"] = units
            stats = seen.get("statistics")
            if stats:
                entry["app_statistics"] = {"statistics": list(stats)}
            apps.append(entry)
        node["qkd_applications"] = {"qkd_app": apps}
        state: JsonTree = {cfg.TOP: node}
        if self.kme is not None:
            state.update(self.kme.read_state())
        return state

    def events(self) -> AsyncIterator[DeviceEvent]:
        return self.hub.subscribe()

    async def stop(self) -> None:
        for kme_id in list(self._peer_ids):
            await self.serve_peer(kme_id, None)
        for qkdl_id in list(self.config.links):
            qkd_link.release(self.world, qkdl_id, self.name)
        self.world.detach(self)
        self.world.unhost(self.name)
        self._set_node_status("DOWN")
        self.hub.close()

    # -- key supply (base.KeySupply) ---------------------------------------------------------

    def _store(self, qkdl_id: str) -> qkd_link.KeyStore:
        if qkdl_id not in self.config.links:
            raise KeyUnavailable(f"link {qkdl_id} is not a link of {self.name}")
        session = qkd_link.sessions(self.world).get(qkdl_id)
        if session is None:
            raise KeyUnavailable(f"link {qkdl_id} has no key store yet", KeyStock(0, 0))
        bad = session.compromise
        if bad is not None:  # its stored key predates the attack, but nothing goes out meanwhile
            store = session.store
            raise KeyCompromised(bad.refusal(qkdl_id, self.world.date_and_time(bad.since_ns)),
                                 KeyStock(int(store.bits), int(store.capacity_bits)))
        return session.store

    async def take_key(self, qkdl_id: str, nbits: int) -> KeyRef:
        if nbits <= 0 or nbits % 8:
            raise ValueError(f"key is taken in whole bytes, not {nbits} bits")
        store = self._store(qkdl_id)
        offset = store.take_bytes(nbits // 8)
        if offset is None:
            stock = KeyStock(int(store.bits), int(store.capacity_bits))
            raise KeyUnavailable(f"link {qkdl_id} holds {stock.stored_bits} key bits, {nbits} asked", stock)
        return KeyRef(qkdl_id, store.epoch, offset, nbits // 8)

    async def key_bits(self, refs: Sequence[KeyRef]) -> list[bytes]:
        """Any link of the world: a KME owes keys of links that may be gone from its
        configuration since it took them."""
        out = []
        for ref in refs:
            secret = self._secrets.get(ref.qkdl_id)
            if secret is None:
                secret = self._secrets[ref.qkdl_id] = key_stream.link_secret(self.world.seed, ref.qkdl_id)
            out.append(key_stream.stream_bytes(secret, ref.epoch, ref.offset, ref.nbytes))
        return out

    async def key_stock(self, qkdl_id: str) -> KeyStock:
        store = self._store(qkdl_id)
        return KeyStock(int(store.bits), int(store.capacity_bits))

    async def peer_call(self, kme_id: str, message: dict[str, Any]) -> dict[str, Any]:
        return await kme_channel.directory(self.world).call(kme_id, message)

    async def serve_peer(self, kme_id: str, handler: PeerHandler | None) -> None:
        peers = kme_channel.directory(self.world)
        if handler is None:
            if self._peer_ids.pop(kme_id, None) is not None:
                peers.serve(kme_id, None)
            return
        self._peer_ids[kme_id] = handler
        peers.serve(kme_id, handler)

    # -- helpers -----------------------------------------------------------------------------

    def _link_end(self, link: cfg.Link) -> qkd_link.LinkEnd:
        start = None
        if link.local_qkdi_id is not None:
            own = Endpoint(self.name, link.local_qkdi_id)
            iface = self.config.interfaces.get(link.local_qkdi_id)
            if self.world.topology.fibre_at(own) is not None:
                start = own
            elif iface and iface.att_device in self.world.plant.switches and iface.att_port is not None:
                start = Endpoint(iface.att_device, iface.att_port)
        return qkd_link.LinkEnd(
            node=self.name,
            link_type=link.link_type,
            enabled=link.enable,
            admin_status=link.status if link.status in ("OFF", "PASSIVE") else None,
            interface=link.local_qkdi_id,
            start=start,
            role=link.role,
            channel_att_db=link.channel_att_db,
            remote_node=self.world.node_by_uuid(link.remote_qkdn_id),
            virt_bandwidth=link.virt_bandwidth,
        )

    def _update_consumers(self, qkdl_ids: Iterable[str] | None = None) -> None:
        """Tell link sessions what the applications backed by them draw (all links by default)."""
        apps = self.config.apps
        links = self.config.links
        for qkdl_id in links if qkdl_ids is None else qkdl_ids:
            if qkdl_id not in links:
                continue
            draws = {}
            for app_id in self.config.app_ids_on(qkdl_id):
                app = apps[app_id]
                if self._app_status(app) != "OUT-OF-TIME":
                    draws[app_id] = app.draw_bps
            qkd_link.session(self.world, qkdl_id).set_consumers(self.name, draws)

    def _performance(self, link: cfg.Link, session: qkd_link.QkdLinkSession | None) -> dict[str, Any]:
        expected = session.expected_consumption if session else 0.0
        return note.performance(session, link.link_type == "PHYS", expected)

    def _interface_status(self, qkdi_id: int) -> str:
        fibre = self.world.plant.fibre_at(Endpoint(self.name, qkdi_id))
        if fibre is not None and fibre.cut:
            return "FAILED"
        for link in self.config.links.values():
            if link.local_qkdi_id == qkdi_id and link.enable and link.status != "OFF":
                return "ENABLED"
        return "DISABLED"

    def _app_status(self, app: cfg.App) -> str:
        if app.expiration_time and self.world.now_ns >= self.world.sim_ns_of_date(app.expiration_time):
            return "OUT-OF-TIME"
        table = qkd_link.sessions(self.world)
        for qkdl_id in app.backing:
            session = table.get(qkdl_id)
            if session is None or session.status != "ACTIVE":
                return "DISCONNECTED"
        return "ON"

    def _emit(self, data: JsonTree) -> None:
        self.hub.publish(DeviceEvent("notification", data, (), self.world.now_ns))

    def _state_changed(self, *paths: str) -> None:
        self.hub.publish(DeviceEvent("state", {}, tuple(paths), self.world.now_ns))

    def _set_node_status(self, status: str) -> None:
        if status != self.node_status:
            self.node_status = status
            self._state_changed(f"{cfg.ROOT}/qkdn_status")

    # -- per tick ----------------------------------------------------------------------------

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        for _ in self.tick_steps(now_ns, dt_ns):
            pass

    def tick_steps(self, now_ns: int, dt_ns: int) -> Iterator[None]:
        """One tick, a piece at a time (`World.advance_sliced` yields to the event loop between
        pieces). Cost per configured link and application (consumers change only on a commit or
        when an application runs out of time, see `_check_apps`). A commit may land between
        pieces: links and applications are taken from a copy and skipped once unconfigured."""
        self._check_interfaces()
        table = qkd_link.sessions(self.world)
        links = self.config.links
        for n, link in enumerate(list(links.values()), 1):
            session = table.get(link.qkdl_id)
            if session is not None and links.get(link.qkdl_id) is link:
                self._check_link(link, session, now_ns)
            if n % TICK_PIECE == 0:
                yield
        yield from self._check_apps(table, now_ns, dt_ns)
        if self.kme is not None:
            self.kme.on_tick(now_ns, dt_ns)

    def _check_interfaces(self) -> None:
        statuses = {}
        for qkdi_id in self.config.interfaces:
            status = statuses[qkdi_id] = self._interface_status(qkdi_id)
            before = self._iface_status.get(qkdi_id)
            if before == status:
                continue
            self._iface_status[qkdi_id] = status
            if before is not None:
                self._state_changed(cfg.interface_path(qkdi_id, below="qkdi_status"))
            if status == "FAILED":
                fibre = self.world.plant.fibre_at(Endpoint(self.name, qkdi_id))
                reason = f"fibre {fibre.spec.id} is cut" if fibre else "failed"
                self._emit(note.interface_down(qkdi_id, reason))
                self._emit(note.interface_alarm(qkdi_id, status, reason))
        if statuses and all(s == "FAILED" for s in statuses.values()):
            self._set_node_status("FAILURE")
        elif self.node_status == "FAILURE":
            self._set_node_status("OPERATING")

    def _check_link(self, link: cfg.Link, session: qkd_link.QkdLinkSession, now_ns: int) -> None:
        seen = self._link_seen.get(link.qkdl_id)
        if seen is None:
            seen = self._link_seen[link.qkdl_id] = {
                "status": None, "overloaded": False, "perf_at": None, "skr": 0.0, "qber": 0.0}
        status = session.status
        report = False
        if status != seen["status"]:
            before = seen["status"]
            seen["status"] = status
            self._state_changed(cfg.link_path(link.qkdl_id, below="qkdl_status"))
            if before == "ACTIVE":
                self._emit(note.link_down(link.qkdl_id, session.reason))
                self._emit(note.link_alarm(link.qkdl_id, status, session.reason))
            if status == "ACTIVE":
                self._emit(note.link_event(link.qkdl_id, status, "link up: distilling key"))
                report = True
        if session.overloaded and not seen["overloaded"]:
            self._emit(note.link_overloaded(link.qkdl_id, self._performance(link, session)))
        seen["overloaded"] = session.overloaded
        if status == "OFF":
            return
        skr = float(note.skr(session))
        qber = session.measurement.qber
        if seen["perf_at"] is None or now_ns - seen["perf_at"] >= self.perf_interval_ns:
            report = True
        elif status == "ACTIVE" and (
            abs(skr - seen["skr"]) > self.perf_change * max(seen["skr"], 1.0)
            or abs(qber - seen["qber"]) > QBER_CHANGE
        ):
            report = True
        if report:
            seen.update(perf_at=now_ns, skr=skr, qber=qber)
            self._emit(note.link_perf_update(link.qkdl_id, self._performance(link, session)))

    def _check_apps(self, table: dict[str, qkd_link.QkdLinkSession], now_ns: int, dt_ns: int) -> Iterator[None]:
        """Per tick, only the applications something can have changed for: a backing link that
        became or stopped being ACTIVE or short of key, an expiration time, a commit, or the end
        of a statistics window. What an application draws is a rate since a time, settled when
        the rate or the window changes, so quiet applications cost nothing per tick."""
        # A new set only when something is dirty: not one per twin per tick for quiet twins.
        dirty: set[str] | None = None
        if self._dirty_apps:
            dirty, self._dirty_apps = self._dirty_apps, set()
        for n, qkdl_id in enumerate(list(self.config.backing_link_ids()), 1):
            session = table.get(qkdl_id)
            flags = (session is not None and session.status == "ACTIVE",
                     session is not None and session.shortfall_bits > 0.0)
            if self._link_flags.get(qkdl_id) != flags:
                self._link_flags[qkdl_id] = flags
                dirty = set() if dirty is None else dirty
                dirty.update(self.config.app_ids_on(qkdl_id))
            if n % (4 * TICK_PIECE) == 0:
                yield
        if self._expiring:
            dirty = set() if dirty is None else dirty
            dirty.update(self._expiring)
        apps = self.config.apps
        for n, app_id in enumerate(dirty or (), 1):
            app = apps.get(app_id)
            if app is not None:
                self._check_app(app, table, now_ns, dt_ns)
            if n % TICK_PIECE == 0:
                yield
        n = 0
        while self._windows and self._windows[0][0] <= now_ns:
            due, app_id = heapq.heappop(self._windows)
            seen = self._app_seen.get(app_id)
            if seen is None or app_id not in apps or seen["window_start"] + self.perf_interval_ns != due:
                continue  # removed, or an entry of an earlier life of the same id
            self._roll_statistics(seen, now_ns)
            n += 1
            if n % TICK_PIECE == 0:
                yield

    def _check_app(self, app: cfg.App, table: dict[str, qkd_link.QkdLinkSession], now_ns: int, dt_ns: int) -> None:
        seen = self._app_seen.get(app.app_id)
        if seen is None:  # registered at the start of this tick (a commit lands between ticks)
            start = now_ns - dt_ns
            seen = self._app_seen[app.app_id] = {
                "app_id": app.app_id, "status": None, "starving": False, "consumed": 0.0, "since": start,
                "drawing": False, "draw": app.draw_bps, "window_start": start, "statistics": []}
            heapq.heappush(self._windows, (start + self.perf_interval_ns, app.app_id))
        status = self._app_status(app)
        if status != seen["status"]:
            if seen["status"] is not None:
                self._state_changed(cfg.app_path(app.app_id, "app_status"))
                if "OUT-OF-TIME" in (status, seen["status"]):  # it stops (or starts) drawing key
                    self._update_consumers(app.backing)
            seen["status"] = status
        drawing = status != "OUT-OF-TIME"
        if drawing != seen["drawing"] or app.draw_bps != seen["draw"]:
            at = now_ns - dt_ns  # this tick already draws at the new rate...
            if not drawing and app.expiration_time:  # ...but an expiring one draws until it expires
                at = max(seen["since"], min(now_ns, self.world.sim_ns_of_date(app.expiration_time)))
            _settle(seen, at)
            seen["drawing"], seen["draw"] = drawing, app.draw_bps
        starving = drawing and any(
            (s := table.get(q)) is not None and s.shortfall_bits > 0.0 for q in app.backing)
        if starving and not seen["starving"]:
            self._emit(note.application_alarm(app.app_id, status, "key store exhausted: demand exceeds key supply"))
        seen["starving"] = starving

    def _roll_statistics(self, seen: dict[str, Any], now: int) -> None:
        """app_statistics: one entry per perf interval of consumed bits, the last 10 kept.
        consumed_bits counts what the application asked for in the window (saturating uint32)."""
        _settle(seen, now)
        seen["statistics"].append({
            "end_time": self.world.date_and_time(now),
            "start_time": self.world.date_and_time(seen["window_start"]),
            "consumed_bits": min(int(seen["consumed"]), 4_294_967_295),
        })
        del seen["statistics"][:-10]
        seen["window_start"], seen["consumed"] = now, 0.0
        heapq.heappush(self._windows, (now + self.perf_interval_ns, seen["app_id"]))


def _settle(seen: dict[str, Any], at_ns: int) -> None:
    """Add what the application drew since `seen["since"]` (while drawing) to its window."""
    if seen["drawing"]:
        seen["consumed"] += seen["draw"] * (at_ns - seen["since"]) / NS
    seen["since"] = at_ns
