"""Regressions found by hostile, careless and third-party clients, against real agent processes.

Each test names the defect it pins down (issue 7, part 1): confirmed commits that never rolled
back, confirm-timeouts that were not uint32, a candidate lock that did not stop other sessions,
a persisted confirmed commit forgotten after kill -9, a leaking <get>, a 16 MiB edit that froze
every session, filters and namespaces that were accepted or answered wrongly, and what ncclient
really sends.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from lxml import etree
from ncclient.operations import RaiseMode
from netconf_helpers import call, errors, open_session
from polling import wait_until
from qstrata.bindings.wire.netconf_client import Reply

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YANGLIB_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
NS = {"nc": NC_NS, "q": QKD_NS, "mon": MON_NS, "yl": YANGLIB_NS, "n": NOTIF_NS, "ncn": NCN_NS}


def new_id() -> str:
    return str(uuid.uuid4())


def link(qkdl_id: str, extra: str = "") -> str:
    return f"<qkd_link><qkdl_id>{qkdl_id}</qkdl_id>{extra}</qkd_link>"


def config(*entries: str) -> str:
    return (f'<config xmlns="{NC_NS}"><qkd_node xmlns="{QKD_NS}" xmlns:t="{TYPES_NS}">'
            f"<qkd_links>{''.join(entries)}</qkd_links></qkd_node></config>")


def link_ids(m, source: str = "running") -> list[str]:
    data = etree.fromstring(m.get_config(source=source).data_xml.encode())
    return sorted(e.text for e in data.iter(f"{{{QKD_NS}}}qkdl_id"))


def running(m) -> str:
    return m.get_config(source="running").data_xml


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "hostile", twin=False)


# ---------------------------------------------------------------------------- confirmed commit


def test_confirmed_commit_rolls_back_although_its_session_holds_the_running_lock(m, m2) -> None:
    """Before: the rollback failed with "running datastore is locked by session N" and the change
    stayed forever. The server's rollback must happen whoever holds locks."""
    before = running(m)
    qkdl_id = new_id()
    m.lock(target="running")
    try:
        m.edit_config(target="candidate", config=config(link(qkdl_id)))
        m.commit(confirmed=True, timeout="1")
        assert link_ids(m2) == [qkdl_id]
        assert wait_until(lambda: running(m2) == before, 4.0), "the confirmed commit was not rolled back"
        reply = call(m, f'<cancel-commit xmlns="{NC_NS}"/>')
        assert [e["tag"] for e in errors(reply)] == ["operation-failed"]  # nothing pending any more
        # the lock is still the committing session's
        assert [e["tag"] for e in errors(call(m2, f'<lock xmlns="{NC_NS}"><target><running/></target></lock>'))] \
            == ["lock-denied"]
    finally:
        m.unlock(target="running")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12", "4294967296", "0", "-5", "1.5", "", "0x10",
                                   "１２"])
def test_confirm_timeout_must_be_a_uint32(m, value) -> None:
    """Before: nan answered operation-failed yet applied the commit with no timer; inf, 1e12 and
    4294967296 were accepted."""
    before = running(m)
    m.edit_config(target="candidate", config=config(link(new_id())))
    try:
        reply = call(m, f'<commit xmlns="{NC_NS}"><confirmed/><confirm-timeout>{value}</confirm-timeout></commit>')
        errs = errors(reply)
        assert [e["tag"] for e in errs] == ["invalid-value"], etree.tostring(reply)
        assert errs[0]["info"].get("bad-element") == "confirm-timeout"
        assert running(m) == before
        assert [e["tag"] for e in errors(call(m, f'<cancel-commit xmlns="{NC_NS}"/>'))] == ["operation-failed"]
    finally:
        m.discard_changes()


def test_largest_confirm_timeout_is_accepted(m) -> None:
    before = running(m)
    m.edit_config(target="candidate", config=config(link(new_id())))
    reply = call(m, f'<commit xmlns="{NC_NS}"><confirmed/><confirm-timeout>4294967295</confirm-timeout></commit>')
    assert reply.find("nc:ok", NS) is not None, etree.tostring(reply)
    m.cancel_commit()
    assert running(m) == before


def test_candidate_lock_stops_other_sessions_discard_and_commit(m, m2) -> None:
    """Before: another session's commit pushed the lock holder's unfinished edits into running,
    and its discard-changes threw them away (RFC 6241 s7.5)."""
    before = running(m)
    qkdl_id = new_id()
    m.lock(target="candidate")
    try:
        m.edit_config(target="candidate", config=config(link(qkdl_id)))
        for rpc in ("<commit/>", "<discard-changes/>"):
            reply = call(m2, rpc.replace("/>", f' xmlns="{NC_NS}"/>'))
            errs = errors(reply)
            assert [e["tag"] for e in errs] == ["in-use"], (rpc, etree.tostring(reply))
            assert errs[0]["info"].get("session-id") == str(m.session_id)
        assert running(m2) == before
        assert link_ids(m, "candidate") == [qkdl_id]  # the holder's edit is intact
    finally:
        m.discard_changes()
        m.unlock(target="candidate")


def test_persisted_confirmed_commit_survives_kill_9(agent, netconf_connect) -> None:
    """RFC 6241 s8.4: a persist confirmed commit outlives the agent; before, after kill -9 the
    unconfirmed change stayed in running and the persist-id was unknown."""
    node = agent("qkd", "persist", twin=False)
    m = netconf_connect(node)
    before = running(m)
    kept, dropped = new_id(), new_id()
    m.edit_config(target="candidate", config=config(link(kept)))
    m.commit(confirmed=True, timeout="60", persist="keep-me")
    node.kill()
    node.start()
    m = netconf_connect(node)
    assert link_ids(m) == [kept]
    assert m.commit(persist_id="keep-me").ok  # the persist-id is known after the restart: confirmed

    # a persisted confirmed commit whose timeout passes while the agent is down is rolled back at start
    baseline = running(m)
    m.edit_config(target="candidate", config=config(link(dropped)))
    m.commit(confirmed=True, timeout="1", persist="lose-me")
    node.kill()
    time.sleep(1.2)
    node.start()
    m = netconf_connect(node)
    assert wait_until(lambda: running(m) == baseline, 3.0)

    # a confirmed commit without persist ends with its session, so a crash rolls it back (RFC 6241 s8.4)
    m.edit_config(target="candidate", config=config(link(dropped)))
    m.commit(confirmed=True, timeout="600")
    node.kill()
    node.start()
    m = netconf_connect(node)
    assert wait_until(lambda: running(m) == baseline, 3.0)
    assert [e["tag"] for e in errors(call(m, f'<cancel-commit xmlns="{NC_NS}"/>'))] == ["operation-failed"]
    m.edit_config(target="running", config=config(link(kept).replace("<qkd_link>", '<qkd_link xmlns:nc="'
                                                                      f'{NC_NS}" nc:operation="delete">')))
    assert running(m) == before
    m.close_session()


# ---------------------------------------------------------------------------- resources


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return int(fh.read().split("VmRSS:")[1].split()[0]) / 1024


def test_get_does_not_leak(node) -> None:
    """Before: each <get> leaked about 34 KiB (18,000 gets: 77 -> 687 MB)."""

    async def run() -> tuple[float, float]:
        client = await open_session(node)
        try:
            for _ in range(300):  # warm caches and allocator pools
                await client.rpc("<get/>")
            start = _rss_mb(node.process.pid)
            window = 8
            for _ in range(window):
                client.send("<get/>")
            for _ in range(5000 - window):
                await client.read_raw()
                client.send("<get/>")
            for _ in range(window):
                await client.read_raw()
            return start, _rss_mb(node.process.pid)
        finally:
            await client.close()

    start, end = asyncio.run(run())
    assert end - start < 10.0, f"RSS grew from {start:.1f} to {end:.1f} MB over 5,000 gets"


PROBE = "<get-config><source><startup/></source></get-config>"
"""A request whose own cost does not grow with running: its latency is the loop's responsiveness."""


def _probe_while(node, big_request: bytes) -> tuple[Reply, float, float, int]:
    """Send `big_request` on one session while another polls; (reply, its time, worst probe
    latency, probes answered)."""

    async def run():
        big = await open_session(node)
        probe = await open_session(node)
        latencies: list[float] = []
        try:
            await probe.rpc(PROBE)
            task = asyncio.create_task(big.rpc(big_request, timeout=300))
            started = time.perf_counter()
            while not task.done():
                sent = time.perf_counter()
                await probe.rpc(PROBE)
                latencies.append(time.perf_counter() - sent)
                await asyncio.sleep(0.02)
            reply = await task
            return reply, time.perf_counter() - started, max(latencies), len(latencies)
        finally:
            await big.close()
            await probe.close()

    return asyncio.run(run())


def test_huge_edit_config_does_not_freeze_other_sessions(agent, netconf_connect) -> None:
    """Before: an edit-config of 200,000 links (under the 16 MiB message limit) took 115 s and froze
    every other session. Now the work is linear and done off the event loop."""
    node = agent("qkd", "bulk", twin=False)
    n = 200_000
    entries = "".join(f"<qkd_link><qkdl_id>{uuid.UUID(int=i + 1)}</qkdl_id></qkd_link>" for i in range(n))
    request = (f"<edit-config><target><running/></target><config><qkd_node xmlns='{QKD_NS}'><qkd_links>"
               f"{entries}</qkd_links></qkd_node></config></edit-config>").encode()
    assert len(request) < 16 * 1024 * 1024
    reply, took, worst, probes = _probe_while(node, request)
    assert reply.ok and not reply.errors, reply.raw[:500]
    assert worst < 1.0, f"another session waited {worst:.2f} s while the edit ran ({took:.1f} s)"
    assert probes >= 3
    m = netconf_connect(node)
    m.raise_mode = RaiseMode.ALL
    count = call(m, f"<get-config xmlns='{NC_NS}'><source><running/></source><filter type='xpath' "
                    f"select=\"/q:qkd_node/q:qkd_links/q:qkd_link[q:qkdl_id='{uuid.UUID(int=n)}']\" "
                    f"xmlns:q='{QKD_NS}'/></get-config>")
    assert len(list(count.iter(f"{{{QKD_NS}}}qkd_link"))) == 1
    m.close_session()
    node.stop()


def test_huge_subtree_filter_does_not_freeze_other_sessions(node) -> None:
    """Before: a 500,000-element subtree filter stalled the agent for 3.5 s."""
    keyed = "".join(f"<qkd_link><qkdl_id>{uuid.UUID(int=i + 1)}</qkdl_id></qkd_link>" for i in range(100_000))
    request = (f"<get-config><source><running/></source><filter type='subtree'><qkd_node xmlns='{QKD_NS}'>"
               f"<qkd_links>{keyed}{'<qkd_link/>' * 300_000}</qkd_links></qkd_node></filter></get-config>").encode()
    assert request.count(b"<") > 500_000 and len(request) < 16 * 1024 * 1024
    reply, took, worst, probes = _probe_while(node, request)
    assert b"<rpc-error>" not in reply.raw and b"<data" in reply.raw
    assert worst < 1.0, f"another session waited {worst:.2f} s while the filter ran ({took:.1f} s)"


# ---------------------------------------------------------------------------- requests answered wrongly


def test_unknown_filter_type_is_bad_attribute(m) -> None:
    """Before: <filter type="evil"> returned the whole datastore."""
    for op in ("get-config", "get"):
        source = "<source><running/></source>" if op == "get-config" else ""
        reply = call(m, f'<{op} xmlns="{NC_NS}">{source}<filter type="evil"><qkd_node xmlns="{QKD_NS}"/></filter></{op}>')
        errs = errors(reply)
        assert [e["tag"] for e in errs] == ["bad-attribute"], etree.tostring(reply)
        assert errs[0]["info"] == {"bad-attribute": "type", "bad-element": "filter"}
        assert reply.find("nc:data", NS) is None


def test_duplicate_leaf_in_an_existing_entry_is_rejected(m) -> None:
    """Before: two instances of one leaf were rejected in a new entry but silently accepted (last
    one wins) in an existing one."""
    qkdl_id = new_id()
    m.edit_config(target="running", config=config(link(qkdl_id, "<qkdl_enable>true</qkdl_enable>")))
    try:
        before = running(m)
        twice = link(qkdl_id, "<qkdl_enable>false</qkdl_enable><qkdl_enable>true</qkdl_enable>")
        for entry in (twice, twice.replace(qkdl_id, new_id())):
            reply = call(m, f'<edit-config xmlns="{NC_NS}"><target><running/></target>{config(entry)}</edit-config>')
            errs = errors(reply)
            assert [e["tag"] for e in errs] == ["bad-element"], etree.tostring(reply)
            assert errs[0]["info"].get("bad-element") == "qkdl_enable"
            assert "Duplicate" in errs[0]["message"]
            assert running(m) == before
    finally:
        m.edit_config(target="running", config=config(
            link(qkdl_id).replace("<qkd_link>", f'<qkd_link xmlns:nc="{NC_NS}" nc:operation="delete">')))


def test_subtree_filtered_schemas_declare_the_identity_prefix(m) -> None:
    """Before: netconf-state/schemas through a subtree filter returned ``ncm:yang`` with the ncm
    prefix undeclared, so the reply could not be read as YANG data."""
    reply = m.get(filter=("subtree", f'<netconf-state xmlns="{MON_NS}"><schemas><schema>'
                                     "<identifier>etsi-qkd-sdn-node</identifier></schema></schemas></netconf-state>"))
    data = etree.fromstring(reply.xml.encode())
    formats = list(data.iter(f"{{{MON_NS}}}format"))
    assert formats
    for element in formats:
        prefix, _, name = element.text.partition(":")
        assert name == "yang" and element.nsmap.get(prefix) == MON_NS, etree.tostring(element)


def test_yang_library_lists_every_datastore_and_no_file_paths(m) -> None:
    """RFC 8525 s4: one datastore entry per datastore; and no local file:// locations."""
    reply = m.get(filter=("subtree", f'<yang-library xmlns="{YANGLIB_NS}"><datastore/></yang-library>'))
    data = etree.fromstring(reply.xml.encode())
    names = sorted(e.text.split(":")[-1] for e in data.iter(f"{{{YANGLIB_NS}}}name"))
    assert names == ["candidate", "operational", "running", "startup"]
    whole = m.get().data_xml
    assert "file://" not in whole and "/site-packages/" not in whole and "/share/yang" not in whole


def test_rfc6470_session_and_confirmed_commit_notifications(node, m, connect) -> None:
    """ietf-netconf-notifications is advertised: netconf-session-start/-end and -confirmed-commit
    are sent, not only netconf-config-change."""
    m.create_subscription()
    other = connect(node)
    other_id = other.session_id
    other.close_session()
    killed = connect(node)
    killed_id = killed.session_id
    m.kill_session(killed_id)
    m.edit_config(target="candidate", config=config(link(new_id())))
    m.commit(confirmed=True, timeout="60")
    m.commit()
    seen: list[etree._Element] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(seen) < 8:
        notification = m.take_notification(timeout=1)
        if notification is not None:
            seen.append(etree.fromstring(notification.notification_xml.encode()))
    bodies = [n[1] for n in seen]

    def of(name: str) -> list[etree._Element]:
        return [b for b in bodies if etree.QName(b).localname == name and etree.QName(b).namespace == NCN_NS]

    starts = {b.findtext("ncn:session-id", namespaces=NS) for b in of("netconf-session-start")}
    assert {str(other_id), str(killed_id)} <= starts
    ends = {b.findtext("ncn:session-id", namespaces=NS): b for b in of("netconf-session-end")}
    assert ends[str(other_id)].findtext("ncn:termination-reason", namespaces=NS) == "closed"
    assert ends[str(killed_id)].findtext("ncn:termination-reason", namespaces=NS) == "killed"
    assert ends[str(killed_id)].findtext("ncn:killed-by", namespaces=NS) == str(m.session_id)
    events = [b.findtext("ncn:confirm-event", namespaces=NS) for b in of("netconf-confirmed-commit")]
    assert events[:2] == ["start", "complete"]
    assert of("netconf-config-change")


# ---------------------------------------------------------------------------- what real clients send


def test_ncclient_unqualified_config_is_accepted(m) -> None:
    """ncclient's edit_config(config="<config>...</config>") puts <config> in no namespace inside
    nc:edit-config (ncclient #251, #489; netopeer2 #1250, #1575)."""
    qkdl_id = new_id()
    body = f'<config><qkd_node xmlns="{QKD_NS}"><qkd_links>{link(qkdl_id)}</qkd_links></qkd_node></config>'
    assert m.edit_config(target="running", config=body).ok
    assert qkdl_id in link_ids(m)
    delete = body.replace("<qkd_link>", f'<qkd_link xmlns:nc="{NC_NS}" nc:operation="delete">')
    assert m.edit_config(target="running", config=delete).ok
    assert qkdl_id not in link_ids(m)


def test_bare_identity_is_refused_with_a_hint(m) -> None:
    before = running(m)
    reply = call(m, f'<edit-config xmlns="{NC_NS}"><target><running/></target>'
                    f'{config(link(new_id(), "<qkdl_type>PHYS</qkdl_type>"))}</edit-config>')
    errs = errors(reply)
    assert [e["tag"] for e in errs] == ["invalid-value"]
    assert "did you mean etsi-qkd-node-types:PHYS?" in errs[0]["message"]
    assert running(m) == before
