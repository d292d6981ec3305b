"""XML bodies with value prefixes (instance-identifier, identityref) over RESTCONF, against one real
agent: what a GET returned goes back with PUT unchanged, and prefixes declared on an ancestor
(the datastore's <data>, the resource, <yang-patch>) are honoured.

The NACM default rules hold ``<path>/nacm:nacm</path>``, whose prefix binds the URI of ``<nacm>``'s
own default namespace: lxml drops such a declaration when a client moves the element into a new
body, unless the top-level element carries it too.
"""

from __future__ import annotations

import re

import pytest
import requests
from agent_processes import AgentProcess, restconf_agent
from lxml import etree

YX = "application/yang-data+xml"
RC_NS = "urn:ietf:params:xml:ns:yang:ietf-restconf"
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
YP_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-patch"
NACM = "ietf-netconf-acm:nacm"
CONFIG = "?content=config"


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    with restconf_agent(tmp_path_factory.mktemp("rc-prefixes") / "alice") as agent:
        yield agent


def rc(agent: AgentProcess, method: str, path: str, body: bytes | str | None = None,
       content: str = YX) -> requests.Response:
    creds = agent.credentials
    return requests.request(method, agent.restconf + path, verify=creds["ca"], timeout=20,
                            auth=(creds["username"], creds["password"]), data=body,
                            headers={"Accept": YX, **({"Content-Type": content} if body is not None else {})})


def get_xml(agent: AgentProcess, path: str) -> str:
    answer = rc(agent, "GET", path)
    assert answer.status_code == 200, answer.text
    return answer.text


def moved_into(tag: str, children: list[etree._Element]) -> bytes:
    """A new body element holding `children`, moved there as lxml code does."""
    body = etree.Element(tag, nsmap={None: etree.QName(tag).namespace})
    for child in children:
        body.append(child)
    return etree.tostring(body)


def _undeclared(text: str) -> str:
    return re.sub(r' xmlns:[\w.-]+="[^"]*"', "", text)


def test_datastore_get_put_round_trip(alice) -> None:
    saved = get_xml(alice, "/restconf/data" + CONFIG)
    assert "/nacm:nacm" in saved
    data = etree.fromstring(saved.encode())
    answer = rc(alice, "PUT", "/restconf/data", moved_into(f"{{{RC_NS}}}data", list(data)))
    assert answer.status_code == 204, answer.text
    assert get_xml(alice, "/restconf/data" + CONFIG) == saved


def test_resource_get_put_round_trip(alice) -> None:
    saved = get_xml(alice, f"/restconf/data/{NACM}" + CONFIG)
    nacm = etree.fromstring(saved.encode())
    holder = etree.Element("holder")
    holder.append(nacm)  # a client that kept the resource inside its own document
    answer = rc(alice, "PUT", f"/restconf/data/{NACM}", etree.tostring(holder[0]))
    assert answer.status_code == 204, answer.text
    assert get_xml(alice, f"/restconf/data/{NACM}" + CONFIG) == saved


def test_datastore_put_with_prefixes_declared_on_data_only(alice) -> None:
    saved = get_xml(alice, "/restconf/data" + CONFIG)
    inner = _undeclared(re.match(r"<data[^>]*>(.*)</data>\s*\Z", saved, re.S).group(1))
    body = (f'<data xmlns="{RC_NS}" xmlns:nacm="{NACM_NS}" xmlns:etsi-qkdn-types="{TYPES_NS}">'
            f"{inner}</data>")
    answer = rc(alice, "PUT", "/restconf/data", body)
    assert answer.status_code == 204, answer.text
    assert get_xml(alice, "/restconf/data" + CONFIG) == saved


def test_yang_patch_value_prefix_declared_on_yang_patch(alice) -> None:
    saved = get_xml(alice, f"/restconf/data/{NACM}")
    patch = (f'<yang-patch xmlns="{YP_NS}" xmlns:a="{NACM_NS}"><patch-id>prefixes</patch-id><edit>'
             f"<edit-id>1</edit-id><operation>create</operation><target>/rule-list=prefixes</target><value>"
             f'<rule-list xmlns="{NACM_NS}"><name>prefixes</name><group>nobody</group><rule><name>r</name>'
             f"<module-name>ietf-netconf-acm</module-name><path>/a:nacm/a:groups</path>"
             f"<access-operations>read</access-operations><action>deny</action></rule></rule-list>"
             f"</value></edit></yang-patch>")
    answer = rc(alice, "PATCH", f"/restconf/data/{NACM}", patch, content="application/yang-patch+xml")
    try:
        assert answer.status_code == 200 and "<ok/>" in answer.text, answer.text
        rule = etree.fromstring(get_xml(alice, f"/restconf/data/{NACM}/rule-list=prefixes").encode())
        path = rule.find(f".//{{{NACM_NS}}}path")
        prefix = path.text.split(":")[0].lstrip("/")
        assert path.nsmap[prefix] == NACM_NS and path.text == f"/{prefix}:nacm/{prefix}:groups"
    finally:
        rc(alice, "DELETE", f"/restconf/data/{NACM}/rule-list=prefixes")
    assert get_xml(alice, f"/restconf/data/{NACM}") == saved


def test_broken_body_with_declarations_on_data_is_one_clear_error(alice) -> None:
    """The path that honours <data>'s declarations parses the body first: broken XML is a 400
    malformed-message, and the datastore stays as it was."""
    saved = get_xml(alice, "/restconf/data" + CONFIG)
    answer = rc(alice, "PUT", "/restconf/data", f'<data xmlns="{RC_NS}" xmlns:nacm="{NACM_NS}"><nacm xmlns="{NACM_NS}">'
                                                f"<enable-nacm>true</enable-nacm></data>")
    assert answer.status_code == 400, answer.text
    error = etree.fromstring(answer.content).find(f"{{{RC_NS}}}error")
    assert error.findtext(f"{{{RC_NS}}}error-tag") == "malformed-message"
    assert "not acceptable XML" in error.findtext(f"{{{RC_NS}}}error-message")
    assert get_xml(alice, "/restconf/data" + CONFIG) == saved
