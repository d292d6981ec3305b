"""RFC 8341 NACM end to end: /nacm in running, configured over NETCONF, enforced on operations,
on computed changes, on reads and on notifications, with its denial counters."""

from __future__ import annotations

import time
import uuid

import pytest
from lxml import etree
from netconf_helpers import call, errors
from qstrata.agents.access.users import add_user

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
NS = {"nc": NC_NS, "q": QKD_NS, "acm": NACM_NS}
APPS = "/etsi-qkd-sdn-node:qkd_node/qkd_applications"

OPERATORS = f"""<config xmlns="{NC_NS}"><nacm xmlns="{NACM_NS}">
  <groups><group><name>operators</name><user-name>olive</user-name></group></groups>
  <rule-list><name>operators</name><group>operators</group>
    <rule><name>no-app-writes</name><module-name>etsi-qkd-sdn-node</module-name>
      <path xmlns:q="{QKD_NS}">/q:qkd_node/q:qkd_applications</path>
      <access-operations>create update delete</access-operations><action>deny</action></rule>
    <rule><name>no-location-reads</name><module-name>etsi-qkd-sdn-node</module-name>
      <path xmlns:q="{QKD_NS}">/q:qkd_node/q:qkdn_location_id</path>
      <access-operations>read</access-operations><action>deny</action></rule>
    <rule><name>no-schemas</name><module-name>ietf-netconf-monitoring</module-name><rpc-name>get-schema</rpc-name>
      <access-operations>exec</access-operations><action>deny</action></rule>
    <rule><name>no-config-change-notifications</name><module-name>ietf-netconf-notifications</module-name>
      <notification-name>netconf-config-change</notification-name><access-operations>read</access-operations>
      <action>deny</action></rule>
    <rule><name>writes</name><module-name>etsi-qkd-sdn-node</module-name>
      <access-operations>create update delete</access-operations><action>permit</action></rule>
  </rule-list></nacm></config>"""


def link(qkdl_id: str) -> str:
    return (f'<config xmlns="{NC_NS}"><qkd_node xmlns="{QKD_NS}"><qkd_links><qkd_link><qkdl_id>{qkdl_id}</qkdl_id>'
            "</qkd_link></qkd_links></qkd_node></config>")


def app(app_id: str) -> str:
    return (f'<config xmlns="{NC_NS}"><qkd_node xmlns="{QKD_NS}"><qkd_applications><qkd_app><app_id>{app_id}'
            "</app_id></qkd_app></qkd_applications></qkd_node></config>")


def edit(target: str, body: str) -> str:
    return f'<edit-config xmlns="{NC_NS}"><target><{target}/></target>{body}</edit-config>'


@pytest.fixture(scope="module")
def node(agent):
    node = agent("qkd", "guarded-nacm", twin=False)
    add_user(node.state_dir, "olive", "olive-secret-1")  # no users.json group: only /nacm/groups names her
    add_user(node.state_dir, "rita", "rita-secret-1", groups=("read-write",))
    return node


def counters(admin) -> dict[str, int]:
    data = etree.fromstring(admin.get(filter=("subtree", f'<nacm xmlns="{NACM_NS}"/>')).data_xml.encode())
    return {name: int(data.findtext(f".//acm:{name}", namespaces=NS) or -1)
            for name in ("denied-operations", "denied-data-writes", "denied-notifications")}


def test_nacm_rules_written_over_netconf_apply_at_once(node, connect) -> None:
    admin = connect(node)
    rita = connect(node, "rita", "rita-secret-1")
    # read-write users may not touch /nacm (default rules); admins may
    errs = errors(call(rita, edit("running", OPERATORS)))
    assert [e["tag"] for e in errs] == ["access-denied"]
    assert errs[0]["path"] and errs[0]["path"].startswith("/ietf-netconf-acm:nacm")
    before = counters(admin)
    assert before["denied-data-writes"] >= 1
    assert admin.edit_config(target="running", config=OPERATORS).ok

    olive = connect(node, "olive", "olive-secret-1")
    qkdl_id = str(uuid.uuid4())
    assert olive.edit_config(target="running", config=link(qkdl_id)).ok  # permitted by her rules
    # a write her rules deny is refused on the computed change, with the path of the denied node
    reply = call(olive, edit("running", app(str(uuid.uuid4()))))
    errs = errors(reply)
    assert [e["tag"] for e in errs] == ["access-denied"], etree.tostring(reply)
    assert errs[0]["path"].startswith(APPS)
    assert "<qkd_app>" not in admin.get_config(source="running").data_xml
    # an operation her rules deny
    reply = call(olive, '<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">'
                        "<identifier>etsi-qkd-sdn-node</identifier></get-schema>")
    assert [e["tag"] for e in errors(reply)] == ["access-denied"]
    # reads: the denied leaf and /nacm (default-deny-all) are silently omitted
    admin.edit_config(target="running", config=f'<config xmlns="{NC_NS}"><qkd_node xmlns="{QKD_NS}">'
                                                "<qkdn_location_id>lab-3</qkdn_location_id></qkd_node></config>")
    seen = olive.get_config(source="running").data_xml
    assert qkdl_id in seen and "lab-3" not in seen and NACM_NS not in seen
    assert "lab-3" in admin.get_config(source="running").data_xml
    after = counters(admin)
    assert after["denied-operations"] == before["denied-operations"] + 1
    assert after["denied-data-writes"] == before["denied-data-writes"] + 1

    # notifications: olive is not told of config changes, the admin is
    olive.create_subscription()
    admin.create_subscription()
    admin.edit_config(target="running", config=link(str(uuid.uuid4())))
    got = admin.take_notification(timeout=5)
    assert got is not None and "netconf-config-change" in got.notification_xml
    assert olive.take_notification(timeout=1) is None
    deadline = time.monotonic() + 5
    while counters(admin)["denied-notifications"] <= after["denied-notifications"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counters(admin)["denied-notifications"] > after["denied-notifications"]

    # and removing her rule-list takes effect at the next request
    remove = (f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}"><nacm xmlns="{NACM_NS}"><rule-list nc:operation="delete">'
              "<name>operators</name></rule-list></nacm></config>")
    assert admin.edit_config(target="running", config=remove).ok
    assert [e["tag"] for e in errors(call(olive, edit("running", link(str(uuid.uuid4())))))] == ["access-denied"]
