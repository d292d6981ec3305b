"""RESTCONF writes against one `qstrata agent --restconf-port` process: positions in user-ordered
lists (insert/point, YANG Patch insert/move), NACM for a restricted user, and conditional writes
checked inside their transaction. The last test restarts the agent."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from urllib.parse import quote, urlsplit

import pytest
import requests
from agent_processes import QSTRATA, AgentProcess, restconf_agent, wait_port

QKD = "etsi-qkd-sdn-node:qkd_node"
NACM = "ietf-netconf-acm:nacm"
YJ = "application/yang-data+json"
LIMITED = ("limited", "limited-pass-1")


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    with restconf_agent(tmp_path_factory.mktemp("rc-writes") / "alice") as agent:
        subprocess.run([str(QSTRATA), "user", "add", LIMITED[0], "--group", "limited", "--password-stdin",
                        "--state-dir", str(agent.state_dir)], input=LIMITED[1] + "\n", text=True, check=True,
                       capture_output=True)
        yield agent


def call(agent: AgentProcess, method: str, path: str, body: object = None, *, user: tuple[str, str] | None = None,
         content: str = YJ, headers: dict[str, str] | None = None) -> requests.Response:
    creds = agent.credentials
    return requests.request(method, agent.restconf + path, verify=creds["ca"], timeout=20,
                            auth=user or (creds["username"], creds["password"]),
                            data=json.dumps(body) if body is not None else None,
                            headers={"Accept": YJ, **({"Content-Type": content} if body is not None else {}),
                                     **(headers or {})})


def rule_lists(agent: AgentProcess) -> list[str]:
    r = call(agent, "GET", f"/restconf/data/{NACM}?fields=rule-list(name)")
    assert r.status_code == 200, r.text
    return [e["name"] for e in r.json()[NACM]["rule-list"]]


def point(name: str) -> str:
    return quote(f"/{NACM}/rule-list={name}", safe="")


def new_list(name: str, *rules: dict) -> dict:
    return {"ietf-netconf-acm:rule-list": [{"name": name, "group": [f"group-{name}"], **({"rule": list(rules)}
                                                                                          if rules else {})}]}


# ---------------------------------------------------------------------------- positions


def test_insert_and_point_place_rule_lists(alice):
    defaults = rule_lists(alice)
    assert call(alice, "POST", f"/restconf/data/{NACM}?insert=first", new_list("p-first")).status_code == 201
    r = call(alice, "POST", f"/restconf/data/{NACM}?insert=after&point={point(defaults[0])}", new_list("p-after"))
    assert r.status_code == 201, r.text
    assert call(alice, "POST", f"/restconf/data/{NACM}?insert=last", new_list("p-last")).status_code == 201
    r = call(alice, "PUT", f"/restconf/data/{NACM}/rule-list=p-put?insert=before&point={point('p-first')}",
             new_list("p-put"))
    assert r.status_code == 201, r.text
    assert rule_lists(alice) == ["p-put", "p-first", defaults[0], "p-after", *defaults[1:], "p-last"]
    # a PUT that replaces an entry keeps its place; with insert it moves it
    assert call(alice, "PUT", f"/restconf/data/{NACM}/rule-list=p-after", new_list("p-after")).status_code == 204
    assert rule_lists(alice)[3] == "p-after"
    assert call(alice, "PUT", f"/restconf/data/{NACM}/rule-list=p-after?insert=first",
                new_list("p-after")).status_code == 204
    assert rule_lists(alice)[0] == "p-after"


def test_yang_patch_insert_and_move(alice):
    before = rule_lists(alice)
    patch = {"ietf-yang-patch:yang-patch": {"patch-id": "order", "edit": [
        {"edit-id": "1", "operation": "insert", "target": "/rule-list=y-one", "where": "first",
         "value": new_list("y-one")},
        {"edit-id": "2", "operation": "insert", "target": "/rule-list=y-two", "where": "after",
         "point": "/rule-list=y-one", "value": new_list("y-two")},
        {"edit-id": "3", "operation": "move", "target": f"/rule-list={before[-1]}", "where": "before",
         "point": "/rule-list=y-one"}]}}
    r = call(alice, "PATCH", f"/restconf/data/{NACM}", patch, content="application/yang-patch+json")
    assert r.status_code == 200, r.text
    assert rule_lists(alice) == [before[-1], "y-one", "y-two", *before[:-1]]
    # a move whose point does not exist fails as a whole (the insert before it is not applied)
    bad = {"ietf-yang-patch:yang-patch": {"patch-id": "bad", "edit": [
        {"edit-id": "a", "operation": "insert", "target": "/rule-list=y-three", "where": "last",
         "value": new_list("y-three")},
        {"edit-id": "b", "operation": "move", "target": "/rule-list=y-two", "where": "after",
         "point": "/rule-list=no-such-list"}]}}
    r = call(alice, "PATCH", f"/restconf/data/{NACM}", bad, content="application/yang-patch+json")
    assert r.status_code == 400, r.text
    status = r.json()["ietf-yang-patch:yang-patch-status"]
    assert status["edit-status"]["edit"][0]["edit-id"] == "b"
    assert "y-three" not in rule_lists(alice)


def test_insert_where_the_server_orders_is_refused(alice):
    """qkd_link is ordered-by system: insert=first names no place, 400 and nothing created."""
    link = "7d1c2b9e-0d4a-4c1e-9b7a-2a9f3e5d7c10"
    body = {"etsi-qkd-sdn-node:qkd_link": [{"qkdl_id": link, "qkdl_type": "etsi-qkd-node-types:VIRT"}]}
    r = call(alice, "POST", f"/restconf/data/{QKD}/qkd_links?insert=first", body)
    assert r.status_code == 400 and r.json()["ietf-restconf:errors"]["error"][0]["error-tag"] == "invalid-value"
    assert call(alice, "GET", f"/restconf/data/{QKD}/qkd_links/qkd_link={link}").status_code == 404
    r = call(alice, "POST", f"/restconf/data/{NACM}?insert=after", new_list("x"))  # after needs a point
    assert r.status_code == 400 and "x" not in rule_lists(alice)


# ---------------------------------------------------------------------------- NACM


def test_nacm_restricted_user(alice):
    """A user whose rule-list denies reading the interfaces and writing the location: the
    interfaces do not exist for them (RFC 8341 s3.2.4), the write is 403 access-denied and changes
    nothing, what the rules permit works."""
    rules = new_list("limited",
                     {"name": "hide-interfaces", "module-name": "etsi-qkd-sdn-node",
                      "path": f"/{QKD}/qkd_interfaces", "access-operations": "read", "action": "deny"},
                     {"name": "keep-location", "module-name": "etsi-qkd-sdn-node",
                      "path": f"/{QKD}/qkdn_location_id", "access-operations": "create update delete",
                      "action": "deny"},
                     {"name": "the-rest", "module-name": "*", "access-operations": "*", "action": "permit"})
    rules["ietf-netconf-acm:rule-list"][0]["group"] = ["limited"]
    assert call(alice, "POST", f"/restconf/data/{NACM}", rules).status_code == 201
    admin_view = call(alice, "GET", f"/restconf/data/{QKD}").json()[QKD]
    assert admin_view["qkd_interfaces"]["qkd_interface"]
    mine = call(alice, "GET", f"/restconf/data/{QKD}", user=LIMITED)
    assert mine.status_code == 200 and "qkd_interfaces" not in mine.json()[QKD] and "qkdn_id" in mine.json()[QKD]
    assert call(alice, "GET", f"/restconf/data/{QKD}/qkd_interfaces", user=LIMITED).status_code == 404
    location = admin_view["qkdn_location_id"]
    for method, path, body, content in (
            ("PATCH", f"/restconf/data/{QKD}", {QKD: {"qkdn_location_id": "moved"}}, YJ),
            ("PUT", f"/restconf/data/{QKD}/qkdn_location_id", {f"{QKD.split(':')[0]}:qkdn_location_id": "moved"}, YJ),
            ("DELETE", f"/restconf/data/{QKD}/qkdn_location_id", None, YJ),
            ("PATCH", f"/restconf/data/{QKD}", {"ietf-yang-patch:yang-patch": {"patch-id": "p", "edit": [
                {"edit-id": "ok", "operation": "merge", "target": "/qkdn_capabilities",
                 "value": {"etsi-qkd-sdn-node:qkdn_capabilities": {"link_stats_support": False}}},
                {"edit-id": "no", "operation": "replace", "target": "/qkdn_location_id",
                 "value": {"etsi-qkd-sdn-node:qkdn_location_id": "moved"}}]}}, "application/yang-patch+json")):
        r = call(alice, method, path, body, user=LIMITED, content=content)
        assert r.status_code == 403, (method, r.text)
        assert "access-denied" in r.text, r.text
    after = call(alice, "GET", f"/restconf/data/{QKD}").json()[QKD]
    assert after["qkdn_location_id"] == location
    assert after["qkdn_capabilities"] == admin_view["qkdn_capabilities"], "the permitted edit of the patch applied"
    link = "5e1c2b9e-0d4a-4c1e-9b7a-2a9f3e5d7c10"
    body = {"etsi-qkd-sdn-node:qkd_link": [{"qkdl_id": link, "qkdl_type": "etsi-qkd-node-types:VIRT"}]}
    assert call(alice, "POST", f"/restconf/data/{QKD}/qkd_links", body, user=LIMITED).status_code == 201


# ---------------------------------------------------------------------------- conditional writes


def test_if_match_is_checked_in_the_transaction(alice):
    """Sixteen clients read the same entity-tag and each PUT with If-Match at once: whichever
    commits first changes the tag, so exactly one may succeed and every other gets 412. Bodies
    over 256 KiB (a long location) are parsed in a worker thread, so the requests interleave
    between reading their conditions and editing: a check made before the transaction took the
    datastore let several through."""
    path = f"/restconf/data/{QKD}/qkdn_location_id"
    etag = call(alice, "GET", path).headers["ETag"]
    results: list[int] = []
    start = threading.Barrier(16)

    def put(i: int) -> None:
        body = {"etsi-qkd-sdn-node:qkdn_location_id": f"racer {i} " + "x" * 300_000}
        start.wait()
        results.append(call(alice, "PUT", path, body, headers={"If-Match": etag}).status_code)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [204] + [412] * 15, results


# ---------------------------------------------------------------------------- request bodies


def _post_in_pieces(agent: AgentProcess, path: str, body: bytes, pieces: list[tuple[bytes, float]]) -> tuple[bytes, float]:
    """POST `body`'s length announced, then `pieces` (bytes, pause before them) over raw TLS:
    (the answer's head and body, seconds from the last piece to the answer)."""
    creds = agent.credentials
    url = urlsplit(agent.restconf)
    auth = requests.auth._basic_auth_str(creds["username"], creds["password"])
    context = ssl.create_default_context(cafile=creds["ca"])
    with socket.create_connection((url.hostname, url.port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=url.hostname) as tls:
        tls.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: {auth}\r\n"
                    f"Content-Type: {YJ}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for piece, pause in pieces:
            time.sleep(pause)
            tls.sendall(piece)
        sent = time.monotonic()
        answer = b""
        while not _complete(answer):
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer, time.monotonic() - sent


def _complete(answer: bytes) -> bool:
    head, blank, body = answer.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return bool(blank) and len(body) >= (lengths[0] if lengths else 0)


def test_a_body_in_pieces_is_read_whole_and_a_stalled_one_refused(alice):
    """The body is read under the agent's body timeout (BODY_TIMEOUT_S, 10 s): a body that comes
    in two pieces is waited for and created; one that stops half-way is refused with a 400 once
    the timeout has passed, and creates nothing."""
    name = "body-pieces"
    body = json.dumps(new_list(name)).encode()
    answer, _ = _post_in_pieces(alice, f"/restconf/data/{NACM}", body, [(body[:10], 0), (body[10:], 0.3)])
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert name in rule_lists(alice)
    stalled = json.dumps(new_list("body-stalled")).encode()
    answer, waited = _post_in_pieces(alice, f"/restconf/data/{NACM}", stalled, [(stalled[:10], 0)])
    assert answer.startswith(b"HTTP/1.1 400 ") and b"the request body did not arrive within 10 s" in answer, answer
    assert 9.5 <= waited < 13, waited
    assert "body-stalled" not in rule_lists(alice)


# ---------------------------------------------------------------------------- persistence (last: restarts)


def test_positions_survive_a_restart(alice):
    order = rule_lists(alice)
    alice.stop()
    alice.start()
    assert wait_port(int(alice.restconf.rsplit(":", 1)[1]))
    assert rule_lists(alice) == order
