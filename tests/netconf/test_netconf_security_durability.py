"""Who may do what, and what survives a crash, against real agent processes.

* authentication: wrong passwords and guessable defaults are refused; the bootstrap password is
  random per state dir and only its owner can read it;
* authorization: a read-only user (added while the agent runs) reads but cannot write;
* durability: SIGKILL in the middle of a burst of commits loses no acknowledged commit and
  leaves no half-applied one; startup survives restarts.
"""

from __future__ import annotations

import json
import stat
import threading
import time

import pytest
from lxml import etree
from ncclient.transport.errors import AuthenticationError, SSHError
from netconf_helpers import call, error_tags
from qstrata.agents.access.users import add_user

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
NS = {"nc": NC_NS, "q": QKD_NS}


def link_id(i: int) -> str:
    return f"0badc0de-0000-4000-8000-{i:012d}"


def link_config(i: int, op: str | None = None) -> str:
    attr = f' nc:operation="{op}"' if op else ""
    body = "" if op == "delete" else (
        f"<qkdl_type>t:VIRT</qkdl_type><virt_bandwidth>{1000 + i}</virt_bandwidth>"
        f"<qkdl_enable>{'true' if i % 2 else 'false'}</qkdl_enable>")
    return (f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}"><qkd_node xmlns="{QKD_NS}" xmlns:t="{TYPES_NS}">'
            f"<qkd_links><qkd_link{attr}><qkdl_id>{link_id(i)}</qkdl_id>{body}</qkd_link></qkd_links>"
            f"</qkd_node></config>")






def is_ok(reply: etree._Element) -> bool:
    return reply.find("nc:ok", NS) is not None and not error_tags(reply)


# ---------------------------------------------------------------------------- authentication


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "guarded", twin=False)


def test_wrong_password_is_denied(node, connect) -> None:
    creds = node.credentials
    with pytest.raises((AuthenticationError, SSHError)):
        connect(node, creds["username"], creds["password"] + "x")
    with pytest.raises((AuthenticationError, SSHError)):
        connect(node, "nobody", creds["password"])
    # the right one still works afterwards
    m = connect(node)
    assert m.connected


@pytest.mark.parametrize("user,password", [("admin", "admin"), ("admin", ""), ("admin", "password"),
                                           ("root", "root"), ("netconf", "netconf"), ("admin", "qstrata")])
def test_no_built_in_credentials(node, connect, user, password) -> None:
    with pytest.raises((AuthenticationError, SSHError)):
        connect(node, user, password)


def test_credentials_are_private_and_random(agent, node, connect) -> None:
    other = agent("qkd", "guarded-too", twin=False)
    for a in (node, other):
        for name in ("credentials.json", "users.json"):
            mode = stat.S_IMODE((a.state_dir / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
        creds = a.credentials
        assert set(creds) == {"username", "password"}
        assert len(creds["password"]) >= 16
        # users.json keeps a hash, never the password itself
        users = (a.state_dir / "users.json").read_text()
        assert creds["password"] not in users
        assert json.loads(users)[creds["username"]]["password"].startswith("scrypt$")
    assert node.credentials["password"] != other.credentials["password"]
    # one agent's password does not open the other
    with pytest.raises((AuthenticationError, SSHError)):
        connect(other, node.credentials["username"], node.credentials["password"])


# ---------------------------------------------------------------------------- authorization


def test_read_only_user(node, connect) -> None:
    admin = connect(node)
    add_user(node.state_dir, "viewer", "viewer-secret-1", groups=("read-only",))  # no restart
    viewer = connect(node, "viewer", "viewer-secret-1")
    before = admin.get_config(source="running").data_xml

    # everything but /nacm, which the default NACM rules keep for admins (RFC 8341 default-deny-all)
    without_nacm = etree.fromstring(before.encode())
    for element in without_nacm.findall("{urn:ietf:params:xml:ns:yang:ietf-netconf-acm}nacm"):
        without_nacm.remove(element)
    seen = etree.fromstring(viewer.get_config(source="running").data_xml.encode())
    assert etree.tostring(seen) == etree.tostring(without_nacm)
    assert "ietf-netconf-acm" in before
    assert viewer.get(filter=("subtree", f'<qkd_node xmlns="{QKD_NS}"><qkdn_id/></qkd_node>')).data_ele is not None

    for target in ("running", "candidate"):
        reply = call(viewer, f'<edit-config xmlns="{NC_NS}"><target><{target}/></target>{link_config(1)}'
                             f"</edit-config>")
        assert error_tags(reply) == ["access-denied"], etree.tostring(reply)
    for rpc in (f'<commit xmlns="{NC_NS}"/>',
                f'<copy-config xmlns="{NC_NS}"><target><startup/></target><source><running/></source></copy-config>',
                f'<delete-config xmlns="{NC_NS}"><target><startup/></target></delete-config>',
                f'<kill-session xmlns="{NC_NS}"><session-id>{admin.session_id}</session-id></kill-session>'):
        assert error_tags(call(viewer, rpc)) == ["access-denied"], rpc
    assert admin.connected
    assert admin.get_config(source="running").data_xml == before
    assert admin.get_config(source="candidate").data_xml == before

    # the admin can still write, and the viewer sees it
    admin.edit_config(target="running", config=link_config(2))
    assert link_id(2) in viewer.get_config(source="running").data_xml
    admin.edit_config(target="running", config=link_config(2, op="delete"))
    assert admin.get_config(source="running").data_xml == before

    # a changed password takes effect at the next login, without a restart
    add_user(node.state_dir, "viewer", "viewer-secret-2", groups=("read-only",))
    with pytest.raises((AuthenticationError, SSHError)):
        connect(node, "viewer", "viewer-secret-1")
    assert connect(node, "viewer", "viewer-secret-2").connected


# ---------------------------------------------------------------------------- durability


class Burst(threading.Thread):
    """Commits one new link per transaction until the session dies; `acked` lists what the server
    acknowledged. Most links are written to running directly, every tenth through candidate + commit
    (a commit replaces the whole of running, so it costs more)."""

    def __init__(self, manager) -> None:
        super().__init__(daemon=True)
        self.m = manager
        self.acked: list[int] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        try:
            while not self.stop.is_set():
                if i % 10 != 9:
                    self.m.edit_config(target="running", config=link_config(i))
                else:
                    self.m.edit_config(target="candidate", config=link_config(i))
                    self.m.commit()
                self.acked.append(i)
                i += 1
        except BaseException as exc:  # the agent was killed: expected
            self.error = exc


def running_links(m) -> dict[int, dict[str, str]]:
    data = m.get_config(source="running").data_ele
    out = {}
    for link in data.iterfind("q:qkd_node/q:qkd_links/q:qkd_link", NS):
        qkdl_id = link.findtext("q:qkdl_id", namespaces=NS)
        assert qkdl_id.startswith("0badc0de-"), qkdl_id
        out[int(qkdl_id.rsplit("-", 1)[1])] = {etree.QName(c).localname: c.text for c in link}
    return out


@pytest.mark.timeout(120)
def test_sigkill_during_a_commit_burst_keeps_a_prefix(agent, netconf_connect) -> None:
    node = agent("qkd", "durable", twin=False)
    m = netconf_connect(node)
    baseline = m.get_config(source="running").data_xml
    burst = Burst(m)
    burst.start()
    # enough commits for the journal to be compacted into a snapshot at least once (every 1000)
    deadline = time.monotonic() + 40
    while len(burst.acked) < 1100 and time.monotonic() < deadline and burst.is_alive():
        time.sleep(0.01)
    assert burst.is_alive(), f"the burst stopped early: {burst.error!r}"
    assert len(burst.acked) >= 50, "too few commits to test anything"
    node.kill()
    burst.join(15)
    assert not burst.is_alive()
    acked = list(burst.acked)
    assert acked == list(range(len(acked)))

    node.start()
    m = netconf_connect(node)
    try:
        links = running_links(m)
        present = sorted(links)
        # a prefix: every acknowledged commit, plus at most the one in flight at the kill
        assert present == list(range(len(present))), present[-5:]
        assert len(acked) <= len(present) <= len(acked) + 1
        # nothing partial: every link carries everything its transaction wrote, and the tree validates
        for i, leaves in links.items():
            assert leaves["virt_bandwidth"] == str(1000 + i)
            assert leaves["qkdl_enable"] == ("true" if i % 2 else "false")
            assert leaves["qkdl_type"].endswith(":VIRT")
        assert is_ok(call(m, f'<validate xmlns="{NC_NS}"><source><running/></source></validate>'))
        assert m.get_config(source="candidate").data_xml == m.get_config(source="running").data_xml

        # the agent keeps working on the recovered state
        m.edit_config(target="running", config=link_config(len(present)))
        after_crash = m.get_config(source="running").data_xml
        assert after_crash != baseline

        # startup: a copy of running survives a clean restart and a crash
        m.copy_config(source="running", target="startup")
        assert m.get_config(source="startup").data_xml == after_crash
    finally:
        m.close_session()

    node.restart()
    with netconf_connect(node) as m:
        assert m.get_config(source="startup").data_xml == after_crash
        assert m.get_config(source="running").data_xml == after_crash

    # without its running datastore files the agent boots from startup
    node.kill()
    removed = [p for p in node.datastore_dir.iterdir() if p.name.startswith("running")]
    assert removed, list(node.datastore_dir.iterdir())
    for path in removed:
        path.unlink()
    node.start()
    with netconf_connect(node) as m:
        assert m.get_config(source="running").data_xml == after_crash
        assert m.get_config(source="startup").data_xml == after_crash
        assert is_ok(call(m, f'<validate xmlns="{NC_NS}"><source><running/></source></validate>'))


def test_sigterm_is_a_clean_shutdown(agent, netconf_connect) -> None:
    node = agent("qkd", "graceful", twin=False)
    m = netconf_connect(node)
    m.edit_config(target="running", config=link_config(7))
    expected = m.get_config(source="running").data_xml
    m.close_session()
    assert node.stop() == 0
    assert "Traceback" not in node.log_text()
    node.start()
    m = netconf_connect(node)
    try:
        assert m.get_config(source="running").data_xml == expected
    finally:
        m.close_session()
