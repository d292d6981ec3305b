"""The etsi-qkd-sdn-node configuration a QKD twin acts on, and what the hardware refuses.

Parses the JSON-IETF `qkd_node` tree into small typed records and checks them against the
module's physical interfaces, so `prepare` can veto with a message and a path before anything
moves (ETSI GS QKD 015 leaves; identities accepted bare or module-qualified).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qstrata.bindings.generated import etsi_qkd_sdn_node as etsi

from .base import DeviceRefusal
from .config_model import update_records
from .yangjson import as_bool, as_float, as_list, bare_identity

MODULE = "etsi-qkd-sdn-node"
TYPES = "etsi-qkd-node-types"
TOP = f"{MODULE}:qkd_node"
ROOT = f"/{TOP}"
SS_SESSION = "qstrata-ss:ss-session-id"

INTERFACES = (TOP, "qkd_interfaces", "qkd_interface")
LINKS = (TOP, "qkd_links", "qkd_link")
APPS = (TOP, "qkd_applications", "qkd_app")
WATCH = {INTERFACES: ("qkdi_id",), LINKS: ("qkdl_id",), APPS: ("app_id",)}
"""The lists the twin keeps records of, with their keys (for `config_model.ConfigModel`)."""
QKDN_ID = (TOP, "qkdn_id")
KEY_RELAY = (TOP, "qkdn_capabilities", "key_relay_mode_enable")


link_path = etsi.qkd_node.qkd_links.qkd_link.entry
interface_path = etsi.qkd_node.qkd_interfaces.qkd_interface.entry


def app_path(app_id: str, leaf: str = "") -> str:
    base = f"{ROOT}/qkd_applications/qkd_app[app_id='{app_id}']"
    return f"{base}/{leaf}" if leaf else base


@dataclass(frozen=True, slots=True)
class Interface:
    qkdi_id: int
    att_device: str | None = None
    att_port: int | None = None
    role_support: str = "TRANSCEIVER"
    wavelength_range: str = "1530-1565"
    max_absorption: float | None = None
    model: str = "qstrata DV-QKD twin"
    technology: str = "DV-QKD"


@dataclass(frozen=True, slots=True)
class Link:
    qkdl_id: str
    enable: bool
    status: str | None
    link_type: str
    local_qkdn_id: str | None
    local_qkdi_id: int | None
    remote_qkdn_id: str | None
    remote_qkdi_id: int | None
    channel_att_db: float | None
    wavelength: int | None
    role: str | None
    virt_bandwidth: int
    applications: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    app_type: str | None
    backing: tuple[str, ...]
    min_bandwidth: int | None
    max_bandwidth: int | None
    expiration_time: str | None
    server_app_id: str | None
    client_app_ids: tuple[str, ...]
    priority: int
    local_qkdn_id: str | None
    remote_qkdn_id: str | None
    ss_session_id: str | None = None
    """qstrata-ss:ss-session-id (the qstrata-ss augment): the KME session whose token bucket
    admits this application's service units."""

    @property
    def delivers_keys(self) -> bool:
        """Its SAEs fetch keys from the KME (ETSI GS QKD 014): a master (`server_app_id`), slaves
        (`client_app_id`) and a token-bucket session. Such an application drains its links by
        exactly what it fetches, so the twin draws no bandwidth for it."""
        return bool(self.ss_session_id and self.server_app_id and self.client_app_ids)

    @property
    def draw_bps(self) -> float:
        """Key the application takes from each backing link, bit/s.

        min_bandwidth is the rate the controller admitted the application for (ETSI: minimum
        bandwidth required), so that is what it draws; max_bandwidth only when no minimum is set.
        An application that fetches its keys (`delivers_keys`) draws nothing here: its KME takes
        what it fetches (its figures are in qstrata-ss key-delivery, not app_statistics).
        """
        if self.delivers_keys:
            return 0.0
        if self.min_bandwidth is not None:
            return float(self.min_bandwidth)
        return float(self.max_bandwidth or 0)


class NodeConfig:
    """What the twin runs: the node's typed configuration, with the indexes its checks and
    consumers need (PHYS links by interface, applications by backing link, document order)."""

    def __init__(self, qkdn_id: str | None, interfaces: dict[int, Interface] | None = None,
                 links: dict[str, Link] | None = None, apps: dict[str, App] | None = None,
                 key_relay: bool = True) -> None:
        self.qkdn_id = qkdn_id
        self.key_relay = key_relay
        self.interfaces: dict[int, Interface] = {}
        self.links: dict[str, Link] = {}
        self.apps: dict[str, App] = {}
        self._links_on: dict[int, dict[str, None]] = {}
        self._apps_on: dict[str, dict[str, None]] = {}
        self._order: dict[str, int] = {}
        self._next = 0
        self.apply(Delta(interfaces=dict(interfaces or {}), links=dict(links or {}), apps=dict(apps or {})))

    def link_ids_on(self, qkdi_id: int | None) -> Iterable[str]:
        """Links whose qkdl_local/qkdi_id is this interface."""
        return self._links_on.get(qkdi_id, {}) if qkdi_id is not None else ()

    def app_ids_on(self, qkdl_id: str) -> Iterable[str]:
        """Applications with this backing link."""
        return self._apps_on.get(qkdl_id, {})

    def backing_link_ids(self) -> Iterable[str]:
        """Every link some application names as backing (configured here or not)."""
        return self._apps_on.keys()

    def order(self, qkdl_id: str) -> int:
        """A link's place in document order (new links come after the configured ones)."""
        return self._order.get(qkdl_id, self._next)

    def apply(self, delta: Delta) -> None:
        if delta.qkdn_id is not _KEEP:
            self.qkdn_id = delta.qkdn_id  # type: ignore[assignment]
        if delta.key_relay is not _KEEP:
            self.key_relay = bool(delta.key_relay)
        update_records(self.interfaces, delta.interfaces)
        for qkdl_id, link in delta.links.items():
            old = self.links.get(qkdl_id)
            if old is not None:
                _unindex(self._links_on, old.local_qkdi_id, qkdl_id)
            if link is None:
                self.links.pop(qkdl_id, None)
                self._order.pop(qkdl_id, None)
                continue
            self.links[qkdl_id] = link
            if qkdl_id not in self._order:
                self._order[qkdl_id] = self._next
                self._next += 1
            if link.local_qkdi_id is not None:
                self._links_on.setdefault(link.local_qkdi_id, {})[qkdl_id] = None
        for app_id, app in delta.apps.items():
            old_app = self.apps.get(app_id)
            if old_app is not None:
                for backing in old_app.backing:
                    _unindex(self._apps_on, backing, app_id)
            if app is None:
                self.apps.pop(app_id, None)
                continue
            self.apps[app_id] = app
            for backing in app.backing:
                self._apps_on.setdefault(backing, {})[app_id] = None


_KEEP: Any = object()
"""A `Delta` field that does not change."""


@dataclass(slots=True)
class Delta:
    """What a transaction changes: new records of the entries it touched (None: deleted), and
    the node's qkdn_id / key_relay_mode_enable when they changed."""

    interfaces: dict[int, Interface | None] = field(default_factory=dict)
    links: dict[str, Link | None] = field(default_factory=dict)
    apps: dict[str, App | None] = field(default_factory=dict)
    qkdn_id: Any = _KEEP
    key_relay: Any = _KEEP


def _unindex(index: dict[Any, dict[str, None]], at: Any, item: str) -> None:
    found = index.get(at)
    if found is not None:
        found.pop(item, None)
        if not found:
            del index[at]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse_interface(raw: dict[str, Any], hardware: dict[int, Interface]) -> Interface:
    """A qkd_interface entry; unset leaves fall back to what the hardware has."""
    qkdi_id = int(raw["qkdi_id"])
    hw = hardware.get(qkdi_id, Interface(qkdi_id))
    att = raw.get("qkdi_att_point") or {}
    caps = raw.get("qkdi_capabilities") or {}
    return Interface(
        qkdi_id=qkdi_id,
        att_device=att.get("device", hw.att_device),
        att_port=_int(att.get("port", hw.att_port)),
        role_support=bare_identity(caps.get("role_support")) or hw.role_support,
        wavelength_range=str(caps.get("wavelength_range") or hw.wavelength_range),
        max_absorption=as_float(caps.get("max_absorption", hw.max_absorption)),
        model=str(raw.get("qkdi_model") or hw.model),
        technology=bare_identity(raw.get("qkdi_type")) or hw.technology,
    )


def parse_link(raw: dict[str, Any]) -> Link:
    local, remote = raw.get("qkdl_local") or {}, raw.get("qkdl_remote") or {}
    wavelength = raw.get("phys_wavelength")
    return Link(
        qkdl_id=str(raw["qkdl_id"]),
        enable=as_bool(raw.get("qkdl_enable"), True),
        status=bare_identity(raw.get("qkdl_status")),
        link_type=bare_identity(raw.get("qkdl_type")) or "PHYS",
        local_qkdn_id=local.get("qkdn_id"),
        local_qkdi_id=_int(local.get("qkdi_id")),
        remote_qkdn_id=remote.get("qkdn_id"),
        remote_qkdi_id=_int(remote.get("qkdi_id")),
        channel_att_db=as_float(raw.get("phys_channel_att")),
        wavelength=None if wavelength is None else int(wavelength),
        role=bare_identity(raw.get("phys_qkd_role")),
        virt_bandwidth=int(raw.get("virt_bandwidth") or 0),
        applications=tuple(str(a) for a in as_list(raw.get("qkdl_applications"))),
    )


def parse_app(raw: dict[str, Any]) -> App:
    qos = raw.get("app_qos") or {}
    session = raw.get(SS_SESSION)
    return App(
        app_id=str(raw["app_id"]),
        app_type=bare_identity(raw.get("app_type")),
        backing=tuple(str(x) for x in as_list(raw.get("backing_qkdl_id"))),
        min_bandwidth=_int(qos.get("min_bandwidth")),
        max_bandwidth=_int(qos.get("max_bandwidth")),
        expiration_time=raw.get("expiration_time"),
        server_app_id=raw.get("server_app_id"),
        client_app_ids=tuple(as_list(raw.get("client_app_id"))),
        priority=int(raw.get("app_priority") or 0),
        local_qkdn_id=raw.get("local_qkdn_id"),
        remote_qkdn_id=raw.get("remote_qkdn_id"),
        ss_session_id=None if session is None else str(session),
    )


def parse(tree: dict[str, Any], hardware: dict[int, Interface]) -> NodeConfig:
    """The `qkd_node` container of a whole JSON-IETF tree."""
    node = tree.get(TOP) or {}
    interfaces = [parse_interface(r, hardware) for r in as_list((node.get("qkd_interfaces") or {}).get("qkd_interface"))]
    links = [parse_link(r) for r in as_list((node.get("qkd_links") or {}).get("qkd_link"))]
    apps = [parse_app(r) for r in as_list((node.get("qkd_applications") or {}).get("qkd_app"))]
    caps = node.get("qkdn_capabilities") or {}
    return NodeConfig(
        node.get("qkdn_id"), {i.qkdi_id: i for i in interfaces}, {link.qkdl_id: link for link in links},
        {a.app_id: a for a in apps}, as_bool(caps.get("key_relay_mode_enable"), True),
    )


def wavelength_ranges(spec: str) -> list[tuple[int, int]]:
    """"1530-1565,1310" -> [(1530, 1565), (1310, 1310)] (etsi wavelength-range-type, nm)."""
    ranges = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        ranges.append((int(lo), int(hi or lo)))
    return ranges


_ROLE_FITS = {
    "TRANSCEIVER": {"TRANSMITTER", "RECEIVER", "TRANSCEIVER"},
    "TRANSMITTER": {"TRANSMITTER"},
    "RECEIVER": {"RECEIVER"},
}


def check(base: NodeConfig, delta: Delta, hardware: dict[int, Interface], qkdn_id: str) -> None:
    """Raise DeviceRefusal for the first thing this QKD module physically cannot do after `delta`
    is applied to `base`. Only what the delta can affect is looked at: the interfaces and links it
    touches, the links on touched interfaces (all links when qkdn_id or key_relay_mode_enable
    change), the interfaces those links run on, and the applications it touches or whose backing
    link it deletes."""
    for qkdi_id, iface in delta.interfaces.items():
        if iface is not None and qkdi_id not in hardware:
            raise DeviceRefusal(
                f"interface {qkdi_id} does not exist on this QKD module "
                f"(it has {', '.join(map(str, sorted(hardware))) or 'none'})",
                interface_path(qkdi_id),
            )

    def link_of(qkdl_id: str) -> Link | None:
        return delta.links[qkdl_id] if qkdl_id in delta.links else base.links.get(qkdl_id)

    def interface_of(qkdi_id: int) -> Interface | None:
        return delta.interfaces[qkdi_id] if qkdi_id in delta.interfaces else base.interfaces.get(qkdi_id)

    key_relay = base.key_relay if delta.key_relay is _KEEP else bool(delta.key_relay)
    checked: dict[str, None] = {k: None for k, v in delta.links.items() if v is not None}
    if delta.qkdn_id is not _KEEP or delta.key_relay is not _KEEP:
        checked.update(dict.fromkeys(base.links))
    for qkdi_id in delta.interfaces:
        checked.update(dict.fromkeys(base.link_ids_on(qkdi_id)))
    ordered = sorted((k for k in checked if link_of(k) is not None), key=base.order)
    for qkdl_id in ordered:
        _check_link(link_of(qkdl_id), qkdn_id, key_relay, interface_of)  # type: ignore[arg-type]
    # a DV-QKD interface serves one enabled link at a time: look at every interface a touched
    # link leaves or joins (and the touched interfaces); the first link in order keeps it
    shared = set(delta.interfaces)
    for qkdl_id, link in delta.links.items():
        old = base.links.get(qkdl_id)
        shared.update(x.local_qkdi_id for x in (old, link) if x is not None and x.local_qkdi_id is not None)
    for qkdi_id in sorted(shared):
        on = dict.fromkeys(base.link_ids_on(qkdi_id))
        on.update((k, None) for k, v in delta.links.items() if v is not None and v.local_qkdi_id == qkdi_id)
        running = sorted((k for k in on if _runs_on(link_of(k), qkdi_id, interface_of)), key=base.order)
        if len(running) > 1:
            raise DeviceRefusal(
                f"link {running[1]}: interface {qkdi_id} already runs enabled link {running[0]}; "
                "a DV-QKD interface serves one link at a time",
                link_path(running[1], below="qkdl_enable"),
            )
    apps: dict[str, None] = {k: None for k, v in delta.apps.items() if v is not None}
    for qkdl_id, link in delta.links.items():
        if link is None:
            apps.update((a, None) for a in base.app_ids_on(qkdl_id) if delta.apps.get(a, True) is not None)
    for app_id in apps:
        app = delta.apps.get(app_id) or base.apps[app_id]
        for backing in app.backing:
            if link_of(backing) is None:
                raise DeviceRefusal(
                    f"application {app.app_id}: backing link {backing} is not configured on this node",
                    app_path(app.app_id, "backing_qkdl_id"),
                )


def _runs_on(link: Link | None, qkdi_id: int, interface_of) -> bool:
    """An enabled PHYS link on an existing interface (what claims a DV-QKD interface)."""
    return (link is not None and link.link_type == "PHYS" and link.local_qkdi_id == qkdi_id
            and interface_of(qkdi_id) is not None and link.enable and link.status != "OFF")


def _check_link(link: Link, qkdn_id: str, key_relay: bool, interface_of) -> None:
    if link.link_type not in ("PHYS", "VIRT"):
        raise DeviceRefusal(f"link {link.qkdl_id}: unknown qkdl_type {link.link_type}", link_path(link.qkdl_id, below="qkdl_type"))
    if link.local_qkdn_id and link.local_qkdn_id.lower() != qkdn_id.lower():
        raise DeviceRefusal(
            f"link {link.qkdl_id}: qkdl_local/qkdn_id {link.local_qkdn_id} is not this node ({qkdn_id})",
            link_path(link.qkdl_id, below="qkdl_local/qkdn_id"),
        )
    if link.link_type == "VIRT":
        if not key_relay:
            raise DeviceRefusal(
                f"link {link.qkdl_id}: a virtual link needs key_relay_mode_enable",
                link_path(link.qkdl_id, below="qkdl_type"),
            )
        return
    if link.local_qkdi_id is None:
        raise DeviceRefusal(
            f"link {link.qkdl_id}: a PHYS link needs qkdl_local/qkdi_id", link_path(link.qkdl_id, below="qkdl_local")
        )
    iface = interface_of(link.local_qkdi_id)
    if iface is None:
        raise DeviceRefusal(
            f"link {link.qkdl_id}: qkdl_local/qkdi_id {link.local_qkdi_id} names no interface of this node",
            link_path(link.qkdl_id, below="qkdl_local/qkdi_id"),
        )
    if link.wavelength is not None and not any(
        lo <= link.wavelength <= hi for lo, hi in wavelength_ranges(iface.wavelength_range)
    ):
        raise DeviceRefusal(
            f"link {link.qkdl_id}: phys_wavelength {link.wavelength} nm is outside interface "
            f"{iface.qkdi_id}'s wavelength_range {iface.wavelength_range}",
            link_path(link.qkdl_id, below="phys_wavelength"),
        )
    if link.role and link.role not in _ROLE_FITS.get(iface.role_support, set()):
        raise DeviceRefusal(
            f"link {link.qkdl_id}: interface {iface.qkdi_id} supports {iface.role_support}, not {link.role}",
            link_path(link.qkdl_id, below="phys_qkd_role"),
        )
    if (
        link.channel_att_db is not None
        and iface.max_absorption is not None
        and link.channel_att_db > iface.max_absorption
    ):
        raise DeviceRefusal(
            f"link {link.qkdl_id}: phys_channel_att {link.channel_att_db} dB exceeds interface "
            f"{iface.qkdi_id}'s max_absorption {iface.max_absorption} dB",
            link_path(link.qkdl_id, below="phys_channel_att"),
        )
