"""The main job end to end: the default testbed in one process; a controller configures a QKD
link on both ends over NETCONF and the twins bring it up with a physical key rate."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY

ncclient = pytest.importorskip("ncclient")
from ncclient import manager  # noqa: E402
from ncclient.transport import session as nc_session  # noqa: E402

QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
LINK_ID = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    nc_session.TICK = 0.001
    state = tmp_path_factory.mktemp("testbed")
    qstrata = Path(sys.executable).with_name("qstrata")
    # `testbed` is an alias of `qstrata up`; this file drives the six-node twin topology by hand
    proc = subprocess.Popen([str(qstrata), "testbed", "--topology", str(DEFAULT_TOPOLOGY), "--bare", "--no-collector",
                             "--base-port", "0", "--speed", "50", "--state-dir", str(state), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ports: dict[str, int] = {}
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.match(r"(\S+)\s+(qkd|switch|memory)\s+127\.0\.0\.1:(\d+)", line)
        if m:
            ports[m.group(1)] = int(m.group(3))
        if line.startswith("Ctrl-C"):
            break
    if "alice" not in ports:
        proc.kill()
        pytest.fail("testbed did not start:\n" + "".join(lines))
    yield state, ports
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def connect(state: Path, name: str, port: int):
    cred = json.loads((state / name / "credentials.json").read_text())
    return manager.connect(host="127.0.0.1", port=port, username=cred["username"], password=cred["password"],
                           hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=20)


def qkd_node(m) -> etree._Element:
    reply = m.get(filter=("subtree", f'<qkd_node xmlns="{QKD}"/>'))
    return etree.fromstring(reply.data_xml.encode()).find(f"{{{QKD}}}qkd_node")


def test_testbed_serves_every_kind(testbed):
    state, ports = testbed
    assert {"alice", "bob", "charlie", "sw1", "mem-a", "mem-b"} <= set(ports)
    with connect(state, "sw1", ports["sw1"]) as m:
        caps = list(m.server_capabilities)
        assert any("module=optical-switch" in c for c in caps)
        assert not any("module=etsi-qkd-sdn-node" in c for c in caps)
        data = m.get_config("running").data_xml
        assert "cross-connects" in data


def test_link_comes_up_with_a_key_rate(testbed):
    state, ports = testbed
    with connect(state, "alice", ports["alice"]) as a, connect(state, "bob", ports["bob"]) as b:
        ids = {name: qkd_node(m).findtext(f"{{{QKD}}}qkdn_id") for name, m in (("alice", a), ("bob", b))}
        assert all(ids.values())
        for m, local, remote, role in ((a, "alice", "bob", "TRANSMITTER"), (b, "bob", "alice", "RECEIVER")):
            cfg = f"""<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><qkd_node xmlns="{QKD}"
                xmlns:t="{TYPES}"><qkd_links><qkd_link><qkdl_id>{LINK_ID}</qkdl_id><qkdl_enable>true</qkdl_enable>
                <qkdl_local><qkdn_id>{ids[local]}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_local>
                <qkdl_remote><qkdn_id>{ids[remote]}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_remote>
                <qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role}</phys_qkd_role>
                </qkd_link></qkd_links></qkd_node></config>"""
            m.edit_config(target="running", config=cfg)
        deadline = time.monotonic() + 30
        status = skr = None
        while time.monotonic() < deadline:
            link = qkd_node(a).find(f".//{{{QKD}}}qkd_link")
            status = link.findtext(f"{{{QKD}}}qkdl_status")
            skr = link.findtext(f"{{{QKD}}}qkdl_performance/{{{QKD}}}skr")
            if status and status.endswith("ACTIVE") and skr and int(skr) > 0:
                break
            time.sleep(0.2)
        assert status and status.endswith(":ACTIVE"), status
        assert int(skr) > 1000, skr
        qber = qkd_node(a).findtext(f".//{{{QKD}}}phys_perf/{{{QKD}}}value")
        assert qber is not None and 0 < float(qber) < 0.11


OPSW = "http://www.polatis.com/yang/optical-switch"


def _cross_connect(m, ingress: int, egress: int) -> None:
    m.edit_config(target="running", config=f"""<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
        <cross-connects xmlns="{OPSW}"><pair><ingress>{ingress}</ingress><egress>{egress}</egress></pair>
        </cross-connects></config>""")


def _link_state(m) -> tuple[str, int]:
    link = qkd_node(m).find(f".//{{{QKD}}}qkd_link")
    return link.findtext(f"{{{QKD}}}qkdl_status") or "", int(link.findtext(f".//{{{QKD}}}skr") or 0)


def test_reroute_through_the_switch_raises_link_down_and_recovers(testbed):
    """A controller moves alice's switch port away from bob's fibre: the link drops (ETSI
    sdqkdn_link_down over NETCONF notifications), and comes back with a key rate when restored."""
    state, ports = testbed
    with connect(state, "alice", ports["alice"]) as a, connect(state, "sw1", ports["sw1"]) as s:
        status, skr = _link_state(a)
        assert status.endswith(":ACTIVE") and skr > 0, (status, skr)
        a.create_subscription()
        _cross_connect(s, 1, 11)  # alice's port now leads to charlie's fibre
        names = []
        deadline = time.monotonic() + 20
        while "sdqkdn_link_down" not in names and time.monotonic() < deadline:
            note = a.take_notification(block=True, timeout=2)
            if note is not None:
                root = etree.fromstring(note.notification_xml.encode())
                names += [etree.QName(child).localname for child in root if etree.QName(child).localname != "eventTime"]
        assert "sdqkdn_link_down" in names, names
        assert not _link_state(a)[0].endswith(":ACTIVE")
        _cross_connect(s, 1, 9)  # back to bob: re-lock, then key again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, skr = _link_state(a)
            if status.endswith(":ACTIVE") and skr > 0:
                break
            time.sleep(0.2)
        assert status.endswith(":ACTIVE") and skr > 0, (status, skr)
