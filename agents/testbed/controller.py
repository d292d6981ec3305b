"""The built-in SDN controller: configures a freshly started network over NETCONF, nothing else.

It does what an SDN controller (ONOS, TeraFlowSDN) does through the agents' public interface, so
`qstrata up` exercises the same path as a user's controller: learn each node's identity with
`<get>`, make the switches' cross-connects, create and enable each QKD link on both ends (ETSI GS
QKD 015 `qkd_link`) and each entanglement link on both memory nodes (qstrata-qfs). Each agent gets
one `edit-config` on running. It never touches the twins directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from xml.sax.saxutils import escape

from qstrata.collectors.netconf_client import NetconfEndpoint, NetconfError, NetconfSession

from .plan import ControllerPlan, CrossConnect, EntanglementPlan, QkdLinkPlan

log = logging.getLogger("qstrata.up.controller")

QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
QKD_TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
QFS = "urn:qstrata:yang:qstrata-qfs"
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


class Controller:
    """Configures the `plan` on agents reachable at `endpoints` (agent name -> NETCONF login)."""

    def __init__(self, endpoints: dict[str, NetconfEndpoint], plan: ControllerPlan,
                 say: Callable[[str], None] | None = None, timeout: float = 30.0) -> None:
        self.endpoints = endpoints
        self.plan = plan
        self.say = say or log.info
        self.timeout = timeout

    async def _session(self, name: str) -> NetconfSession:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ControllerError(f"{name}: no such agent in this network")
        try:
            return await NetconfSession.open(endpoint, self.timeout)
        except NetconfError as exc:
            raise ControllerError(f"{name}: {exc}") from None

    async def _edit(self, name: str, config: str) -> None:
        session = await self._session(name)
        try:
            await session.rpc("<edit-config><target><running/></target>"
                              f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">{config}</config>'
                              "</edit-config>", self.timeout)
        except (NetconfError, TimeoutError) as exc:
            raise ControllerError(f"{name}: edit-config refused: {exc or 'timed out'}") from None
        finally:
            await session.close()

    async def node_id(self, name: str, kind: str) -> str:
        """The node's identity as it reports it (qkdn_id, or the QFS node's uuid)."""
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
