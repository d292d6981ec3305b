"""The RESTCONF side of the conformance kit without a server: the judge of an HTTP answer (status,
ietf-restconf:errors and RFC 8040 section 7's status for each error-tag, YANG Patch status, media
type, headers, JSON/XML paths), request templates, host-meta, and that every RC- template fills for
every profile."""

from __future__ import annotations

import json
from string import Template

import pytest
from lxml import etree
from qstrata.agents.conform.model import REGISTRY, RcExpect, Verdict
from qstrata.agents.conform.rc_checks import RC_PROFILES
from qstrata.agents.conform.rc_runner import (
    Answer,
    evaluate,
    host_meta_root,
    json_has,
    parse_request,
    xml_has,
)

J = "application/yang-data+json"


def answer(status: int, body: object = None, media: str = J, **headers: str) -> Answer:
    text = body if isinstance(body, str) else (json.dumps(body) if body is not None else "")
    h = {"content-type": media} if text else {}
    return Answer(status, h | {k.replace("_", "-"): v for k, v in headers.items()}, text)


def errors(tag: str, etype: str = "protocol", path: str | None = None) -> dict:
    e = {"error-type": etype, "error-tag": tag} | ({"error-path": path} if path else {})
    return {"ietf-restconf:errors": {"error": [e]}}


NODE = {"etsi-qkd-sdn-node:qkd_node": {"qkdn_id": "n1", "qkd_links": {"qkd_link": [
    {"qkdl_id": "k1", "virt_bandwidth": 2000, "qkdl_type": "etsi-qkd-node-types:VIRT", "qkdl_enable": False}]}}}


@pytest.mark.parametrize(("expect", "got", "verdict"), [
    (RcExpect(), answer(200, NODE), Verdict.PASS),
    (RcExpect(), answer(404, errors("invalid-value")), Verdict.FAIL),
    (RcExpect((201,), headers=("location",)), answer(201, location="/x"), Verdict.PASS),
    (RcExpect((201,), headers=("location",)), answer(201), Verdict.FAIL),
    (RcExpect(media=J), answer(200, NODE, media="application/json"), Verdict.FAIL),
    (RcExpect((404,), tags=("invalid-value",)), answer(404, errors("invalid-value")), Verdict.PASS),
    (RcExpect((409,), tags=("data-exists",)), answer(409, errors("data-missing")), Verdict.FAIL),
    # RFC 8040 section 7: data-exists is sent with 409, not 400
    (RcExpect((400,), tags=("data-exists",)), answer(400, errors("data-exists")), Verdict.FAIL),
    (RcExpect((400,)), answer(400, errors("no-such-tag")), Verdict.FAIL),
    (RcExpect((400,)), answer(400, {"error": "bad"}), Verdict.FAIL),  # not ietf-restconf:errors
    (RcExpect((400,)), answer(400, errors("invalid-value", etype="wrong")), Verdict.FAIL),
    (RcExpect((400,), error_path="qkd_link"),
     answer(400, errors("invalid-value", path="/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='1']")),
     Verdict.PASS),
    (RcExpect((400,), error_path="qkd_link"), answer(400, errors("invalid-value", path="/x:qkd_node")), Verdict.FAIL),
    (RcExpect((304,), no_body=True), answer(304), Verdict.PASS),
    (RcExpect((204,), no_body=True), answer(204, "{}"), Verdict.FAIL),
    (RcExpect(present=("etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id=k1]/virt_bandwidth=2000",)),
     answer(200, NODE), Verdict.PASS),
    (RcExpect(present=("etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id=k2]",)), answer(200, NODE),
     Verdict.FAIL),
    (RcExpect(absent=("qkd_node",)), answer(200, NODE), Verdict.PASS),  # RFC 7951 4: qualified at the top
    (RcExpect(absent=("qkd_node",)), answer(200, {"qkd_node": {}}), Verdict.FAIL),
    (RcExpect((409,), tags=("data-exists",), yang_patch=True),
     answer(409, {"ietf-yang-patch:yang-patch-status": {"patch-id": "p", "edit-status": {"edit": [
         {"edit-id": "e2", "errors": {"error": [{"error-type": "application", "error-tag": "data-exists"}]}}]}}}),
     Verdict.PASS),
    (RcExpect((409,), yang_patch=True), answer(409, errors("data-exists")), Verdict.FAIL),
    (RcExpect(), Answer(0, error="ClientConnectorError"), Verdict.ERROR),
])
def test_expectations(expect, got, verdict):
    assert evaluate(expect, got).verdict is verdict


def test_paths_in_json_and_xml():
    assert json_has(NODE, "etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id=k1]/qkdl_enable=false")
    assert json_has({"ietf-yang-patch:yang-patch-status": {"ok": [None]}}, "ietf-yang-patch:yang-patch-status/ok")
    assert not json_has(NODE, "etsi-qkd-sdn-node:qkd_node/qkd_link")
    root = etree.fromstring(b'<qkd_node xmlns="urn:e"><qkdn_id>n1</qkdn_id><qkd_links><qkd_link><qkdl_id>k1</qkdl_id>'
                            b'<qkdl_type xmlns:t="urn:t">t:VIRT</qkdl_type></qkd_link></qkd_links></qkd_node>')
    assert xml_has(root, "etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id=k1]/qkdl_type=etsi-qkd-node-types:VIRT")
    assert not xml_has(root, "qkd_node/qkd_links/qkd_link[qkdl_id=k2]")


def test_requests_as_written_and_host_meta():
    req = parse_request('PUT /restconf/data/m:x\nContent-Type: application/yang-data+json\nIf-Match: "e"\n\n{"a": 1}')
    assert (req.method, req.target, dict(req.headers), req.body) == (
        "PUT", "/restconf/data/m:x", {"Content-Type": "application/yang-data+json", "If-Match": '"e"'}, '{"a": 1}')
    assert parse_request("DELETE /x").body is None
    xrd = '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0"><Link rel="restconf" href="/top/restconf/"/></XRD>'
    assert host_meta_root(xrd) == "/top/restconf" and host_meta_root("<XRD/>") is None and host_meta_root("<") is None


def test_every_rc_template_fills_for_every_profile():
    rc = [c for c in REGISTRY.values() if c.protocol == "restconf"]
    assert len(rc) >= 50 and all(c.clause.startswith(("RFC 8040", "RFC 8072", "RFC 7951")) for c in rc)
    carried = {"etag": '"1"', "last_modified": "x", "location": "/l", "big": "a"}
    for name, profile in RC_PROFILES.items():
        values = profile.values(name, "/restconf") | {"restconf": "/restconf", "data": "/restconf/data",
                                                     "operations": "/restconf/operations"} | carried
        for c in rc:
            if c.step in ("stream",):
                continue
            for text in (c.send, *c.setup, *c.cleanup, *(t for t, _ in c.then)):
                filled = Template(text).substitute(values)
                body = parse_request(filled).body
                if body and "Content-Type: application/yang" in filled and "json" in filled.split("\n\n")[0] \
                        and c.id not in ("RC-HOST-002", "RC-HOST-003"):
                    json.loads(body)  # every JSON body a check sends is JSON (but the hostile ones)


def test_the_etsi_values_are_rfc_7951():
    v = RC_PROFILES["etsi-qkd-015"].values("etsi-qkd-015", "/restconf")
    e1 = json.loads(v["E1"])["etsi-qkd-sdn-node:qkd_link"][0]
    assert e1["qkdl_type"] == "etsi-qkd-node-types:VIRT" and e1["virt_bandwidth"] == 1000
    assert json.loads(v["E1_mod"])["etsi-qkd-sdn-node:qkd_link"][0]["virt_bandwidth"] == 2000  # a number, uint32
    assert v["entry1"] == f"/restconf/data/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link={v['K1']}"
    assert v["entry1_pct"].count("%") == len(v["K1"])
    sw = RC_PROFILES["optical-switch"].values("optical-switch", "/restconf")
    assert json.loads(sw["E1"])["optical-switch:port"][0]["port-id"] == 1
