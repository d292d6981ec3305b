"""What get-config returns goes back in unchanged: copy-config, edit-config replace and validate with
inline config, through running, candidate and startup, against one real agent, with ncclient.

An operator restoring a backup sends the agent's own output back. Values of type
instance-identifier and identityref carry XML namespace prefixes (the default NACM rule's
``<path>/nacm:nacm</path>``, ETSI's ``etsi-qkdn-types:VIRT``); a prefix bound to a URI that an
ancestor element already binds (``nacm`` inside ``<nacm xmlns=...acm>``) is dropped by lxml when a
client moves the element into its request (ncclient does for every <config>), unless the
declaration sits on the top-level element. Prefixes the client declares on <config> or <rpc>
only must be honoured too.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from agent_processes import QSTRATA
from lxml import etree
from ncclient.operations import RaiseMode
from netconf_helpers import call, errors, open_session

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NS = {"nc": NC_NS, "q": QKD_NS, "acm": NACM_NS}
VIRT = str(uuid.UUID(int=0x51))


@pytest.fixture(scope="module")
def node(agent, netconf_connect):
    """A QKD agent without a twin (deterministic data) holding one VIRT link: its configuration
    has an identityref of another module and the default NACM rules' same-module paths."""
    node = agent("qkd", "roundtrip", twin=False)
    m = netconf_connect(node)
    try:
        m.edit_config(target="running", config=(
            f'<config xmlns="{NC_NS}"><qkd_node xmlns="{QKD_NS}" xmlns:t="{TYPES_NS}"><qkd_links><qkd_link>'
            f"<qkdl_id>{VIRT}</qkdl_id><qkdl_type>t:VIRT</qkdl_type><virt_bandwidth>1000</virt_bandwidth>"
            f"</qkd_link></qkd_links></qkd_node></config>"))
        m.copy_config(target="startup", source="running")
    finally:
        m.close_session()
    return node


@pytest.fixture
def nc(m):
    m.raise_mode = RaiseMode.ALL
    return m


def backup(m, source: str = "running") -> str:
    """get-config as an operator saves it: the reply's data, as text."""
    return m.get_config(source=source).data_xml


def restored(data_xml: str) -> etree._Element:
    """A saved get-config turned into a <config> element the way lxml code does it: the <data>
    children moved under a new <config>."""
    data = etree.fromstring(data_xml.encode())
    config = etree.Element(f"{{{NC_NS}}}config", nsmap={None: NC_NS})
    for child in list(data):
        config.append(child)
    return config


def source(config: etree._Element | str) -> etree._Element:
    """ncclient's form of an inline source: <source> around the <config>."""
    holder = etree.Element(f"{{{NC_NS}}}source", nsmap={None: NC_NS})
    holder.append(etree.fromstring(config.encode()) if isinstance(config, str) else config)
    return holder


def inner_text(data_xml: str) -> str:
    """The children of a saved <data>, each serialized where it stands (its declarations kept)."""
    data = etree.fromstring(data_xml.encode())
    return "".join(etree.tostring(child, encoding="unicode") for child in data)


def test_defaults_hold_values_with_prefixes(nc) -> None:
    """The premise: the configuration holds a same-module instance-identifier and an identityref."""
    saved = backup(nc)
    data = etree.fromstring(saved.encode())
    assert "/nacm:nacm" in data.xpath("//acm:rule/acm:path/text()", namespaces=NS)
    assert data.findtext(f"q:qkd_node/q:qkd_links/q:qkd_link[q:qkdl_id='{VIRT}']/q:qkdl_type",
                         namespaces=NS).endswith(":VIRT")


def test_get_config_copied_back_into_running(nc) -> None:
    saved = backup(nc)
    reply = nc.copy_config(target="running", source=source(restored(saved)))
    assert reply.ok
    assert backup(nc) == saved


def test_get_config_copied_back_as_text_into_running(nc) -> None:
    """The same with the <config> given to ncclient as a string (ncclient moves it into the rpc)."""
    saved = backup(nc)
    reply = nc.copy_config(target="running", source=source(f'<config xmlns="{NC_NS}">{inner_text(saved)}</config>'))
    assert reply.ok
    assert backup(nc) == saved


def test_get_config_replaces_running_with_edit_config(nc) -> None:
    saved = backup(nc)
    reply = nc.edit_config(target="running", config=restored(saved), default_operation="replace")
    assert reply.ok
    assert backup(nc) == saved


def test_get_config_replaces_running_with_operation_replace(nc) -> None:
    saved = backup(nc)
    config = restored(saved)
    for top in config:
        top.set(f"{{{NC_NS}}}operation", "replace")
    reply = nc.edit_config(target="running", config=config)
    assert reply.ok
    assert backup(nc) == saved


def test_get_config_validates(nc) -> None:
    saved = backup(nc)
    reply = nc.validate(source=restored(saved))
    assert reply.ok


def test_a_saved_get_config_and_get_pass_qstrata_validate(nc, tmp_path) -> None:
    """`qstrata validate` takes a backup as it was saved (the reply's <data>, or the whole
    <rpc-reply>), and says where an error is in the saved file, with the file's line."""
    (tmp_path / "config.xml").write_text(backup(nc))
    (tmp_path / "reply.xml").write_text(nc.get_config(source="running").xml)
    (tmp_path / "state.xml").write_text(nc.get().data_xml)
    ok = subprocess.run([QSTRATA, "validate", "--config", "config.xml", "reply.xml"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines() == ["config.xml: valid", "reply.xml: valid"]
    assert subprocess.run([QSTRATA, "validate", "state.xml"], cwd=tmp_path, capture_output=True,
                          timeout=60).returncode == 0
    refused = subprocess.run([QSTRATA, "validate", "--config", "state.xml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "state.xml: /" in refused.stdout, refused.stdout + refused.stderr
    lines = backup(nc).splitlines()
    at = next(n for n, line in enumerate(lines, 1) if "<virt_bandwidth>" in line)
    lines[at - 1] = lines[at - 1].replace(">1000<", ">many<")
    (tmp_path / "broken.xml").write_text("\n".join(lines))
    broken = subprocess.run([QSTRATA, "validate", "broken.xml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert broken.returncode == 1 and "virt_bandwidth" in broken.stdout, broken.stdout
    assert f"(line {at})" in broken.stdout, (at, broken.stdout)


def test_get_config_through_the_candidate(nc) -> None:
    saved = backup(nc)
    assert nc.copy_config(target="candidate", source=source(restored(saved))).ok
    assert nc.validate(source="candidate").ok
    assert nc.commit().ok
    assert backup(nc) == saved
    assert backup(nc, "candidate") == saved


def test_startup_copied_back_into_startup(nc) -> None:
    saved = backup(nc, "startup")
    assert "/nacm:nacm" in saved
    assert nc.copy_config(target="startup", source=source(restored(saved))).ok
    assert backup(nc, "startup") == saved
    # and a startup backup restores running
    assert nc.copy_config(target="running", source=source(restored(saved))).ok
    assert backup(nc) == backup(nc, "startup")


def _undeclared(text: str) -> str:
    """`text` with every value prefix declaration taken off its element (the prefixes stay used)."""
    return re.sub(r' xmlns:[\w.-]+="[^"]*"', "", text)


def test_prefixes_declared_on_config_only(nc) -> None:
    saved = backup(nc)
    body = (f'<config xmlns="{NC_NS}" xmlns:nacm="{NACM_NS}" xmlns:etsi-qkdn-types="{TYPES_NS}">'
            f"{_undeclared(inner_text(saved))}</config>")
    assert nc.copy_config(target="running", source=source(body)).ok
    assert backup(nc) == saved
    assert nc.edit_config(target="running", config=body, default_operation="replace").ok
    assert backup(nc) == saved


def test_prefixes_declared_on_rpc_only(nc, node) -> None:
    """A client that declares its prefixes once, on <rpc> (the project's own client: the bytes go
    as written)."""
    import asyncio

    saved = backup(nc)
    inner = _undeclared(inner_text(saved))
    declared = f' message-id="p1" xmlns:nacm="{NACM_NS}" xmlns:etsi-qkdn-types="{TYPES_NS}"'

    async def run() -> list[bytes]:
        session = await open_session(node)
        try:
            replies = []
            for body in (f"<copy-config><target><running/></target><source><config>{inner}</config></source>"
                         f"</copy-config>",
                         f"<edit-config><target><running/></target><default-operation>replace</default-operation>"
                         f"<config>{inner}</config></edit-config>",
                         f"<validate><source><config>{inner}</config></source></validate>"):
                replies.append((await session.rpc(body, attributes=declared)).raw)
            return replies
        finally:
            await session.close()

    for raw in asyncio.run(run()):
        reply = etree.fromstring(raw)
        assert not errors(reply), raw
        assert reply.find("nc:ok", NS) is not None
    assert backup(nc) == saved


def test_identityref_prefix_declared_on_an_ancestor(nc) -> None:
    """ETSI identityrefs with their prefix declared on <qkd_node> (another prefix than the agent's),
    a NACM path with its prefix declared on <nacm> next to the default namespace."""
    saved = backup(nc)
    text = _undeclared(inner_text(saved))
    text = text.replace(f'<qkd_node xmlns="{QKD_NS}">', f'<qkd_node xmlns="{QKD_NS}" xmlns:qt="{TYPES_NS}">')
    text = text.replace("etsi-qkdn-types:", "qt:")
    text = text.replace(f'<nacm xmlns="{NACM_NS}">', f'<nacm xmlns="{NACM_NS}" xmlns:acm="{NACM_NS}">')
    text = text.replace("/nacm:nacm", "/acm:nacm")
    reply = call(nc, f'<copy-config xmlns="{NC_NS}"><target><running/></target><source><config>{text}</config>'
                     f"</source></copy-config>")
    assert not errors(reply), etree.tostring(reply)
    assert backup(nc) == saved


def test_an_undeclared_prefix_is_refused_and_running_kept(nc) -> None:
    """A value prefix declared nowhere is an error naming the leaf; running stays as it was."""
    saved = backup(nc)
    reply = call(nc, f'<copy-config xmlns="{NC_NS}"><target><running/></target><source><config>'
                     f"{_undeclared(inner_text(saved))}</config></source></copy-config>")
    found = errors(reply)
    assert found and found[0]["tag"] in ("invalid-value", "operation-failed")
    assert any("path" in (e["path"] or "") or "qkdl_type" in (e["path"] or "") for e in found)
    assert backup(nc) == saved
