"""XML printed by the schema layer keeps its value prefixes through an lxml move (what ncclient does
with every <config>): each top-level element declares the prefixes its subtree's values use."""

from __future__ import annotations

from lxml import etree
from qstrata.bindings.tree import DataTree
from qstrata.bindings.wire.xmlsafe import content_xml
from qstrata.bindings.xml_prefixes import declare_value_prefixes

NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
RULES = (f'<nacm xmlns="{NACM_NS}"><rule-list><name>a</name><rule><name>r</name>'
         f'<path xmlns:nacm="{NACM_NS}">/nacm:nacm/nacm:groups</path><action>deny</action></rule></rule-list></nacm>')
LINK = (f'<qkd_node xmlns="{QKD_NS}"><qkdn_id>00000000-0000-0000-0000-000000000001</qkdn_id><qkd_links><qkd_link>'
        f"<qkdl_id>00000000-0000-0000-0000-000000000002</qkdl_id>"
        f'<qkdl_type xmlns:t="{TYPES_NS}">t:VIRT</qkdl_type></qkd_link></qkd_links></qkd_node>')


def _moved(text: str) -> bytes:
    """`text`'s top-level elements moved into a new <config>, then serialized: lxml drops every
    declaration whose URI is bound by an ancestor at the new place."""
    source = etree.fromstring(f"<data>{text}</data>".encode())
    config = etree.Element("config")
    for child in list(source):
        config.append(child)
    return content_xml(config)


def test_printed_values_survive_a_move() -> None:
    tree = DataTree.parse(RULES + LINK, "xml", config_only=True, validate=False)
    printed = tree.print("xml")
    again = DataTree.parse(_moved(printed), "xml", config_only=True, validate=False)
    assert again.print("xml") == printed
    assert again.to_python()["ietf-netconf-acm:nacm"]["rule-list"][0]["rule"][0]["path"] == \
        "/ietf-netconf-acm:nacm/groups"
    link = again.to_python()["etsi-qkd-sdn-node:qkd_node"]["qkd_links"]["qkd_link"][0]
    assert link["qkdl_type"] == "etsi-qkd-node-types:VIRT"


def test_each_top_level_element_declares_only_its_own() -> None:
    printed = DataTree.parse(RULES + LINK, "xml", config_only=True, validate=False).print("xml")
    tops = etree.fromstring(f"<data>{printed}</data>".encode())
    nacm, node = tops.find(f"{{{NACM_NS}}}nacm"), tops.find(f"{{{QKD_NS}}}qkd_node")
    assert nacm.nsmap == {None: NACM_NS, "nacm": NACM_NS}
    assert set(node.nsmap.values()) == {QKD_NS, TYPES_NS}


def test_a_clashing_prefix_stays_on_its_leaves() -> None:
    text = '<a xmlns="urn:a"><b xmlns:p="urn:x">p:1</b><c xmlns:p="urn:y">p:2</c><d xmlns:q="urn:q">q:3</d></a>'
    assert declare_value_prefixes(text) == text.replace('<a xmlns="urn:a">', '<a xmlns="urn:a" xmlns:q="urn:q">')


def test_text_that_looks_like_a_declaration_is_text() -> None:
    text = '<a xmlns="urn:a"><b>x xmlns:p="urn:p" y</b><c attr="1"/></a>'
    assert declare_value_prefixes(text) == text
