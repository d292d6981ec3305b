"""netconf-config-change (RFC 6470) names what changed: the list entry created or deleted, with its
key predicate, or the leaf set; never the container that holds it. Seen by an ncclient
subscriber (create-subscription) and on RESTCONF's stream (the same notification), for edits
made over NETCONF (edit-config merge, replace, delete, remove; copy-config), gNMI Set and
RESTCONF. A switch agent with its twin (its 16 ports in running) and a qkd agent that serves
all three protocols, one of each for the module."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import grpc
import pytest
import requests
from agent_processes import AgentProcess, free_port
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from lxml import etree
from qstrata.bindings.paths import gnmi_string_to_path

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
SW_NS = "http://www.polatis.com/yang/optical-switch"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
PORTS = "/optical-switch:port-config/port"
QKD = "etsi-qkd-sdn-node:qkd_node"
YJ = "application/yang-data+json"


def serving_all(agent, kind: str, name: str, *, twin: bool) -> AgentProcess:
    process = agent(kind, name, twin=twin,
                    extra_args=("--restconf-port", str(free_port()), "--gnmi-port", str(free_port())))
    deadline = time.monotonic() + 20
    while "restconf" not in process.credentials:
        assert time.monotonic() < deadline, "no RESTCONF URL in credentials.json"
        time.sleep(0.05)
    return process


@pytest.fixture(scope="module")
def switch(agent) -> AgentProcess:
    return serving_all(agent, "switch", "sw1", twin=True)


@pytest.fixture(scope="module")
def qkd(agent) -> AgentProcess:
    return serving_all(agent, "qkd", "chg", twin=False)


def subscribed(connect, agent: AgentProcess):
    m = connect(agent)
    m.create_subscription()
    return m


def next_edits(m) -> list[tuple[str, str]]:
    """The (target, operation) pairs of the next netconf-config-change."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        note = m.take_notification(timeout=max(0.01, deadline - time.monotonic()))
        if note is None:
            break
        xml = note.notification_xml
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
        change = root.find(f"{{{NCN}}}netconf-config-change")
        if change is not None:
            return [(e.findtext(f"{{{NCN}}}target"), e.findtext(f"{{{NCN}}}operation"))
                    for e in change.iterfind(f"{{{NCN}}}edit")]
    raise AssertionError("no netconf-config-change within 5 s")


def port(i: int) -> str:
    return f"{PORTS}[port-id='{i}']"


def config(top: str, namespace: str, body: str) -> str:
    return f'<config xmlns="{NC}" xmlns:nc="{NC}"><{top} xmlns="{namespace}">{body}</{top}></config>'


def sw_config(body: str) -> str:
    return config("port-config", SW_NS, body)


# ---------------------------------------------------------------------------- NETCONF, switch


def test_deleting_or_removing_one_port_names_that_port(switch, connect) -> None:
    sub, m = subscribed(connect, switch), connect(switch)
    m.edit_config(target="running", config=sw_config('<port nc:operation="delete"><port-id>4</port-id></port>'))
    assert next_edits(sub) == [(port(4), "delete")]
    m.edit_config(target="running", config=sw_config('<port nc:operation="remove"><port-id>3</port-id></port>'))
    assert next_edits(sub) == [(port(3), "delete")]


def test_merging_one_leaf_names_that_leaf(switch, connect) -> None:
    sub, m = subscribed(connect, switch), connect(switch)
    m.edit_config(target="running", config=sw_config("<port><port-id>6</port-id><label>east</label></port>"))
    assert next_edits(sub) == [(f"{port(6)}/label", "create")]
    m.edit_config(target="running", config=sw_config("<port><port-id>6</port-id><label>west</label></port>"))
    assert next_edits(sub) == [(f"{port(6)}/label", "replace")]


def test_replacing_the_container_with_one_entry_changed_names_that_leaf(switch, connect) -> None:
    sub, m = subscribed(connect, switch), connect(switch)
    data = m.get_config(source="running", filter=("subtree", f'<port-config xmlns="{SW_NS}"/>')).data_ele
    ports = data.find(f"{{{SW_NS}}}port-config")
    seven = ports.xpath("s:port[s:port-id='7']", namespaces={"s": SW_NS})[0]
    etree.SubElement(seven, f"{{{SW_NS}}}label").text = "spare"
    ports.set(f"{{{NC}}}operation", "replace")
    config = etree.Element(f"{{{NC}}}config", nsmap={"nc": NC})
    config.append(ports)
    m.edit_config(target="running", config=etree.tostring(config).decode())
    assert next_edits(sub) == [(f"{port(7)}/label", "create")]


def test_copy_config_and_commit_name_the_entry(switch, connect) -> None:
    sub, m = subscribed(connect, switch), connect(switch)
    m.copy_config(source="running", target="candidate")
    m.edit_config(target="candidate", config=sw_config('<port nc:operation="delete"><port-id>8</port-id></port>'))
    m.copy_config(source="candidate", target="running")
    assert next_edits(sub) == [(port(8), "delete")]
    m.edit_config(target="candidate", config=sw_config('<port nc:operation="delete"><port-id>10</port-id></port>'))
    m.commit()
    assert next_edits(sub) == [(port(10), "delete")]


# ---------------------------------------------------------------------------- NETCONF, QKD node


def qkd_config(body: str) -> str:
    return config("qkd_node", QKD_NS, body)


def link_path(qkdl_id: str) -> str:
    return f"/{QKD}/qkd_links/qkd_link[qkdl_id='{qkdl_id}']"


def test_one_qkd_interface_and_one_link_are_named_with_their_keys(qkd, connect) -> None:
    sub, m = subscribed(connect, qkd), connect(qkd)
    links = [str(uuid.uuid4()) for _ in range(2)]
    m.edit_config(target="running", config=qkd_config(
        "<qkd_interfaces>" + "".join(f"<qkd_interface><qkdi_id>{i}</qkdi_id></qkd_interface>" for i in (1, 2))
        + "</qkd_interfaces><qkd_links>" + "".join(f"<qkd_link><qkdl_id>{i}</qkdl_id></qkd_link>" for i in links)
        + "</qkd_links>"))
    created = next_edits(sub)
    assert sorted(created) == sorted([(f"/{QKD}/qkd_interfaces/qkd_interface[qkdi_id='{i}']", "create") for i in (1, 2)]
                                     + [(link_path(i), "create") for i in links])
    m.edit_config(target="running", config=qkd_config(
        '<qkd_interfaces><qkd_interface nc:operation="delete"><qkdi_id>2</qkdi_id></qkd_interface></qkd_interfaces>'))
    assert next_edits(sub) == [(f"/{QKD}/qkd_interfaces/qkd_interface[qkdi_id='2']", "delete")]
    m.edit_config(target="running", config=qkd_config(  # the last one: still that entry, not qkd_interfaces
        '<qkd_interfaces><qkd_interface nc:operation="remove"><qkdi_id>1</qkdi_id></qkd_interface></qkd_interfaces>'))
    assert next_edits(sub) == [(f"/{QKD}/qkd_interfaces/qkd_interface[qkdi_id='1']", "delete")]
    m.edit_config(target="running", config=qkd_config(
        f'<qkd_links><qkd_link nc:operation="delete"><qkdl_id>{links[1]}</qkdl_id></qkd_link></qkd_links>'))
    assert next_edits(sub) == [(link_path(links[1]), "delete")]
    new = str(uuid.uuid4())  # one more beside the one left: that entry, not qkd_links
    m.edit_config(target="running", config=qkd_config(f"<qkd_links><qkd_link><qkdl_id>{new}</qkdl_id></qkd_link>"
                                                      "</qkd_links>"))
    assert next_edits(sub) == [(link_path(new), "create")]


# ---------------------------------------------------------------------------- gNMI Set, RESTCONF


class Gnmi:
    """gNMI Set on an agent's TLS port, as its admin."""

    def __init__(self, agent: AgentProcess) -> None:
        creds = agent.credentials
        self.auth = [("username", creds["username"]), ("password", creds["password"])]
        port = agent.command[agent.command.index("--gnmi-port") + 1]
        self.channel = grpc.secure_channel(f"127.0.0.1:{port}",
                                           grpc.ssl_channel_credentials(Path(creds["ca"]).read_bytes()))
        self.stub = gnmi_pb2_grpc.gNMIStub(self.channel)

    def set(self, **request) -> None:
        self.stub.Set(gnmi_pb2.SetRequest(**request), metadata=self.auth, timeout=10)

    def update(self, path: str, value: dict) -> None:
        self.set(update=[gnmi_pb2.Update(path=gnmi_string_to_path(path),
                                         val=gnmi_pb2.TypedValue(json_ietf_val=json.dumps(value).encode()))])


def test_gnmi_set_names_the_entry(switch, qkd, connect) -> None:
    sub, gnmi = subscribed(connect, qkd), Gnmi(qkd)
    qkdl_id = str(uuid.uuid4())
    try:
        gnmi.update(f"/{QKD}/qkd_links/qkd_link[qkdl_id={qkdl_id}]", {"qkdl_id": qkdl_id})
        assert next_edits(sub) == [(link_path(qkdl_id), "create")]
        gnmi.set(delete=[gnmi_string_to_path(f"/{QKD}/qkd_links/qkd_link[qkdl_id={qkdl_id}]")])
        assert next_edits(sub) == [(link_path(qkdl_id), "delete")]
    finally:
        gnmi.channel.close()
    sub, gnmi = subscribed(connect, switch), Gnmi(switch)
    try:
        gnmi.update(f"{PORTS}[port-id=12]/label", {"optical-switch:label": "north"})
        assert next_edits(sub) == [(f"{port(12)}/label", "create")]
        gnmi.set(delete=[gnmi_string_to_path(f"{PORTS}[port-id=12]")])
        assert next_edits(sub) == [(port(12), "delete")]
    finally:
        gnmi.channel.close()


def sse_edits(lines) -> list[tuple[str, str]]:
    """The (target, operation) pairs of the next netconf-config-change on an event stream."""
    data: list[str] = []
    for line in lines:  # the request's read timeout ends a wait for an event that never comes
        if line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            event = json.loads("\n".join(data))["ietf-restconf:notification"]
            data = []
            change = event.get("ietf-netconf-notifications:netconf-config-change")
            if change is not None:
                return [(e["target"], e["operation"]) for e in change["edit"]]
    raise AssertionError("the stream ended")


class Restconf:
    """RESTCONF as the agent's admin; `edits()` reads the next config change on its stream."""

    def __init__(self, agent: AgentProcess) -> None:
        creds = agent.credentials
        self.http = requests.Session()  # verify on each request: a session's loses to REQUESTS_CA_BUNDLE
        self.http.auth = (creds["username"], creds["password"])
        self.ca = creds["ca"]
        url = creds["restconf"].rstrip("/")
        self.base = url if url.endswith("/restconf") else url + "/restconf"
        self.stream = self("GET", "/streams/NETCONF/json", stream=True, headers={"Accept": "text/event-stream"})
        assert self.stream.status_code == 200
        self.lines = self.stream.iter_lines(decode_unicode=True)

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, self.base + path, verify=self.ca, timeout=10, **kw)

    def edits(self) -> list[tuple[str, str]]:
        return sse_edits(self.lines)

    def close(self) -> None:
        self.stream.close()
        self.http.close()


def test_restconf_edits_on_the_stream_name_the_entry(switch, qkd) -> None:
    rc = Restconf(qkd)
    try:
        qkdl_id = str(uuid.uuid4())
        body = json.dumps({"etsi-qkd-sdn-node:qkd_link": [{"qkdl_id": qkdl_id}]})
        posted = rc("POST", f"/data/{QKD}/qkd_links", data=body, headers={"Content-Type": YJ})
        assert posted.status_code == 201, posted.text
        assert rc.edits() == [(link_path(qkdl_id), "create")]
        gone = rc("DELETE", f"/data/{QKD}/qkd_links/qkd_link={qkdl_id}")
        assert gone.status_code == 204, gone.text
        assert rc.edits() == [(link_path(qkdl_id), "delete")]
    finally:
        rc.close()
    rc = Restconf(switch)
    try:
        entry = rc("GET", "/data/optical-switch:port-config/port=13?content=config", headers={"Accept": YJ}).json()
        entry["optical-switch:port"][0]["label"] = "south"  # the entry as it is, one leaf more
        put = rc("PUT", "/data/optical-switch:port-config/port=13", headers={"Content-Type": YJ},
                 data=json.dumps(entry))
        assert put.status_code == 204, put.text
        assert rc.edits() == [(f"{port(13)}/label", "replace")]
        patched = rc("PATCH", "/data/optical-switch:port-config", headers={"Content-Type": YJ},
                     data=json.dumps({"optical-switch:port-config": {"port": [{"port-id": 13, "label": "up"}]}}))
        assert patched.status_code == 204, patched.text
        assert rc.edits() == [(f"{port(13)}/label", "replace")]
        gone = rc("DELETE", "/data/optical-switch:port-config/port=14")
        assert gone.status_code == 204, gone.text
        assert rc.edits() == [(port(14), "delete")]
    finally:
        rc.close()
