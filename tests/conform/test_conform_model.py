"""The conformance kit without a device: expectations evaluated on replies, local-name paths,
error-path suffixes, the registry's invariants (unique ids, clauses, steps that exist, templates
that fill), and the reports."""

from __future__ import annotations

import json
import re

import pytest
from qstrata.agents.conform import gnmi_runner, netconf_runner, report, runner
from qstrata.agents.conform.model import REGISTRY, Data, Error, Evidence, Ok, Result, Verdict
from qstrata.agents.conform.nc_client import _parse
from qstrata.agents.conform.netconf_runner import evaluate, find, path_ends_with
from qstrata.agents.conform.profiles import PROFILES

NS = 'xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"'


def reply(body: str):
    return _parse(f'<rpc-reply {NS} message-id="1">{body}</rpc-reply>'.encode())


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
    assert evaluate(Ok(), _parse(b"<rpc-reply><ok/>")).verdict is Verdict.FAIL
    assert evaluate(Ok(), _parse(f"<hello {NS}/>".encode())).verdict is Verdict.FAIL


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
        assert re.fullmatch(r"(NC|GN|QKD|HX)-[A-Z]+-\d{3}", check.id), check.id
        assert check.clause and check.title and check.expectation()
        assert check.protocol in runner.PROTOCOL_ORDER
        assert check.hostile == (check.protocol == "hostile")
        if check.step:
            assert check.step in (gnmi_runner.STEPS if check.protocol == "gnmi" else steps) or check.protocol == "qkd"
        else:
            assert check.send and check.protocol == "netconf"
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
