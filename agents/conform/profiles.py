"""Profiles: what a device under test serves, as the values the check templates are filled with.

A check is written once (`{R0}{E1_create}{R1}`: "create test entry 1 under the profile's root") and
each profile says what that means for its model: the ETSI GS QKD 015 node's `qkd_link`, the QFS
node's `forwarding-table/entry` (a route to a destination no node has: a memory entry would claim
hardware a real node does not have, and is refused), the optical switch's `port-config/port`.
One registry, `PROFILES`, one file.

Test entries use identifiers derived from a fixed namespace so a run can remove what an earlier,
interrupted run left behind, and never touches entries it did not create.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from qstrata.bindings.wire.netconf_client import BASE

CONFORM_NS = uuid.UUID("6f0b5d0e-9a1c-5c2e-8f53-2f1d2c7b9a10")
NC = f'xmlns:nc="{BASE}"'


def test_id(i: int) -> str:
    return str(uuid.uuid5(CONFORM_NS, f"entry-{i}"))


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    modules: tuple[str, ...]
    """Modules the device must serve (get-schema comparison, gNMI capabilities)."""
    namespace: str
    root: str
    root_key: str | None
    """A mandatory leaf of the root that edits must carry (its value is read from the device)."""
    root_decls: str
    container: str
    """Element between the root and the list ('' when the list sits in the root)."""
    list_name: str
    key: str
    keys: tuple[str, str, str]
    body: str
    """Non-key children of a valid test entry."""
    mod_leaf: str
    mod_value: str
    bad_leaf: str
    bad_value: str
    gnmi_root: str
    gnmi_set_leaf: str
    gnmi_set_value: str
    gnmi_bad_leaf: str
    gnmi_bad_value: str

    def values(self, root_key_value: str | None) -> dict[str, str]:
        """The placeholders check templates use (see `Check.send`)."""
        ns = f'xmlns="{self.namespace}"' + (f" {self.root_decls}" if self.root_decls else "")
        key_el = f"<{self.root_key}>{root_key_value}</{self.root_key}>" if self.root_key and root_key_value else ""
        c0, c1 = (f"<{self.container}>", f"</{self.container}>") if self.container else ("", "")
        v = {
            "NS": self.namespace, "ROOT": self.root, "LIST": self.list_name, "KEY": self.key,
            "MODLEAF": self.mod_leaf, "MODVAL": self.mod_value, "BADLEAF": self.bad_leaf,
            "R0": f"<{self.root} {ns}>{key_el}{c0}", "R1": f"{c1}</{self.root}>",
            "F0": f"<{self.root} {ns}>{c0}", "F1": f"{c1}</{self.root}>",
            "BASE": BASE, "NC": NC,
        }
        for n, k in zip((1, 2, 3), self.keys, strict=True):
            key = f"<{self.key}>{k}</{self.key}>"
            el = self.list_name
            v[f"K{n}"] = k
            v[f"E{n}"] = f"<{el}>{key}{self.body}</{el}>"
            v[f"E{n}_key"] = f"<{el}>{key}</{el}>"
            for op in ("create", "delete", "remove", "merge"):
                inner = self.body if op in ("create", "merge") else ""
                v[f"E{n}_{op}"] = f'<{el} {NC} nc:operation="{op}">{key}{inner}</{el}>'
            modded = re.sub(f"<{self.mod_leaf}>[^<]*</{self.mod_leaf}>",
                            f"<{self.mod_leaf}>{self.mod_value}</{self.mod_leaf}>", self.body)
            v[f"E{n}_replace"] = f'<{el} {NC} nc:operation="replace">{key}{modded}</{el}>'

            v[f"E{n}_mod"] = f"<{el}>{key}<{self.mod_leaf}>{self.mod_value}</{self.mod_leaf}></{el}>"
            v[f"E{n}_badvalue"] = f"<{el}>{key}<{self.bad_leaf}>{self.bad_value}</{self.bad_leaf}></{el}>"
            v[f"E{n}_unknown"] = f"<{el}>{key}<no-such-conform-leaf>1</no-such-conform-leaf></{el}>"
            v[f"E{n}_badop"] = f'<{el} {NC} nc:operation="evaporate">{key}</{el}>'
        v["E_nokey"] = f"<{self.list_name}>{self.body}</{self.list_name}>"
        v["E_unknown_ns"] = (f'<{self.list_name} xmlns="urn:example:no-such-namespace">'
                             f"<{self.key}>{self.keys[0]}</{self.key}></{self.list_name}>")
        v["FILTER"] = f'<filter type="subtree">{v["F0"]}<{self.list_name}/>{v["F1"]}</filter>'
        v["FILTER_ROOT"] = f'<filter type="subtree"><{self.root} xmlns="{self.namespace}"/></filter>'
        return v


ETSI_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
ETSI_TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        name="etsi-qkd-015", title="ETSI GS QKD 015 V2.1.1 QKD node",
        modules=("etsi-qkd-sdn-node", "etsi-qkd-node-types"), namespace=ETSI_NS, root="qkd_node",
        root_key="qkdn_id", root_decls=f'xmlns:qt="{ETSI_TYPES}"', container="qkd_links", list_name="qkd_link",
        key="qkdl_id", keys=(test_id(1), test_id(2), test_id(3)),
        body=(f"<qkdl_enable>false</qkdl_enable><qkdl_remote><qkdn_id>{test_id(99)}</qkdn_id></qkdl_remote>"
              f'<qkdl_type xmlns:qt="{ETSI_TYPES}">qt:VIRT</qkdl_type><virt_bandwidth>1000</virt_bandwidth>'),
        mod_leaf="virt_bandwidth", mod_value="2000", bad_leaf="qkdl_enable", bad_value="maybe",
        gnmi_root="etsi-qkd-sdn-node:qkd_node", gnmi_set_leaf="qkdn_location_id", gnmi_set_value="qstrata-conform",
        gnmi_bad_leaf="qkdn_capabilities/link_stats_support", gnmi_bad_value="maybe"),
    Profile(
        name="qfs", title="qstrata quantum forwarding stratum node",
        modules=("qstrata-qfs",), namespace="urn:qstrata:yang:qstrata-qfs", root="qfs-node", root_key="uuid",
        root_decls="", container="forwarding-table", list_name="entry", key="destination",
        keys=(test_id(1), test_id(2), test_id(3)), body=f"<next-hop-node>{test_id(98)}</next-hop-node>"
                                                        "<min-fidelity>0.5</min-fidelity>",
        mod_leaf="min-fidelity", mod_value="0.6", bad_leaf="min-fidelity", bad_value="many",
        gnmi_root="qstrata-qfs:qfs-node", gnmi_set_leaf="urn", gnmi_set_value="urn:qstrata:node:conform",
        gnmi_bad_leaf="memories/memory[memory-id=conform-9]/capacity", gnmi_bad_value="many"),
    Profile(
        name="optical-switch", title="Polatis optical-switch (revision 2018-03-22)",
        modules=("optical-switch",), namespace="http://www.polatis.com/yang/optical-switch", root="port-config",
        root_key=None, root_decls="", container="", list_name="port", key="port-id", keys=("1", "2", "3"),
        body="<label>conform</label>", mod_leaf="label", mod_value="conform-2", bad_leaf="label",
        bad_value="x" * 200,
        gnmi_root="optical-switch:port-config", gnmi_set_leaf="port[port-id=1]/label", gnmi_set_value="conform",
        gnmi_bad_leaf="port[port-id=1]/peer-port", gnmi_bad_value="x" * 200),
)}
