"""create-subscription with a <filter> (RFC 5277 s2.1.1), driven with ncclient and yangcli.

The agent answered <ok/> to a filtered subscription and then sent every event: a filter
selecting only netconf-session-end still delivered netconf-session-start.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from lxml import etree
from netconf_helpers import call, errors

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "filtered", twin=False)


def events(m, wait: float, until: tuple[str, str] | None = None) -> list[tuple[str, str | None]]:
    """(event name, session-id) of what arrives on `m` within `wait` seconds, or up to `until`."""
    got = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        note = m.take_notification(timeout=left)
        if note is None:
            break
        root = etree.fromstring(note.notification_xml.encode() if isinstance(note.notification_xml, str)
                                else note.notification_xml)
        event = next(c for c in root if etree.QName(c).localname != "eventTime")
        got.append((etree.QName(event).localname, event.findtext(f"{{{NCN}}}session-id")))
        if got[-1] == until:
            break
    return got


def another_session(netconf_connect, node) -> str:
    """Open and close one session; its session-id."""
    other = netconf_connect(node)
    session_id = str(other.session_id)
    other.close_session()
    return session_id


@pytest.mark.parametrize("flt", [
    ("subtree", f'<netconf-session-end xmlns="{NCN}"/>'),
    ("xpath", ({"ncn": NCN}, "/ncn:netconf-session-end")),
    ("xpath", "/ietf-netconf-notifications:netconf-session-end"),  # module names as prefixes
], ids=["subtree", "xpath", "xpath-module-prefix"])
def test_a_filter_selecting_session_end_gets_no_session_start(node, netconf_connect, flt) -> None:
    m = netconf_connect(node)
    try:
        m.create_subscription(filter=flt)
        other = another_session(netconf_connect, node)
        got = events(m, 5.0, until=("netconf-session-end", other))
        assert ("netconf-session-end", other) in got, got
        assert {name for name, _ in got} == {"netconf-session-end"}, got
    finally:
        m.close_session()


def test_a_content_match_filter_selects_by_value(node, netconf_connect) -> None:
    m = netconf_connect(node)
    try:
        # only the session-start of a session that does not exist yet: the next-but-one
        m.create_subscription(filter=("subtree", f'<netconf-session-start xmlns="{NCN}"><session-id>0</session-id>'
                                                 f'</netconf-session-start>'))
        another_session(netconf_connect, node)
        assert events(m, 1.0) == []
    finally:
        m.close_session()


def test_an_unusable_filter_is_refused_and_subscribes_nothing(node, netconf_connect) -> None:
    m = netconf_connect(node)
    try:
        bad = (f'<create-subscription xmlns="{NOTIF_NS}"><filter type="xpath" select="/nope:event"/>'
               f'</create-subscription>')
        [error] = errors(call(m, bad))
        assert error["tag"] == "invalid-value" and "nope" in error["message"], error
        no_type = (f'<create-subscription xmlns="{NOTIF_NS}"><filter type="regex"/></create-subscription>')
        assert errors(call(m, no_type))[0]["tag"] == "bad-attribute"
        # nothing was subscribed: a plain subscription now gets every event
        m.create_subscription()
        other = another_session(netconf_connect, node)
        names = {name for name, sid in events(m, 5.0, until=("netconf-session-end", other)) if sid == other}
        assert names == {"netconf-session-start", "netconf-session-end"}, names
    finally:
        m.close_session()


YANGCLI = shutil.which("yangcli")


@pytest.mark.skipif(YANGCLI is None, reason="Debian's yangcli (yuma123) is not installed")
def test_yangcli_filtered_subscription(node, tmp_path) -> None:
    """yangcli (with RFC 5277's `notifications` module loaded locally: the agent does not list
    it) subscribes to netconf-confirmed-commit only, then makes a confirmed commit and cancels
    it: two confirmed-commit events, and none of the two netconf-config-change events."""
    (tmp_path / "filter.xml").write_text(f'<netconf-confirmed-commit xmlns="{NCN}"/>\n')
    (tmp_path / "script.ycl").write_text(
        f"create-subscription filter=@{tmp_path / 'filter.xml'}\n"
        "merge /qkd_node/qkdn_location_id value=lab-1\n"
        "commit confirmed confirm-timeout=60\n"
        "cancel-commit\n"
        "discard-changes\n")  # the cancel event may follow cancel-commit's reply: read on
    creds = node.credentials
    proc = subprocess.run([YANGCLI, f"--server={node.host}", f"--ncport={node.port}", f"--user={creds['username']}",
                           f"--password={creds['password']}", "--batch-mode", f"--run-script={tmp_path / 'script.ycl'}",
                           "--log-level=info", "--autoload=true", "--module=notifications"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert "canceled" not in out and "RPC Error Reply" not in out, out
    assert out.count("Incoming notification") == 2, out
    assert "confirm-event start" in out and "confirm-event cancel" in out, out
    assert "netconf-config-change" not in out, out
