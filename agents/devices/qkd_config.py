"""The etsi-qkd-sdn-node configuration a QKD twin acts on, and what the hardware refuses.

Parses the JSON-IETF `qkd_node` tree into small typed records and checks them against the
module's physical interfaces, so `prepare` can veto with a message and a path before anything
moves (ETSI GS QKD 015 leaves; identities accepted bare or module-qualified).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import DeviceRefusal
from .yangjson import as_bool, as_float, as_list, bare_identity

MODULE = "etsi-qkd-sdn-node"
TYPES = "etsi-qkd-node-types"
TOP = f"{MODULE}:qkd_node"
ROOT = f"/{TOP}"


def link_path(qkdl_id: str, leaf: str = "") -> str:
    base = f"{ROOT}/qkd_links/qkd_link[qkdl_id='{qkdl_id}']"
    return f"{base}/{leaf}" if leaf else base


def interface_path(qkdi_id: int, leaf: str = "") -> str:
    base = f"{ROOT}/qkd_interfaces/qkd_interface[qkdi_id='{qkdi_id}']"
    return f"{base}/{leaf}" if leaf else base


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

    @property
    def draw_bps(self) -> float:
        """Key the application takes from each backing link, bit/s.

        min_bandwidth is the rate the controller admitted the application for (ETSI: minimum
        bandwidth required), so that is what it draws; max_bandwidth only when no minimum is set.
        """
        if self.min_bandwidth is not None:
            return float(self.min_bandwidth)
        return float(self.max_bandwidth or 0)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    qkdn_id: str | None
    interfaces: dict[int, Interface] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    key_relay: bool = True


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse(tree: dict[str, Any], hardware: dict[int, Interface]) -> NodeConfig:
    """The `qkd_node` container of a JSON-IETF tree; unset interface leaves fall back to
    what the hardware has."""
    node = tree.get(TOP) or {}
    interfaces: dict[int, Interface] = {}
    for raw in as_list((node.get("qkd_interfaces") or {}).get("qkd_interface")):
        qkdi_id = int(raw["qkdi_id"])
        hw = hardware.get(qkdi_id, Interface(qkdi_id))
        att = raw.get("qkdi_att_point") or {}
        caps = raw.get("qkdi_capabilities") or {}
        interfaces[qkdi_id] = Interface(
            qkdi_id=qkdi_id,
            att_device=att.get("device", hw.att_device),
            att_port=_int(att.get("port", hw.att_port)),
            role_support=bare_identity(caps.get("role_support")) or hw.role_support,
            wavelength_range=str(caps.get("wavelength_range") or hw.wavelength_range),
            max_absorption=as_float(caps.get("max_absorption", hw.max_absorption)),
            model=str(raw.get("qkdi_model") or hw.model),
            technology=bare_identity(raw.get("qkdi_type")) or hw.technology,
        )
    links: dict[str, Link] = {}
    for raw in as_list((node.get("qkd_links") or {}).get("qkd_link")):
        local, remote = raw.get("qkdl_local") or {}, raw.get("qkdl_remote") or {}
        wavelength = raw.get("phys_wavelength")
        links[str(raw["qkdl_id"])] = Link(
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
    apps: dict[str, App] = {}
    for raw in as_list((node.get("qkd_applications") or {}).get("qkd_app")):
        qos = raw.get("app_qos") or {}
        apps[str(raw["app_id"])] = App(
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
        )
    caps = node.get("qkdn_capabilities") or {}
    return NodeConfig(
        node.get("qkdn_id"), interfaces, links, apps, as_bool(caps.get("key_relay_mode_enable"), True)
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


def check(config: NodeConfig, hardware: dict[int, Interface], qkdn_id: str) -> None:
    """Raise DeviceRefusal for the first thing this QKD module physically cannot do."""
    for qkdi_id in config.interfaces:
        if qkdi_id not in hardware:
            raise DeviceRefusal(
                f"interface {qkdi_id} does not exist on this QKD module "
                f"(it has {', '.join(map(str, sorted(hardware))) or 'none'})",
                interface_path(qkdi_id),
            )
    busy: dict[int, str] = {}
    for link in config.links.values():
        _check_link(config, link, qkdn_id, busy)
    for app in config.apps.values():
        for backing in app.backing:
            if backing not in config.links:
                raise DeviceRefusal(
                    f"application {app.app_id}: backing link {backing} is not configured on this node",
                    app_path(app.app_id, "backing_qkdl_id"),
                )


def _check_link(config: NodeConfig, link: Link, qkdn_id: str, busy: dict[int, str]) -> None:
    if link.link_type not in ("PHYS", "VIRT"):
        raise DeviceRefusal(f"link {link.qkdl_id}: unknown qkdl_type {link.link_type}", link_path(link.qkdl_id, "qkdl_type"))
    if link.local_qkdn_id and link.local_qkdn_id.lower() != qkdn_id.lower():
        raise DeviceRefusal(
            f"link {link.qkdl_id}: qkdl_local/qkdn_id {link.local_qkdn_id} is not this node ({qkdn_id})",
            link_path(link.qkdl_id, "qkdl_local/qkdn_id"),
        )
    if link.link_type == "VIRT":
        if not config.key_relay:
            raise DeviceRefusal(
                f"link {link.qkdl_id}: a virtual link needs key_relay_mode_enable",
                link_path(link.qkdl_id, "qkdl_type"),
            )
        return
    if link.local_qkdi_id is None:
        raise DeviceRefusal(
            f"link {link.qkdl_id}: a PHYS link needs qkdl_local/qkdi_id", link_path(link.qkdl_id, "qkdl_local")
        )
    iface = config.interfaces.get(link.local_qkdi_id)
    if iface is None:
        raise DeviceRefusal(
            f"link {link.qkdl_id}: qkdl_local/qkdi_id {link.local_qkdi_id} names no interface of this node",
            link_path(link.qkdl_id, "qkdl_local/qkdi_id"),
        )
    if link.wavelength is not None and not any(
        lo <= link.wavelength <= hi for lo, hi in wavelength_ranges(iface.wavelength_range)
    ):
        raise DeviceRefusal(
            f"link {link.qkdl_id}: phys_wavelength {link.wavelength} nm is outside interface "
            f"{iface.qkdi_id}'s wavelength_range {iface.wavelength_range}",
            link_path(link.qkdl_id, "phys_wavelength"),
        )
    if link.role and link.role not in _ROLE_FITS.get(iface.role_support, set()):
        raise DeviceRefusal(
            f"link {link.qkdl_id}: interface {iface.qkdi_id} supports {iface.role_support}, not {link.role}",
            link_path(link.qkdl_id, "phys_qkd_role"),
        )
    if (
        link.channel_att_db is not None
        and iface.max_absorption is not None
        and link.channel_att_db > iface.max_absorption
    ):
        raise DeviceRefusal(
            f"link {link.qkdl_id}: phys_channel_att {link.channel_att_db} dB exceeds interface "
            f"{iface.qkdi_id}'s max_absorption {iface.max_absorption} dB",
            link_path(link.qkdl_id, "phys_channel_att"),
        )
    if link.enable and link.status != "OFF":
        other = busy.get(iface.qkdi_id)
        if other is not None:
            raise DeviceRefusal(
                f"link {link.qkdl_id}: interface {iface.qkdi_id} already runs enabled link {other}; "
                "a DV-QKD interface serves one link at a time",
                link_path(link.qkdl_id, "qkdl_enable"),
            )
        busy[iface.qkdi_id] = link.qkdl_id
