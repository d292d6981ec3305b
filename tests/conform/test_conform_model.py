"""The conformance kit without a device: expectations evaluated on replies, local-name paths,
error-path suffixes, the registry's invariants (unique ids, clauses, steps that exist, templates
that fill), and the reports."""

from __future__ import annotations

import json
import re

import pytest
from qstrata.agents.conform import gnmi_runner, kme_runner, netconf_runner, rc_runner, report, runner
from qstrata.agents.conform.kme_checks import container_problem, error_problem, judge_refusal, status_problem
from qstrata.agents.conform.kme_runner import Answer
from qstrata.agents.conform.model import REGISTRY, Data, Error, Evidence, KmeExpect, Ok, Result, Verdict
from qstrata.agents.conform.netconf_runner import evaluate, find, path_ends_with
from qstrata.agents.conform.profiles import PROFILES
from qstrata.bindings.wire.netconf_client import Reply

NS = 'xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"'


def reply(body: str):
    return Reply.parse(f'<rpc-reply {NS} message-id="1">{body}</rpc-reply>'.encode())


def rpc_error(tag: str, path: str | None = None, info: str = "", severity: bool = True) -> str:
    p = f'<error-path xmlns:e="urn:e">{path}</error-path>' if path else ""
    sev = "<error-severity>error</error-severity>" if severity else ""
    return f"<rpc-error><error-type>application</error-type><error-tag>{tag}</error-tag>{sev}{p}{info}</rpc-error>"


@pytest.mark.parametrize(("expect", "body", "verdict"), [
    (Ok(), "<ok/>", Verdict.PASS),
    (Ok(), rpc_error("in-use"), Verdict.FAIL),
    (Ok(), "<data/>", Verdict.FAIL),
    (Error(("data-exists",)), rpc_error("data-exists"), Verdict.PASS),
    (Error(("data-exists",)), rpc_error("data-missing"), Verdict.FAIL),
    (Error(("data-exists",)), "<ok/>", Verdict.FAIL),
    (Error(("data-exists",)), rpc_error("data-exists", severity=False), Verdict.FAIL),
    (Error(("data-exists",), path="qkd_link"), rpc_error("data-exists", "/e:qkd_node/e:qkd_links/e:qkd_link[e:qkdl_id='1']"),
     Verdict.PASS),
    (Error(("data-exists",), path="qkd_link"), rpc_error("data-exists", "/e:qkd_node"), Verdict.FAIL),
    (Error(("data-exists",), path="qkd_link"), rpc_error("data-exists"), Verdict.FAIL),
    (Error(("lock-denied",), info="session-id"),
     rpc_error("lock-denied", info="<error-info><session-id>4</session-id></error-info>"), Verdict.PASS),
    (Error(("lock-denied",), info="session-id"), rpc_error("lock-denied"), Verdict.FAIL),
    (Data(present=("qkd_link[qkdl_id=1]/virt_bandwidth=2000",)),
     "<data><qkd_node><qkd_links><qkd_link><qkdl_id>1</qkdl_id><virt_bandwidth>2000</virt_bandwidth></qkd_link>"
     "</qkd_links></qkd_node></data>", Verdict.PASS),
    (Data(present=("qkd_link[qkdl_id=1]/virt_bandwidth=2000",)),
     "<data><qkd_link><qkdl_id>2</qkdl_id><virt_bandwidth>2000</virt_bandwidth></qkd_link></data>", Verdict.FAIL),
    (Data(absent=("qkd_link[qkdl_id=1]",)), "<data><qkd_link><qkdl_id>1</qkdl_id></qkd_link></data>", Verdict.FAIL),
    (Data(absent=("qkd_link[qkdl_id=1]",)), "<data/>", Verdict.PASS),
])
def test_expectations(expect, body, verdict):
    assert evaluate(expect, reply(body)).verdict is verdict


def test_a_reply_that_is_not_xml_or_not_an_rpc_reply_fails():
    assert evaluate(Ok(), Reply.parse(b"<rpc-reply><ok/>")).verdict is Verdict.FAIL
    assert evaluate(Ok(), Reply.parse(f"<hello {NS}/>".encode())).verdict is Verdict.FAIL


def test_paths():
    assert path_ends_with("/a:x/a:y[a:k='1']/a:z", "y/z")
    assert not path_ends_with("/a:x/a:z", "y/z")
    root = reply("<data><a><b><k>1</k><c>v</c></b></a></data>").data
    assert find(root, "b[k=1]/c=v") and not find(root, "b[k=2]/c") and not find(root, "a/c")


def test_registry_invariants():
    ids = list(REGISTRY)
    assert len(ids) == len(set(ids)) >= 70
    steps = netconf_runner.STEPS
    for check in REGISTRY.values():
        assert re.fullmatch(r"(NC|GN|QKD|HX|KME|RC)-[A-Z]+-\d{3}", check.id), check.id
        assert check.clause and check.title and check.expectation()
        assert check.protocol in runner.PROTOCOL_ORDER
        assert check.hostile == (check.protocol == "hostile") or check.protocol == "restconf"
        if check.step:
            table = {"gnmi": gnmi_runner.STEPS, "kme": kme_runner.STEPS, "restconf": rc_runner.STEPS}.get(
                check.protocol, steps)
            assert check.step in table or check.protocol == "qkd"
        else:
            assert check.send and check.protocol in ("netconf", "restconf")
    for profile in PROFILES.values():  # every template fills for every profile
        values = profile.values("0")
        values["SID"] = "1"
        for check in REGISTRY.values():
            if check.protocol == "netconf" and not check.step:
                for text in (check.send, *check.setup, *check.cleanup, *(t for t, _ in check.then)):
                    if text != netconf_runner.CLEAN_ENTRIES:
                        text.format_map(values)


def test_reports_are_stable_and_self_contained():
    check = REGISTRY["NC-EDIT-002"]
    ev = Evidence()
    ev.add("<rpc>sent</rpc>", "<rpc-reply><ok/></rpc-reply>")
    rr = runner.RunReport("etsi-qkd-015", {"netconf": "h:1"}, started=0, seconds=1.0)
    rr.results.append(Result(check, Verdict.FAIL, "expected data-exists", ev, 0.1))
    doc = report.to_json(rr)
    assert doc["schema"] == "qstrata-conform/1" and doc["summary"]["fail"] == 1
    assert doc["results"][0]["evidence"]["exchanges"][0]["sent"] == "<rpc>sent</rpc>"
    json.dumps(doc)
    html = report.to_html(rr)
    assert "&lt;rpc&gt;sent&lt;/rpc&gt;" in html and "src=" not in html and "href=" not in html
    assert "FAIL" in report.console(rr) and rr.failed


# ------------------------------------------------------------------ which error, not only that one came back
# A check that expects an error passes only for its own mistake: an error with the right tag about
# something else, or a status a refused login or a missing gNMI target would give as well, fails.

OTHER = ('<error-info><bad-element>other</bad-element><bad-attribute>other</bad-attribute>'
         "<session-id>999</session-id></error-info>")
WITHOUT_SPECIFICS = {
    "NC-RPC-003": "the rpc holds nothing but the unknown operation",
    "NC-CAP-005": "the edit is valid: only the capability can be missing",
    "NC-SCHEMA-002": "RFC 6022 names no error-info or path for it",
    "NC-ERR-006": "RFC 6241 7.9 names no error-info or path for it",
    "NC-LOCK-003": "the edit is valid: only the lock can be in the way",
    "NC-LOCK-004": "the unlock is valid: only the missing lock can fail it",
    "NC-NOTIF-002": "RFC 5277 names no error-tag for it, let alone a path",
}


@pytest.mark.parametrize(("expect", "body", "values", "verdict"), [
    (Error(("missing-attribute",), info="bad-attribute=message-id"),
     rpc_error("missing-attribute", info="<error-info><bad-attribute>message-id</bad-attribute></error-info>"), {},
     Verdict.PASS),
    (Error(("missing-attribute",), info="bad-attribute=message-id"),  # netconfd qualifies the name
     rpc_error("missing-attribute", info="<error-info><bad-attribute>nc:message-id</bad-attribute></error-info>"), {},
     Verdict.PASS),
    (Error(("missing-attribute",), info="bad-attribute=message-id"),
     rpc_error("missing-attribute", info="<error-info><bad-attribute>xmlns</bad-attribute></error-info>"), {},
     Verdict.FAIL),
    (Error(("lock-denied",), info="session-id={SID}"),
     rpc_error("lock-denied", info="<error-info><session-id>7</session-id></error-info>"), {"SID": "7"}, Verdict.PASS),
    (Error(("lock-denied",), info="session-id={SID}"),  # denied, but for another session's lock
     rpc_error("lock-denied", info="<error-info><session-id>4</session-id></error-info>"), {"SID": "7"}, Verdict.FAIL),
    (Error(("invalid-value", "bad-element"), about="qkd_link/qkdl_enable"),
     rpc_error("invalid-value", "/e:qkd_node/e:qkd_links/e:qkd_link[e:qkdl_id='1']/e:qkdl_enable"), {}, Verdict.PASS),
    (Error(("invalid-value", "bad-element"), about="qkd_link/qkdl_enable"),
     rpc_error("bad-element", info="<error-info><bad-element>e:qkdl_enable</bad-element></error-info>"), {},
     Verdict.PASS),
    (Error(("invalid-value", "bad-element"), about="qkd_link/qkdl_enable"),  # a bad value, but of another leaf
     rpc_error("invalid-value", "/e:qkd_node/e:qkdn_id"), {}, Verdict.FAIL),
    (Error(("invalid-value", "bad-element"), about="qkd_link/qkdl_enable"), rpc_error("invalid-value"), {},
     Verdict.FAIL),
])
def test_an_error_must_be_about_the_mistake(expect, body, values, verdict):
    assert evaluate(expect, reply(body), values).verdict is verdict


def test_every_netconf_error_check_fails_on_an_error_about_something_else():
    """For each check that expects an rpc-error: the right tag about another element, attribute or
    session fails it, unless the check is listed (with the reason nothing else can be wrong)."""
    values = {**PROFILES["etsi-qkd-015"].values("0"), "SID": "1"}
    unspecific = set()
    for check in REGISTRY.values():
        if not isinstance(check.expect, Error):
            continue
        e = check.expect
        if not (e.path or e.info or e.about):
            unspecific.add(check.id)
            continue
        for tag in e.tags:
            got = evaluate(e, reply(rpc_error(tag, "/x:other", OTHER)), values)
            assert got.verdict is Verdict.FAIL, (check.id, tag)
        assert evaluate(e, reply(rpc_error("access-denied")), values).verdict is Verdict.FAIL, check.id
    assert unspecific == set(WITHOUT_SPECIFICS)


def test_hostile_refusals_must_carry_the_tag_for_the_input():
    """A framing error answered as if the <rpc/> inside had been read (missing-attribute) fails."""
    from qstrata.agents.conform.hostile_checks import judge_answer

    frame, xxe = REGISTRY["HX-FRAME-001"], REGISTRY["HX-XML-002"]
    assert judge_answer(frame, reply(rpc_error("malformed-message"))).verdict is Verdict.PASS
    wrong = judge_answer(frame, reply(rpc_error("missing-attribute")))
    assert wrong.verdict is Verdict.FAIL and "expected malformed-message" in wrong.reason
    assert judge_answer(frame, reply("<data/>")).verdict is Verdict.FAIL
    assert judge_answer(REGISTRY["HX-SIZE-001"], reply(rpc_error("resource-denied"))).verdict is Verdict.PASS
    assert judge_answer(xxe, reply("<data/>")).verdict is Verdict.PASS


NEEDS_TARGET = ("INVALID_ARGUMENT", "this server hosts several targets: set prefix.target to the agent's name")
UNKNOWN_TARGET = ("NOT_FOUND", "unknown target 'carol'")
LOGIN = ("UNAUTHENTICATED", "wrong username or password")
OK = ("OK", "")


@pytest.mark.parametrize(("check_id", "status", "control", "verdict"), [
    ("GN-GET-002", ("INVALID_ARGUMENT", "unknown element 'no-such-conform-leaf'"), OK, Verdict.PASS),
    ("GN-GET-002", ("NOT_FOUND", "no data at /qkd_node/no-such-conform-leaf"), OK, Verdict.PASS),
    ("GN-GET-002", NEEDS_TARGET, NEEDS_TARGET, Verdict.FAIL),  # passed on main without --target
    ("GN-GET-002", UNKNOWN_TARGET, UNKNOWN_TARGET, Verdict.FAIL),
    ("GN-GET-002", LOGIN, LOGIN, Verdict.FAIL),
    ("GN-GET-002", ("INVALID_ARGUMENT", ""), OK, Verdict.FAIL),  # gNMI 2.5: a message is a MUST
    ("GN-GET-002", OK, OK, Verdict.FAIL),
    ("GN-GET-003", ("UNIMPLEMENTED", "encoding ASCII is not supported"), OK, Verdict.PASS),
    ("GN-GET-003", ("UNIMPLEMENTED", "Get is not implemented"), ("UNIMPLEMENTED", "Get is not implemented"),
     Verdict.FAIL),
    ("GN-AUTH-001", LOGIN, OK, Verdict.PASS),
    ("GN-AUTH-001", NEEDS_TARGET, NEEDS_TARGET, Verdict.FAIL),
    ("GN-AUTH-001", ("PERMISSION_DENIED", "access denied by NACM"), ("PERMISSION_DENIED", "access denied by NACM"),
     Verdict.FAIL),
    ("GN-SET-002", ("ABORTED", "invalid value at link_stats_support"), OK, Verdict.PASS),
    ("GN-SET-002", ("INVALID_ARGUMENT", NEEDS_TARGET[1]), NEEDS_TARGET, Verdict.FAIL),
])
def test_a_gnmi_error_passes_only_when_the_control_request_succeeds(check_id, status, control, verdict):
    assert gnmi_runner.judge_error(REGISTRY[check_id].expect, status, control).verdict is verdict


def test_every_gnmi_error_check_has_a_control_request():
    for check in REGISTRY.values():
        if check.protocol == "gnmi" and check.expect.codes != ("OK",):
            assert check.expect.control, check.id
            assert "control" in check.expectation()


def test_responses_must_reflect_the_target_sent():
    """gNMI 2.2.2.1: the prefix.target of the request comes back in every notification, and none
    comes back when none was sent; sync_response messages carry no prefix."""
    from gnmi_pb import gnmi_pb2

    def get(target: str):
        return gnmi_pb2.GetResponse(notification=[gnmi_pb2.Notification(prefix=gnmi_pb2.Path(target=target))])

    def update(target: str):
        return gnmi_pb2.SubscribeResponse(update=gnmi_pb2.Notification(prefix=gnmi_pb2.Path(target=target)))

    sync = gnmi_pb2.SubscribeResponse(sync_response=True)
    assert gnmi_runner.echo_problem("alice", [get("alice")]) is None
    assert gnmi_runner.echo_problem("", [get("")]) is None
    assert gnmi_runner.echo_problem("alice", [update("alice"), sync]) is None
    assert "no prefix.target" in gnmi_runner.echo_problem("alice", [get("")])
    assert "'bob'" in gnmi_runner.echo_problem("alice", [update("alice"), update("bob")])
    assert "none was sent" in gnmi_runner.echo_problem("", [gnmi_pb2.SetResponse(prefix=gnmi_pb2.Path(target="x"))])


# -- ETSI GS QKD 014 judges --------------------------------------------------------------------

STATUS = {"source_KME_ID": "a", "target_KME_ID": "b", "master_SAE_ID": "m", "slave_SAE_ID": "s", "key_size": 256,
          "stored_key_count": 10, "max_key_count": 100, "max_key_per_request": 8, "max_key_size": 1024,
          "min_key_size": 64, "max_SAE_ID_count": 0}


@pytest.mark.parametrize(("change", "problem"), [
    ({}, None),
    ({"status_extension": {"x": 1}}, None),
    ({"key_size": "256"}, "not a JSON integer"),
    ({"key_size": 256.0}, "not a JSON integer"),
    ({"stored_key_count": True}, "not a JSON integer"),
    ({"vendor_field": 1}, "fields 6.1 does not define: vendor_field"),
    ({"master_SAE_ID": "x"}, "expected m/s"),
    ({"target_KME_ID": ""}, "not a non-empty string"),
    ({"stored_key_count": 101}, "stored_key_count above max_key_count"),
    ({"key_size": 2048}, "key_size outside"),
])
def test_the_status_object(change, problem):
    found = status_problem({**STATUS, **change}, "m", "s")
    assert (found is None) if problem is None else (problem in (found or "")), found
    assert "Status without key_size" in status_problem({k: v for k, v in STATUS.items() if k != "key_size"}, "m", "s")


KEY = {"key_ID": "0b1c2d3e-4f50-4a61-8b72-938495a6b7c8", "key": "AAECAwQFBgc="}


@pytest.mark.parametrize(("container", "problem"), [
    ({"keys": [KEY]}, None),
    ({"keys": [KEY], "key_container_extension": {}}, None),
    ({"keys": []}, "0 keys, 1 asked"),
    ({"keys": [{**KEY, "key_ID": "7"}]}, "is not a UUID"),
    ({"keys": [{**KEY, "key": "AAECAwQFBgc"}]}, "not standard padded base64"),
    ({"keys": [{**KEY, "key": "AAECAwQFBg-_"}]}, "not standard padded base64"),
    ({"keys": [{**KEY, "key": "AAECAwQFBgcI"}]}, "72 bits, 64 asked"),
    ({"keys": [KEY], "extra": 1}, "fields 6.3 does not define"),
    ([KEY], "not a Key container"),
])
def test_the_key_container(container, problem):
    found = container_problem(container, 1, 64)
    assert (found is None) if problem is None else (problem in (found or "")), found
    assert "a key_ID repeats" in container_problem({"keys": [KEY, KEY]}, 2, 64)


@pytest.mark.parametrize(("answer", "control", "verdict"), [
    (Answer(400, {"message": "size 100 is not a multiple of 8"}), Answer(200), Verdict.PASS),
    (Answer(400, {"message": "size 100 is bad", "details": [{"size": 100}]}), Answer(200), Verdict.PASS),
    (Answer(401, {"message": "size 100 is not a multiple of 8"}), Answer(200), Verdict.FAIL),
    (Answer(400, {"message": "no"}), Answer(200), Verdict.FAIL),
    (Answer(400, {"error": "size"}), Answer(200), Verdict.FAIL),
    (Answer(400, {"message": "size", "details": "size"}), Answer(200), Verdict.FAIL),
    (Answer(400, {"message": "size", "code": 7}), Answer(200), Verdict.FAIL),
    (Answer(400, None, "size is wrong"), Answer(200), Verdict.FAIL),
    (Answer(400, {"message": "size 100 is not a multiple of 8"}), Answer(401, {"message": "who?"}), Verdict.FAIL),
    (Answer(0, error="SSLError"), Answer(200), Verdict.FAIL),
])
def test_a_kme_refusal_is_the_standards_error_about_the_mistake(answer, control, verdict):
    expect = KmeExpect((400,), about=("size",), control="x")
    assert judge_refusal(expect, answer, control).verdict is verdict
    assert (error_problem(expect, answer) is None) == (verdict is Verdict.PASS or control.status != 200)


def test_every_kme_error_check_has_a_control_request():
    for check in REGISTRY.values():
        if check.protocol == "kme" and check.expect.codes != (200,):
            assert check.expect.control, check.id
