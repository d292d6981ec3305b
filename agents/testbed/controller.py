"""The built-in SDN controller: configures a freshly started network over NETCONF, nothing else.

It does what an SDN controller (ONOS, TeraFlowSDN) does through the agents' public interface, so
`qstrata up` exercises the same path as a user's controller: learn each node's identity with
`<get>`, make the switches' cross-connects, create and enable each QKD link on both ends (ETSI GS
QKD 015 `qkd_link`) and each entanglement link on both memory nodes (qstrata-qfs), then, when the
plan has key delivery, each QKD node's KME (qstrata-ss `kme`: its kme-id, the SAE directory, the
forwarding table towards every other KME, the applications' token-bucket sessions, and the ETSI
GS QKD 015 `qkd_app`s whose master or slaves call it) in one more `edit-config`: a route names its
QKD link, which must exist first. Every change is an `edit-config` on running; it never touches
the twins directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from xml.sax.saxutils import escape

from qstrata.agents.kme.material import kme_urn
from qstrata.bindings.wire.netconf_client import NetconfEndpoint, NetconfError, NetconfSession

from .plan import ControllerPlan, CrossConnect, EntanglementPlan, QkdAppPlan, QkdLinkPlan

log = logging.getLogger("qstrata.up.controller")

QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
QKD_TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
QFS = "urn:qstrata:yang:qstrata-qfs"
SS = "urn:qstrata:yang:qstrata-ss"
OPSW = "http://www.polatis.com/yang/optical-switch"


class ControllerError(Exception):
    """An agent refused or could not be reached; the message says which and why."""


def cross_connects_xml(pairs: list[CrossConnect] | list[tuple[int, int]]) -> str:
    items = [(p.ingress, p.egress) if isinstance(p, CrossConnect) else p for p in pairs]
    body = "".join(f"<pair><ingress>{i}</ingress><egress>{e}</egress></pair>" for i, e in items)
    return f'<cross-connects xmlns="{OPSW}">{body}</cross-connects>'


def qkd_link_xml(link_id: str, local_id: str, local_iface: int, remote_id: str, remote_iface: int, role: str,
                 enable: bool = True) -> str:
    return (f'<qkd_node xmlns="{QKD}" xmlns:t="{QKD_TYPES}"><qkd_links><qkd_link>'
            f"<qkdl_id>{escape(link_id)}</qkdl_id><qkdl_enable>{str(enable).lower()}</qkdl_enable>"
            f"<qkdl_local><qkdn_id>{escape(local_id)}</qkdn_id><qkdi_id>{local_iface}</qkdi_id></qkdl_local>"
            f"<qkdl_remote><qkdn_id>{escape(remote_id)}</qkdn_id><qkdi_id>{remote_iface}</qkdi_id></qkdl_remote>"
            f"<qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role}</phys_qkd_role>"
            "</qkd_link></qkd_links></qkd_node>")


def entanglement_link_xml(link_id: str, memory: str, remote_id: str, remote_memory: str,
                          switch: str | None, port: int | None, cutoff_ms: float | None = None) -> str:
    channel = (f"<switch-port><device>{escape(switch)}</device><port>{port}</port></switch-port>"
               if switch is not None and port is not None else "")
    if cutoff_ms:
        channel += f"<cutoff-time>{int(cutoff_ms * 1_000_000)}</cutoff-time>"
    return (f'<qfs-node xmlns="{QFS}" xmlns:qfs="{QFS}"><entanglement-links><link><link-id>{escape(link_id)}</link-id>'
            f"<local-memory>{escape(memory)}</local-memory><remote-node>{escape(remote_id)}</remote-node>"
            f"<remote-memory>{escape(remote_memory)}</remote-memory>"
            f"<generation-scheme>qfs:BARRETT-KOK</generation-scheme>{channel}"
            "</link></entanglement-links></qfs-node>")


def kme_xml(kme_id: str, saes: dict[str, str], routes: list[tuple[str, str, str]], apps: list[QkdAppPlan],
            speed: float = 1.0) -> str:
    """A KME's configuration: `saes` SAE ID -> its KME's id, `routes` (destination kme-id, next-hop
    kme-id, QKD link), `apps` with their sessions, whose rates are `speed` times the plan's (the
    buckets count wall seconds; the world makes key `speed` times faster)."""
    directory = "".join(f"<sae><sae-id>{escape(sae)}</sae-id><kme-id>{escape(kme)}</kme-id></sae>"
                        for sae, kme in saes.items())
    table = "".join(f"<route><urn-prefix>{escape(kme_urn(dest))}</urn-prefix><next-hop-kme>{escape(hop)}</next-hop-kme>"
                    f"<qkd-link>{escape(link)}</qkd-link></route>" for dest, hop, link in routes)
    sessions = "".join(f"<session><session-id>{a.session.id}</session-id><rate>{round(a.session.rate * speed)}</rate>"
                       f"<burst>{round(a.session.burst * max(speed, 1.0))}</burst></session>"
                       for a in apps if a.session is not None)
    qkd_apps = "".join(f"<qkd_app><app_id>{a.id}</app_id><server_app_id>{escape(a.master)}</server_app_id>"
                       + "".join(f"<client_app_id>{escape(s)}</client_app_id>" for s in a.slaves)
                       + (f'<ss-session-id xmlns="{SS}">{a.session.id}</ss-session-id>' if a.session else "")
                       + "</qkd_app>" for a in apps)
    return (f'<qkd_node xmlns="{QKD}"><qkd_applications>{qkd_apps}</qkd_applications></qkd_node>'
            f'<service-stratum xmlns="{SS}"><kme><kme-id>{escape(kme_id)}</kme-id><saes>{directory}</saes>'
            f"<forwarding-table>{table}</forwarding-table><sessions>{sessions}</sessions></kme></service-stratum>")


class Controller:
    """Configures the `plan` on agents reachable at `endpoints` (agent name -> NETCONF login);
    `speed`: the network's (token buckets are scaled by it, see `kme_xml`)."""

    def __init__(self, endpoints: dict[str, NetconfEndpoint], plan: ControllerPlan,
                 say: Callable[[str], None] | None = None, timeout: float = 30.0, speed: float = 1.0) -> None:
        self.endpoints = endpoints
        self.plan = plan
        self.say = say or log.info
        self.timeout = timeout
        self.speed = speed
        self._ids: dict[str, str] = {}

    async def _session(self, name: str) -> NetconfSession:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ControllerError(f"{name}: no such agent in this network")
        try:
            return await NetconfSession.open(endpoint)
        except NetconfError as exc:
            raise ControllerError(f"{name}: {exc}") from None

    async def _edit(self, name: str, config: str) -> None:
        session = await self._session(name)
        try:
            await session.request("<edit-config><target><running/></target>"
                              f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">{config}</config>'
                              "</edit-config>", self.timeout)
        except (NetconfError, TimeoutError) as exc:
            raise ControllerError(f"{name}: edit-config refused: {exc or 'timed out'}") from None
        finally:
            await session.close()

    async def node_id(self, name: str, kind: str) -> str:
        """The node's identity as it reports it (qkdn_id, or the QFS node's uuid), asked once."""
        if name not in self._ids:
            self._ids[name] = await self._node_id(name, kind)
        return self._ids[name]

    async def _node_id(self, name: str, kind: str) -> str:
        ns, top, leaf = (QKD, "qkd_node", "qkdn_id") if kind == "qkd" else (QFS, "qfs-node", "uuid")
        session = await self._session(name)
        try:
            reply = await session.request(f'<get><filter type="subtree"><{top} xmlns="{ns}"><{leaf}/></{top}>'
                                          "</filter></get>", self.timeout)
        except (NetconfError, TimeoutError) as exc:
            raise ControllerError(f"{name}: get refused: {exc or 'timed out'}") from None
        finally:
            await session.close()
        value = reply.findtext(f".//{{{ns}}}{top}/{{{ns}}}{leaf}")
        if not value:
            raise ControllerError(f"{name}: reports no {top}/{leaf}")
        return value.strip()

    async def run(self) -> None:
        """Configure everything in the plan; raises `ControllerError` on the first refusal."""
        plan = self.plan
        by_switch: dict[str, list[CrossConnect]] = {}
        for xc in plan.cross_connects:
            by_switch.setdefault(xc.switch, []).append(xc)
        await asyncio.gather(*(self._cross_connect(sw, pairs) for sw, pairs in by_switch.items()))
        await asyncio.gather(*(self._qkd_link(link) for link in plan.qkd_links),
                             *(self._entanglement_link(link) for link in plan.entanglement_links))
        nodes = plan.kme_nodes()
        if nodes:
            ids = dict(zip(nodes, await asyncio.gather(*(self.node_id(n, "qkd") for n in nodes)), strict=True))
            await asyncio.gather(*(self._kme(node, ids) for node in nodes))
            self.say(f"controller: KMEs of {', '.join(nodes)} configured: {len(plan.saes)} SAEs, "
                     f"{len(plan.qkd_apps)} key delivery applications")

    async def _kme(self, node: str, ids: dict[str, str]) -> None:
        plan = self.plan
        routes = [(ids[dest], ids[hop], link) for dest, (hop, link) in plan.kme_routes().get(node, {}).items()]
        apps = [a for a in plan.qkd_apps if node in {plan.node_of(s) for s in (a.master, *a.slaves)}]
        await self._edit(node, kme_xml(ids[node], {s.id: ids[s.node] for s in plan.saes}, routes, apps, self.speed))

    async def _cross_connect(self, switch: str, pairs: list[CrossConnect]) -> None:
        await self._edit(switch, cross_connects_xml(pairs))
        self.say(f"controller: {switch} cross-connects " + ", ".join(f"{p.ingress}<->{p.egress}" for p in pairs))

    async def _qkd_link(self, link: QkdLinkPlan) -> None:
        ids = await asyncio.gather(self.node_id(link.a.node, "qkd"), self.node_id(link.b.node, "qkd"))
        await asyncio.gather(
            self._edit(link.a.node, qkd_link_xml(link.id, ids[0], link.a.interface, ids[1], link.b.interface,
                                                 "TRANSMITTER")),
            self._edit(link.b.node, qkd_link_xml(link.id, ids[1], link.b.interface, ids[0], link.a.interface,
                                                 "RECEIVER")))
        self.say(f"controller: qkd_link {link.id[:8]} {link.a.node}<->{link.b.node} created and enabled")

    async def _entanglement_link(self, link: EntanglementPlan) -> None:
        ids = await asyncio.gather(self.node_id(link.a.node, "memory"), self.node_id(link.b.node, "memory"))
        await asyncio.gather(
            self._edit(link.a.node, entanglement_link_xml(link.id, link.a.memory, ids[1], link.b.memory,
                                                          link.a.switch, link.a.port, link.cutoff_ms)),
            self._edit(link.b.node, entanglement_link_xml(link.id, link.b.memory, ids[0], link.a.memory,
                                                          link.b.switch, link.b.port, link.cutoff_ms)))
        self.say(f"controller: entanglement link {link.id[:8]} {link.a.node}<->{link.b.node} created")
