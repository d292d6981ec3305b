"""RESTCONF (RFC 8040) against a `qstrata agent --restconf-port` process, with curl and requests:
discovery, every method and query parameter, media types, ETag round trips, YANG Patch, the SSE
stream against NETCONF edits (and RESTCONF edits seen by NETCONF and gNMI), hostile input."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import requests
from agent_processes import AgentProcess, free_port
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from qstrata.bindings.paths import gnmi_string_to_path

QKD = "etsi-qkd-sdn-node:qkd_node"
YJ, YX = "application/yang-data+json", "application/yang-data+xml"
LINK = "3f1c2b9e-0d4a-4c1e-9b7a-2a9f3e5d7c10"


class Rc:
    def __init__(self, agent: AgentProcess, port: int, gnmi_port: int) -> None:
        self.agent, self.gnmi_port = agent, gnmi_port
        creds = agent.credentials
        self.url = f"https://127.0.0.1:{port}"
        self.ca = creds["ca"]
        self.auth = (creds["username"], creds["password"])
        self.http = requests.Session()
        self.http.verify, self.http.auth = self.ca, self.auth

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("verify", self.ca)  # a session's verify loses to REQUESTS_CA_BUNDLE (requests #3829)
        kw.setdefault("timeout", 20)
        return self.http.request(method, self.url + path, **kw)

    def curl(self, *args: str) -> tuple[int, dict[str, str], str]:
        done = subprocess.run(["curl", "-sS", "-i", "--cacert", self.ca, "-u", ":".join(self.auth), *args],
                              capture_output=True, text=True, timeout=30)
        head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
        lines = head.split("\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    def running(self) -> str:
        return self("GET", f"/restconf/data/{QKD}?content=config", headers={"Accept": YJ}).text


@pytest.fixture(scope="module")
def rc(agent) -> Rc:
    port, gnmi_port = free_port(), free_port()
    process = agent("qkd", "alice", extra_args=("--restconf-port", str(port), "--gnmi-port", str(gnmi_port)))
    deadline = time.monotonic() + 20
    while "restconf" not in process.credentials:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return Rc(process, port, gnmi_port)


def _errors(response: requests.Response) -> list[dict]:
    assert response.headers["Content-Type"].startswith(YJ), response.headers
    return response.json()["ietf-restconf:errors"]["error"]


# ---------------------------------------------------------------------------- discovery and reads


def test_discovery(rc: Rc) -> None:
    meta = rc("GET", "/.well-known/host-meta")
    assert meta.status_code == 200 and "rel='restconf' href='/restconf'" in meta.text
    root = rc("GET", "/restconf", headers={"Accept": YJ}).json()["ietf-restconf:restconf"]
    assert root["yang-library-version"] == "2019-01-04"
    assert "<yang-library-version" in rc("GET", "/restconf", headers={"Accept": YX}).text
    state = rc("GET", "/restconf/data/ietf-restconf-monitoring:restconf-state", headers={"Accept": YJ}).json()
    state = state["ietf-restconf-monitoring:restconf-state"]
    assert "urn:ietf:params:restconf:capability:depth:1.0" in state["capabilities"]["capability"]
    locations = {a["encoding"]: a["location"] for a in state["streams"]["stream"][0]["access"]}
    assert locations == {"json": f"{rc.url}/restconf/streams/NETCONF/json",
                         "xml": f"{rc.url}/restconf/streams/NETCONF/xml"}
    library = rc("GET", "/restconf/data/ietf-yang-library:yang-library", headers={"Accept": YJ}).json()
    names = {m["name"] for m in library["ietf-yang-library:yang-library"]["module-set"][0]["module"]}
    assert "etsi-qkd-sdn-node" in names
    caps = rc("GET", "/restconf/data/ietf-restconf-monitoring:restconf-state/capabilities", headers={"Accept": YJ})
    assert set(caps.json()) == {"ietf-restconf-monitoring:capabilities"}  # the target resource, not its parent
    entry = rc("GET", "/restconf/data/ietf-restconf-monitoring:restconf-state/streams/stream=NETCONF/access=xml",
               headers={"Accept": YJ}).json()
    assert entry == {"ietf-restconf-monitoring:access": [{"encoding": "xml", "location": locations["xml"]}]}


def test_operations(rc: Rc) -> None:
    """The operations resource lists what something here implements (nothing: the modules' RPCs
    have no device behind them); NETCONF's own operations are not RESTCONF operations."""
    assert rc("GET", "/restconf/operations", headers={"Accept": YJ}).json() == {"ietf-restconf:operations": {}}
    for name in ("ietf-netconf:get-config", "ietf-netconf-nmda:get-data"):
        r = rc("POST", f"/restconf/operations/{name}", headers={"Accept": YJ, "Content-Type": YJ}, data="{}")
        assert r.status_code == 501 and "NETCONF protocol operation" in _errors(r)[0]["error-message"], r.text
        assert _errors(r)[0]["error-tag"] == "operation-not-supported"
    assert rc("POST", "/restconf/operations/ietf-netconf:no-such-rpc", headers={"Accept": YJ}).status_code == 404


def test_media_types_and_the_teraflowsdn_rule(rc: Rc) -> None:
    strict = rc("GET", f"/restconf/data/{QKD}", headers={"Accept": YJ})
    assert strict.headers["Content-Type"] == YJ and QKD in strict.json()
    assert strict.json()[QKD]["qkdn_status"].startswith("etsi-qkd-node-types:")
    xml = rc("GET", f"/restconf/data/{QKD}/qkdn_id", headers={"Accept": YX})
    assert xml.headers["Content-Type"] == YX and xml.text.startswith('<qkdn_id xmlns="urn:etsi:qkd:yang:etsi-qkd-node">')
    plain = rc("GET", f"/restconf/data/{QKD}/", headers={"Accept": "*/*"})  # TeraFlowSDN: */*, trailing /
    assert plain.headers["Content-Type"] == "application/json"
    assert ":" not in plain.json()["qkdn_status"]  # the node unwrapped (README, TeraFlowSDN)
    assert rc("GET", f"/restconf/data/{QKD}", headers={"Accept": "text/html"}).status_code == 406
    assert rc("GET", f"/restconf/data/{QKD}", headers={"Accept": "text/html, application/yang-data+xml;q=0.5"}
              ).headers["Content-Type"] == YX


def test_query_parameters(rc: Rc) -> None:
    def get(query: str) -> dict:
        response = rc("GET", f"/restconf/data/{QKD}?{query}", headers={"Accept": YJ})
        assert response.status_code == 200, response.text
        return response.json()[QKD]

    shallow = get("depth=1")
    assert shallow == {}
    two = get("depth=2")
    assert "qkdn_id" in two and two["qkdn_capabilities"] == {}
    assert set(get("fields=qkdn_id;qkdn_capabilities(link_stats_support)")) == {"qkdn_id", "qkdn_capabilities"}
    config = get("content=config")
    assert "qkdn_status" not in config and "qkdn_id" in config
    state = get("content=nonconfig")
    assert "qkdn_status" in state and "qkdn_location_id" not in state
    whole = rc("GET", "/restconf/data?depth=2", headers={"Accept": YJ}).json()
    assert QKD in whole["ietf-restconf:data"]
    for bad in ("depth=0", "depth=abc", "content=some", "with-defaults=all", "fields=(", "bogus=1",
                "depth=1&depth=2", "insert=first"):
        response = rc("GET", f"/restconf/data/{QKD}?{bad}", headers={"Accept": YJ})
        assert response.status_code == 400, bad
        assert _errors(response)[0]["error-tag"] in ("invalid-value", "unknown-attribute"), bad


def test_head_and_options(rc: Rc) -> None:
    get = rc("GET", f"/restconf/data/{QKD}/qkdn_id", headers={"Accept": YJ})
    head = rc("HEAD", f"/restconf/data/{QKD}/qkdn_id", headers={"Accept": YJ})
    assert head.status_code == 200 and head.content == b"" and head.headers["ETag"] == get.headers["ETag"]
    options = rc("OPTIONS", f"/restconf/data/{QKD}")
    assert options.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    assert "application/yang-patch+json" in options.headers["Accept-Patch"]
    assert rc("OPTIONS", f"/restconf/data/{QKD}/qkdn_status").headers["Allow"] == "GET, HEAD, OPTIONS"
    refused = rc("PUT", f"/restconf/data/{QKD}/qkdn_status", data=b'{"etsi-qkd-sdn-node:qkdn_status": "x"}',
                 headers={"Content-Type": YJ})
    assert refused.status_code == 405


# ---------------------------------------------------------------------------- writes


def _link(enable: bool | None = None) -> dict:
    entry = {"qkdl_id": LINK, "qkdl_type": "etsi-qkd-node-types:PHYS",
             "qkdl_local": {"qkdn_id": "82b81fe7-ec93-5286-bb8a-2941f6eeca1b", "qkdi_id": 1}}
    if enable is not None:
        entry["qkdl_enable"] = enable
    return {"etsi-qkd-sdn-node:qkd_link": [entry]}


def test_every_method_with_curl(rc: Rc) -> None:
    links = f"{rc.url}/restconf/data/{QKD}/qkd_links"
    status, headers, _ = rc.curl("-X", "POST", "-H", f"Content-Type: {YJ}", "-d", json.dumps(_link()), links)
    assert status == 201 and headers["location"] == f"{links}/qkd_link={LINK}" and headers["etag"]
    status, _, body = rc.curl("-H", f"Accept: {YJ}", headers["location"] + "/qkdl_enable?with-defaults=report-all")
    assert status == 200 and json.loads(body) == {"etsi-qkd-sdn-node:qkdl_enable": True}
    status, _, body = rc.curl("-X", "POST", "-H", f"Content-Type: {YJ}", "-d", json.dumps(_link()), links)
    assert status == 409 and json.loads(body)["ietf-restconf:errors"]["error"][0]["error-tag"] == "data-exists"
    status, _, _ = rc.curl("-X", "PUT", "-H", f"Content-Type: {YJ}", "-d", json.dumps(_link(False)),
                           f"{links}/qkd_link={LINK}")
    assert status == 204
    status, _, _ = rc.curl("-X", "PATCH", "-H", f"Content-Type: {YX}", "-H", f"Accept: {YJ}", "-d",
                           f'<qkd_link xmlns="urn:etsi:qkd:yang:etsi-qkd-node"><qkdl_id>{LINK}</qkdl_id>'
                           "<qkdl_remote><qkdi_id>7</qkdi_id></qkdl_remote></qkd_link>", f"{links}/qkd_link={LINK}")
    assert status == 204, _
    entry = rc("GET", f"/restconf/data/{QKD}/qkd_links/qkd_link={LINK}?content=config",
               headers={"Accept": YJ}).json()["etsi-qkd-sdn-node:qkd_link"][0]
    assert entry["qkdl_enable"] is False and entry["qkdl_remote"] == {"qkdi_id": 7}
    status, _, _ = rc.curl("-X", "DELETE", f"{links}/qkd_link={LINK}")
    assert status == 204
    status, _, body = rc.curl("-X", "DELETE", f"{links}/qkd_link={LINK}")
    assert status == 404 and "ietf-restconf:errors" in body
    status, _, _ = rc.curl("-X", "PATCH", "-H", f"Content-Type: {YJ}", "-d", json.dumps(_link()),
                           f"{links}/qkd_link={LINK}")
    assert status == 404, "PATCH never creates"


def test_put_creates_then_replaces(rc: Rc) -> None:
    leaf = f"/restconf/data/{QKD}/qkdn_location_id"
    put = rc("PUT", leaf, data=b'{"etsi-qkd-sdn-node:qkdn_location_id": "Lab B"}', headers={"Content-Type": YJ})
    assert put.status_code in (201, 204)
    again = rc("PUT", leaf, data=b'<qkdn_location_id xmlns="urn:etsi:qkd:yang:etsi-qkd-node">Lab C</qkdn_location_id>',
               headers={"Content-Type": YX})
    assert again.status_code == 204
    assert rc("GET", leaf, headers={"Accept": YJ}).json() == {"etsi-qkd-sdn-node:qkdn_location_id": "Lab C"}
    wrong = rc("PUT", leaf, data=b'{"etsi-qkd-sdn-node:qkdn_version": "x"}', headers={"Content-Type": YJ})
    assert wrong.status_code == 400


def test_etag_round_trip(rc: Rc) -> None:
    leaf = f"/restconf/data/{QKD}/qkdn_location_id"
    first = rc("GET", leaf, headers={"Accept": YJ})
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert rc("GET", leaf, headers={"Accept": YJ, "If-None-Match": etag}).status_code == 304
    body = b'{"etsi-qkd-sdn-node:qkdn_location_id": "Lab D"}'
    stale = rc("PUT", leaf, data=body, headers={"Content-Type": YJ, "If-Match": '"not-it"'})
    assert stale.status_code == 412 and _errors(stale)[0]["error-tag"] == "operation-failed"
    assert rc("GET", leaf, headers={"Accept": YJ}).headers["ETag"] == etag, "a failed precondition changes nothing"
    ok = rc("PUT", leaf, data=body, headers={"Content-Type": YJ, "If-Match": etag})
    assert ok.status_code == 204 and ok.headers["ETag"] != etag
    assert rc("PUT", leaf, data=body, headers={"Content-Type": YJ, "If-Match": etag}).status_code == 412
    assert rc("PUT", leaf, data=body, headers={"Content-Type": YJ, "If-None-Match": "*"}).status_code == 412
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert rc("DELETE", leaf, headers={"If-Unmodified-Since": old}).status_code == 412
    assert rc("GET", leaf, headers={"Accept": YJ, "If-Modified-Since": modified}).status_code in (200, 304)


def test_yang_patch(rc: Rc) -> None:
    patch = {"ietf-yang-patch:yang-patch": {"patch-id": "p1", "edit": [
        {"edit-id": "loc", "operation": "merge", "target": "/qkdn_location_id",
         "value": {"etsi-qkd-sdn-node:qkdn_location_id": "Lab P"}},
        {"edit-id": "link", "operation": "create", "target": f"/qkd_links/qkd_link={LINK}", "value": _link()}]}}
    ok = rc("PATCH", f"/restconf/data/{QKD}", data=json.dumps(patch), headers={"Content-Type": "application/yang-patch+json",
                                                                              "Accept": YJ})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"ietf-yang-patch:yang-patch-status": {"patch-id": "p1", "ok": [None]}}
    before = rc.running()
    patch["ietf-yang-patch:yang-patch"]["patch-id"] = "p2"
    patch["ietf-yang-patch:yang-patch"]["edit"][0]["value"] = {"etsi-qkd-sdn-node:qkdn_location_id": "Lab Q"}
    failed = rc("PATCH", f"/restconf/data/{QKD}", data=json.dumps(patch),
                headers={"Content-Type": "application/yang-patch+json", "Accept": YJ})
    assert failed.status_code == 409
    status = failed.json()["ietf-yang-patch:yang-patch-status"]
    assert status["edit-status"]["edit"][0]["edit-id"] == "link"
    assert status["edit-status"]["edit"][0]["errors"]["error"][0]["error-tag"] == "data-exists"
    assert rc.running() == before, "one transaction: the merge before the failing create is not applied"
    xml = (f'<yang-patch xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-patch"><patch-id>p3</patch-id><edit>'
           f"<edit-id>del</edit-id><operation>delete</operation><target>/qkd_links/qkd_link={LINK}</target>"
           "</edit></yang-patch>")
    done = rc("PATCH", f"/restconf/data/{QKD}", data=xml, headers={"Content-Type": "application/yang-patch+xml",
                                                                   "Accept": YX})
    assert done.status_code == 200 and "<ok/>" in done.text


# ---------------------------------------------------------------------------- events, other front ends


class Sse:
    """An event-stream reader; reads on demand in the test's own thread (a reader thread blocked
    in recv would hold `close` until the server's next keep-alive)."""

    def __init__(self, rc: Rc, query: str = "") -> None:
        self.events: list[dict] = []
        self.response = rc("GET", f"/restconf/streams/NETCONF/json{query}", stream=True,
                           headers={"Accept": "text/event-stream"}, timeout=10)
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"] == "text/event-stream"
        self.lines = self.response.iter_lines(decode_unicode=True)

    def wait_for(self, predicate) -> dict:
        data: list[str] = []
        for line in self.lines:  # a read timeout (10 s) ends a wait for an event that never comes
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                event = json.loads("\n".join(data))["ietf-restconf:notification"]
                self.events.append(event)
                data = []
                if predicate(event):
                    return event
        raise AssertionError(f"the stream ended; events: {self.events}")

    def close(self) -> None:
        self.response.close()


def _config_change_on(path_part: str):
    def predicate(event: dict) -> bool:
        change = event.get("ietf-netconf-notifications:netconf-config-change")
        return change is not None and any(path_part in e["target"] for e in change["edit"])
    return predicate


def test_sse_receives_netconf_edits(rc: Rc, connect) -> None:
    sse = Sse(rc, "?filter=/ietf-netconf-notifications:netconf-config-change")
    try:
        netconf = connect(rc.agent)
        netconf.edit_config(target="running", config='<config><qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node">'
                                                      "<qkdn_location_id>From NETCONF</qkdn_location_id>"
                                                      "</qkd_node></config>")
        event = sse.wait_for(_config_change_on("qkdn_location_id"))
        assert event["eventTime"].endswith("Z")
        assert all("ietf-netconf-notifications:netconf-config-change" in e for e in sse.events), "filter applied"
    finally:
        sse.close()
    replay = Sse(rc, "?start-time=2000-01-01T00:00:00Z")
    try:
        replay.wait_for(_config_change_on("qkdn_location_id"))
    finally:
        replay.close()


def test_restconf_edits_appear_in_netconf_and_gnmi(rc: Rc, connect) -> None:
    put = rc("PUT", f"/restconf/data/{QKD}/qkdn_location_id",
             data=b'{"etsi-qkd-sdn-node:qkdn_location_id": "From RESTCONF"}', headers={"Content-Type": YJ})
    assert put.status_code == 204
    netconf = connect(rc.agent)
    assert "<qkdn_location_id>From RESTCONF</qkdn_location_id>" in netconf.get_config("running").data_xml
    channel = grpc.secure_channel(f"127.0.0.1:{rc.gnmi_port}",
                                  grpc.ssl_channel_credentials(Path(rc.ca).read_bytes()))
    try:
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        reply = stub.Get(gnmi_pb2.GetRequest(path=[gnmi_string_to_path(f"/{QKD}/qkdn_location_id")], encoding=4),
                         metadata=[("username", rc.auth[0]), ("password", rc.auth[1])], timeout=10)
        value = reply.notification[0].update[0].val.json_ietf_val
        assert b"From RESTCONF" in value
    finally:
        channel.close()


# ---------------------------------------------------------------------------- hostile input


def test_hostile_bodies_change_nothing(rc: Rc) -> None:
    before = rc.running()
    leaf = f"/restconf/data/{QKD}/qkdn_location_id"
    cases = [
        (b"{" * 100_000 + b"}" * 100_000, YJ, 400, "malformed-message"),
        (b'{"etsi-qkd-sdn-node:qkdn_location_id": "a", "etsi-qkd-sdn-node:qkdn_location_id": "b"}', YJ, 400,
         "malformed-message"),
        (b'{"etsi-qkd-sdn-node:qkdn_location_id": "a"}', "text/plain", 415, "invalid-value"),
        (b"qkdn_location_id=a", "application/x-www-form-urlencoded", 415, "invalid-value"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><qkdn_location_id '
         b'xmlns="urn:etsi:qkd:yang:etsi-qkd-node">&e;</qkdn_location_id>', YX, 400, "malformed-message"),
        (b'{"etsi-qkd-sdn-node:qkdn_location_id": ', YJ, 400, "malformed-message"),
        (b'{"nope:qkdn_location_id": "a"}', YJ, 400, None),
    ]
    for body, content_type, status, tag in cases:
        response = rc("PUT", leaf, data=body, headers={"Content-Type": content_type, "Accept": YJ})
        assert response.status_code == status, (body[:60], response.text)
        if tag:
            assert _errors(response)[0]["error-tag"] == tag, body[:60]
    big = rc("PUT", leaf, data=b"x" * (16 * 1024 * 1024 + 1), headers={"Content-Type": YJ})
    assert big.status_code == 413 and _errors(big)[0]["error-tag"] == "too-big"
    assert rc.running() == before


def test_hostile_paths(rc: Rc) -> None:
    link = f"/restconf/data/{QKD}/qkd_links/qkd_link"
    for path, status, tag in [
        (f"{link}=a%2Fb,c", 400, "bad-attribute"),         # two key values for one key
        (f"{link}=a%2Fb%2Cc", 400, "invalid-value"),       # one value with / and , : not a uuid
        (f"{link}=3f1c%00", 400, "invalid-value"),
        (link, 400, "missing-attribute"),
        ("/restconf/data/nope:qkd_node", 400, "unknown-namespace"),
        (f"/restconf/data/{QKD}/no_such_node", 400, "unknown-element"),
        ("/restconf/data/qkd_node", 400, "missing-attribute"),
        (f"{link}={LINK[:-1]}0", 404, "invalid-value"),
    ]:
        response = rc("GET", path, headers={"Accept": YJ})
        assert response.status_code == status, (path, response.text)
        assert _errors(response)[0]["error-tag"] == tag, (path, response.text)


def test_slow_clients_do_not_hold_the_server(rc: Rc) -> None:
    context = ssl.create_default_context(cafile=rc.ca)
    port = int(rc.url.rsplit(":", 1)[1])
    slow = []
    for _ in range(40):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
        conn.sendall(b"GET /restconf/data HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        slow.append(conn)
    try:
        started = time.monotonic()
        assert rc("GET", f"/restconf/data/{QKD}/qkdn_id", headers={"Accept": YJ}).status_code == 200
        assert time.monotonic() - started < 2
    finally:
        for conn in slow:
            conn.close()


def test_brute_force_basic_auth_backs_off(rc: Rc) -> None:
    took = []
    session = requests.Session()
    session.verify = rc.ca
    for i in range(8):
        started = time.monotonic()
        response = session.get(f"{rc.url}/restconf/data/{QKD}/qkdn_id", auth=("admin", f"wrong-{i}"), timeout=30,
                               verify=rc.ca)
        took.append(time.monotonic() - started)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
        assert _errors(response)[0]["error-tag"] == "access-denied"
    assert max(took[:5]) < 0.5 and took[-1] >= 0.9, took  # five free failures, then 0.5 s, 1 s, ...
    assert rc("GET", f"/restconf/data/{QKD}/qkdn_id", headers={"Accept": YJ}).status_code == 200, \
        "the logged-in admin is still served"
    anonymous = requests.get(f"{rc.url}/restconf/data/{QKD}/qkdn_id", verify=rc.ca, timeout=10)
    assert anonymous.status_code == 401 and _errors(anonymous)[0]["error-tag"] == "access-denied"
