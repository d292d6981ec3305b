"""A controller's ETSI GS QKD 015 life cycle against two real qkd agents (alice and bob).

What an SDN controller does (see /work/shared/reference/README.md): discover each node with
<get> and a subtree filter on qkd_node, merge the two ends of a physical qkd_link, give it its
optical parameters, enable it, add a qkd_app backed by it, then tear it all down with
nc:operation="delete". After every step get-config must show exactly that step's result.

The same life cycle is then driven on one agent with Debian's yangcli (yuma123), an
independent NETCONF client that learns the schema from the agent through get-schema.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from lxml import etree

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
NSMAP = {"nc": NC_NS, "q": QKD_NS}
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

NODE_FILTER = f'<qkd_node xmlns="{QKD_NS}"><qkdn_id/><qkd_interfaces/></qkd_node>'


# ---------------------------------------------------------------------------- helpers


def config(body: str) -> str:
    """An edit-config <config> whose qkd_node content is `body` (prefix t: = node types)."""
    return (f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}">'
            f'<qkd_node xmlns="{QKD_NS}" xmlns:t="{TYPES_NS}">{body}</qkd_node></config>')


def data_of(reply) -> etree._Element:
    root = etree.fromstring(reply.xml.encode())
    data = root.find(f"{{{NC_NS}}}data")
    assert data is not None, reply.xml
    return data


def identity(element: etree._Element | None) -> tuple[str, str] | None:
    """An identityref value as (namespace, name), whatever prefix the server chose."""
    if element is None:
        return None
    prefix, _, name = (element.text or "").strip().rpartition(":")
    return element.nsmap.get(prefix or None), name


def entries(data: etree._Element, path: str, key: str, *, identities: tuple[str, ...] = (),
            containers: tuple[str, ...] = (), leaf_lists: tuple[str, ...] = ()) -> dict[str, dict]:
    """The list entries at `path` of a <data> element, by their `key` leaf: each leaf's text, an
    identityref as `identity` reads it, a container as a dict of its leaves, a leaf-list as a list."""
    out = {}
    for element in data.iterfind(path, NSMAP):
        entry: dict = {}
        for child in element:
            name = etree.QName(child).localname
            if name in containers:
                entry[name] = {etree.QName(c).localname: c.text for c in child}
            elif name in identities:
                entry[name] = identity(child)
            elif name in leaf_lists:
                entry.setdefault(name, []).append(child.text)
            else:
                entry[name] = child.text
        out[entry[key]] = entry
    return out


def links(data: etree._Element) -> dict[str, dict]:
    return entries(data, "q:qkd_node/q:qkd_links/q:qkd_link", "qkdl_id", containers=("qkdl_local", "qkdl_remote"),
                   identities=("qkdl_type", "qkdl_status", "phys_qkd_role"))


def apps(data: etree._Element) -> dict[str, dict]:
    return entries(data, "q:qkd_node/q:qkd_applications/q:qkd_app", "app_id", identities=("app_type",),
                   leaf_lists=("client_app_id", "backing_qkdl_id"))


def running(m) -> etree._Element:
    return data_of(m.get_config(source="running"))


def discover(m) -> tuple[str, dict[str, str]]:
    """The node's qkdn_id and its interfaces (qkdi_id by role_support), as a controller reads them."""
    data = data_of(m.get(filter=("subtree", NODE_FILTER)))
    ids = data.xpath("q:qkd_node/q:qkdn_id/text()", namespaces=NSMAP)
    assert len(ids) == 1, etree.tostring(data)
    # the subtree filter selected exactly what was asked for
    assert {etree.QName(c).localname for c in data.find("q:qkd_node", NSMAP)} <= {"qkdn_id", "qkd_interfaces"}
    interfaces = {}
    for iface in data.iterfind("q:qkd_node/q:qkd_interfaces/q:qkd_interface", NSMAP):
        role = identity(iface.find("q:qkdi_capabilities/q:role_support", NSMAP))
        interfaces[role[1] if role else ""] = iface.findtext("q:qkdi_id", namespaces=NSMAP)
    return ids[0], interfaces


def interface_for(interfaces: dict[str, str], role: str) -> str:
    """The interface a controller would pick for `role` (any id when the node lists none)."""
    return interfaces.get(role) or interfaces.get("TRANSCEIVER") or next(iter(interfaces.values()), "1")


def t(name: str) -> tuple[str, str]:
    return TYPES_NS, name


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def nodes(agent, netconf_connect):
    alice = agent("qkd", "alice")
    bob = agent("qkd", "bob")
    managers = {"alice": netconf_connect(alice), "bob": netconf_connect(bob)}
    yield {"alice": alice, "bob": bob}, managers
    for m in managers.values():
        if m.connected:
            m.close_session()


# ---------------------------------------------------------------------------- ncclient


def test_controller_lifecycle_on_two_nodes(nodes) -> None:
    _agents, m = nodes
    initial = {name: m[name].get_config(source="running").data_xml for name in m}

    # 1. discovery
    found = {name: discover(m[name]) for name in m}
    qkdn = {name: found[name][0] for name in m}
    assert qkdn["alice"] != qkdn["bob"]
    for value in qkdn.values():
        assert uuid.UUID(value)
    peer = {"alice": "bob", "bob": "alice"}
    role = {"alice": "TRANSMITTER", "bob": "RECEIVER"}
    qkdi = {name: interface_for(found[name][1], role[name]) for name in m}

    # 2. the link on both ends, pending and disabled
    qkdl_id = str(uuid.uuid4())
    for name in m:
        m[name].edit_config(target="running", config=config(
            f"<qkd_links><qkd_link><qkdl_id>{qkdl_id}</qkdl_id>"
            f"<qkdl_status>t:PENDING</qkdl_status><qkdl_enable>false</qkdl_enable>"
            f"<qkdl_local><qkdn_id>{qkdn[name]}</qkdn_id><qkdi_id>{qkdi[name]}</qkdi_id></qkdl_local>"
            f"<qkdl_remote><qkdn_id>{qkdn[peer[name]]}</qkdn_id><qkdi_id>{qkdi[peer[name]]}</qkdi_id></qkdl_remote>"
            f"<qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role[name]}</phys_qkd_role>"
            f"</qkd_link></qkd_links>"))
    for name in m:
        got = links(running(m[name]))
        assert list(got) == [qkdl_id]
        assert got[qkdl_id] == {
            "qkdl_id": qkdl_id, "qkdl_status": t("PENDING"), "qkdl_enable": "false",
            "qkdl_local": {"qkdn_id": qkdn[name], "qkdi_id": qkdi[name]},
            "qkdl_remote": {"qkdn_id": qkdn[peer[name]], "qkdi_id": qkdi[peer[name]]},
            "qkdl_type": t("PHYS"), "phys_qkd_role": t(role[name]),
        }

    # 3. optical parameters, merged into the existing entry
    for name in m:
        m[name].edit_config(target="running", config=config(
            f"<qkd_links><qkd_link><qkdl_id>{qkdl_id}</qkdl_id>"
            f"<phys_channel_att>7.5</phys_channel_att><phys_wavelength>1550</phys_wavelength>"
            f"</qkd_link></qkd_links>"))
    for name in m:
        link = links(running(m[name]))[qkdl_id]
        assert link["phys_channel_att"] == "7.5"  # canonical decimal64 (fraction-digits 3)
        assert link["phys_wavelength"] == "1550"
        assert link["qkdl_enable"] == "false" and link["phys_qkd_role"] == t(role[name])  # merge kept them

    # 4. activation
    for name in m:
        m[name].edit_config(target="running", config=config(
            f"<qkd_links><qkd_link><qkdl_id>{qkdl_id}</qkdl_id>"
            f"<qkdl_enable>true</qkdl_enable><qkdl_status>t:ACTIVE</qkdl_status>"
            f"</qkd_link></qkd_links>"))
    for name in m:
        link = links(running(m[name]))[qkdl_id]
        assert (link["qkdl_enable"], link["qkdl_status"]) == ("true", t("ACTIVE"))
        # <get> shows the link with the status the device reports (a twin alone in its process
        # has no peer, so it need not be ACTIVE), and the configured parameters
        op = links(data_of(m[name].get(filter=("subtree", f'<qkd_node xmlns="{QKD_NS}"><qkd_links/></qkd_node>'))))
        assert list(op) == [qkdl_id]
        assert op[qkdl_id]["qkdl_status"] in {t(s) for s in ("ACTIVE", "PASSIVE", "PENDING", "OFF")}
        assert (op[qkdl_id]["qkdl_enable"], op[qkdl_id]["phys_wavelength"]) == ("true", "1550")

    # 5. an application on each end, backed by the link
    app_id = str(uuid.uuid4())
    for name in m:
        m[name].edit_config(target="running", config=config(
            f"<qkd_applications><qkd_app><app_id>{app_id}</app_id><app_type>t:CLIENT</app_type>"
            f"<server_app_id>sae://{name}.example.net/encryptor-1</server_app_id>"
            f"<client_app_id>sae://{peer[name]}.example.net/encryptor-1</client_app_id>"
            f"<backing_qkdl_id>{qkdl_id}</backing_qkdl_id>"
            f"<local_qkdn_id>{qkdn[name]}</local_qkdn_id><remote_qkdn_id>{qkdn[peer[name]]}</remote_qkdn_id>"
            f"</qkd_app></qkd_applications>"))
    for name in m:
        data = running(m[name])
        assert apps(data) == {app_id: {
            "app_id": app_id, "app_type": t("CLIENT"),
            "server_app_id": f"sae://{name}.example.net/encryptor-1",
            "client_app_id": [f"sae://{peer[name]}.example.net/encryptor-1"],
            "backing_qkdl_id": [qkdl_id],
            "local_qkdn_id": qkdn[name], "remote_qkdn_id": qkdn[peer[name]],
        }}
        assert list(links(data)) == [qkdl_id]

    # 6. tear-down: the application first, then the link
    for name in m:
        m[name].edit_config(target="running", config=config(
            f'<qkd_applications><qkd_app nc:operation="delete"><app_id>{app_id}</app_id></qkd_app>'
            f"</qkd_applications>"))
    for name in m:
        data = running(m[name])
        assert apps(data) == {}
        assert list(links(data)) == [qkdl_id]
    for name in m:
        m[name].edit_config(target="running", config=config(
            f'<qkd_links><qkd_link nc:operation="delete"><qkdl_id>{qkdl_id}</qkdl_id></qkd_link></qkd_links>'))
    for name in m:
        assert links(running(m[name])) == {}
        assert discover(m[name])[0] == qkdn[name]
        assert m[name].get_config(source="running").data_xml == initial[name]


def test_candidate_lifecycle_commit_carries_the_link(nodes) -> None:
    """The same merge through the candidate: invisible in running until commit."""
    _agents, m = nodes
    alice = m["alice"]
    qkdn, interfaces = discover(alice)
    qkdi = interface_for(interfaces, "TRANSMITTER")
    qkdl_id = str(uuid.uuid4())
    before = alice.get_config(source="running").data_xml
    alice.edit_config(target="candidate", config=config(
        f"<qkd_links><qkd_link><qkdl_id>{qkdl_id}</qkdl_id><qkdl_type>t:PHYS</qkdl_type>"
        f"<qkdl_local><qkdn_id>{qkdn}</qkdn_id><qkdi_id>{qkdi}</qkdi_id></qkdl_local>"
        f"<phys_qkd_role>t:TRANSMITTER</phys_qkd_role><phys_wavelength>1550</phys_wavelength>"
        f"</qkd_link></qkd_links>"))
    assert qkdl_id in links(data_of(alice.get_config(source="candidate")))
    assert alice.get_config(source="running").data_xml == before
    alice.commit()
    assert links(running(alice))[qkdl_id]["phys_wavelength"] == "1550"
    alice.edit_config(target="candidate", config=config(
        f'<qkd_links><qkd_link nc:operation="delete"><qkdl_id>{qkdl_id}</qkdl_id></qkd_link></qkd_links>'))
    alice.commit()
    assert alice.get_config(source="running").data_xml == before


# ---------------------------------------------------------------------------- yangcli

YANGCLI = shutil.which("yangcli")


def yangcli(agent, home: Path, script: str, timeout: float = 60.0) -> str:
    """Run a yangcli script non-interactively against `agent`; returns its output."""
    path = home / "script.ycl"
    path.write_text(script)
    creds = agent.credentials
    cmd = [YANGCLI, f"--server={agent.host}", f"--ncport={agent.port}", f"--user={creds['username']}",
           f"--password={creds['password']}", "--batch-mode", f"--run-script={path}", "--log-level=info",
           "--autoload=true", "--use-xmlheader=true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, cwd=home)
    output = proc.stdout + proc.stderr
    assert "canceled" not in output, output
    assert "RPC Error Reply" not in output, output
    return output


@pytest.mark.skipif(YANGCLI is None, reason="Debian's yangcli (yuma123) is not installed")
def test_lifecycle_with_yangcli(agent, netconf_connect, tmp_path) -> None:
    node = agent("qkd", "carol")  # not in the default topology: an empty device
    m = netconf_connect(node)
    try:
        qkdn = discover(m)[0]
        before = m.get_config(source="running").data_xml
        qkdl_id = str(uuid.uuid4())
        app_id = str(uuid.uuid4())
        link = f"/qkd_node/qkd_links/qkd_link[qkdl_id='{qkdl_id}']"
        app = f"/qkd_node/qkd_applications/qkd_app[app_id='{app_id}']"

        # discovery with the schema fetched from the agent (get-schema), then a link via the candidate
        out = yangcli(node, tmp_path, "\n".join([
            "xget /qkd_node/qkdn_id",
            f"merge {link}/qkdl_enable value=false",
            f"merge {link}/qkdl_status value=etsi-qkdn-types:PENDING",
            f"merge {link}/qkdl_type value=etsi-qkdn-types:PHYS",
            f"merge {link}/qkdl_local/qkdn_id value={qkdn}",
            f"merge {link}/phys_qkd_role value=etsi-qkdn-types:TRANSMITTER",
            f"merge {link}/phys_channel_att value=3.25",
            f"merge {link}/phys_wavelength value=1550",
            "commit",
        ]) + "\n")
        assert qkdn in out  # the xget reply
        got = links(running(m))[qkdl_id]
        assert got["qkdl_enable"] == "false" and got["qkdl_type"] == t("PHYS")
        assert got["phys_channel_att"] == "3.25" and got["phys_wavelength"] == "1550"
        assert got["qkdl_local"] == {"qkdn_id": qkdn}

        # activation and an application
        yangcli(node, tmp_path, "\n".join([
            f"merge {link}/qkdl_enable value=true",
            f"merge {link}/qkdl_status value=etsi-qkdn-types:ACTIVE",
            f"merge {app}/app_type value=etsi-qkdn-types:CLIENT",
            f"merge {app}/server_app_id value=sae://carol.example.net/e1",
            f"merge {app}/backing_qkdl_id value={qkdl_id}",
            f"merge {app}/local_qkdn_id value={qkdn}",
            "commit",
        ]) + "\n")
        data = running(m)
        assert links(data)[qkdl_id]["qkdl_status"] == t("ACTIVE")
        assert apps(data)[app_id]["backing_qkdl_id"] == [qkdl_id]
        assert apps(data)[app_id]["app_type"] == t("CLIENT")

        # tear-down (yangcli's delete is nc:operation="delete")
        yangcli(node, tmp_path, f"delete {app}\ndelete {link}\ncommit\n")
        assert m.get_config(source="running").data_xml == before
    finally:
        m.close_session()
