"""`qstrata agent --world unix:PATH` as the README and `--help` describe it, with real processes:
a world service started by hand, two agents on it whose twins share its plant (their QKD link
comes up, which two agents with their own worlds never manage), the agent's exit (code 3, one
line) when the service goes away, and one-line usage errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_processes import free_port
from lxml import etree
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY

ncclient = pytest.importorskip("ncclient")
from ncclient import manager  # noqa: E402

QSTRATA = Path(sys.executable).with_name("qstrata")
SERVICE = [sys.executable, "-m", "qstrata.agents.devices.remote.service"]
NETWORK = DEFAULT_TOPOLOGY.with_name("network.yaml")
QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
LINK = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"


def agent(tmp_path: Path, name: str, kind: str, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([str(QSTRATA), "agent", "--kind", kind, "--name", name, "--state-dir", name,
                             "--netconf-port", str(port), "--world", "unix:world.sock", *extra], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, port


def session(tmp_path: Path, name: str, port: int):
    deadline = time.monotonic() + 30
    while not (tmp_path / name / "credentials.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cred = json.loads((tmp_path / name / "credentials.json").read_text())
    while True:
        try:
            return manager.connect(host="127.0.0.1", port=port, username=cred["username"], password=cred["password"],
                                   hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=10)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def link_xml(local_uuid: str, remote_uuid: str, role: str) -> str:
    return (f'<config><qkd_node xmlns="{QKD}" xmlns:t="urn:etsi:qkd:yang:etsi-qkd-node-types"><qkdn_id>{local_uuid}'
            f"</qkdn_id><qkd_links><qkd_link><qkdl_id>{LINK}</qkdl_id><qkdl_enable>true</qkdl_enable>"
            f"<qkdl_local><qkdn_id>{local_uuid}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_local>"
            f"<qkdl_remote><qkdn_id>{remote_uuid}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_remote>"
            f"<qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role}</phys_qkd_role></qkd_link></qkd_links>"
            "</qkd_node></config>")


def qkdn_id(m) -> str:
    reply = m.get_config("running", filter=("subtree", f'<qkd_node xmlns="{QKD}"><qkdn_id/></qkd_node>')).data_xml
    return etree.fromstring(reply.encode()).findtext(f".//{{{QKD}}}qkdn_id")


def test_agents_on_one_world_service_share_its_plant_and_stop_with_it(tmp_path):
    world = subprocess.Popen([*SERVICE, "--socket", "world.sock", "--topology", str(NETWORK), "--speed", "20"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [world]
    try:
        (alice, a_port), (bob, b_port), (sw1, s_port) = (agent(tmp_path, "alice", "qkd"), agent(tmp_path, "bob", "qkd"),
                                                         agent(tmp_path, "sw1", "switch"))
        procs += [alice, bob, sw1]
        with session(tmp_path, "sw1", s_port) as m:
            m.edit_config(target="running", config=(
                '<config><cross-connects xmlns="http://www.polatis.com/yang/optical-switch">'
                "<pair><ingress>1</ingress><egress>9</egress></pair><pair><ingress>2</ingress><egress>10</egress></pair>"
                "</cross-connects></config>"))
        with session(tmp_path, "alice", a_port) as ma, session(tmp_path, "bob", b_port) as mb:
            ids = qkdn_id(ma), qkdn_id(mb)
            ma.edit_config(target="running", config=link_xml(ids[0], ids[1], "TRANSMITTER"))
            mb.edit_config(target="running", config=link_xml(ids[1], ids[0], "RECEIVER"))
            deadline = time.monotonic() + 20
            while "ACTIVE" not in (status := ma.get(filter=("subtree", f'<qkd_node xmlns="{QKD}"><qkd_links/>'
                                                                       "</qkd_node>")).data_xml):
                assert time.monotonic() < deadline, status
                time.sleep(0.3)
        world.send_signal(signal.SIGKILL)
        world.wait()
        for proc in (alice, bob, sw1):
            assert proc.wait(20) == 3
            err = proc.stderr.read()  # the agent's log, then its last word
            assert "lost the world service at unix:" in err and "Traceback" not in err, err
            assert err.strip().splitlines()[-1].endswith("the device went away (see the log): stopped"), err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("args, words", [
    (["--world", "world.sock"], "--world: a world service address is unix:PATH, not 'world.sock'"),
    (["--world", "unix:w.sock", "--topology", "x.yaml"], "--world and --topology exclude each other"),
    (["--world", "unix:w.sock", "--no-twin"], "--world and --no-twin exclude each other"),
])
def test_world_usage_errors_are_one_line(tmp_path, args, words):
    result = subprocess.run([str(QSTRATA), "agent", "--kind", "qkd", "--name", "alice", "--state-dir", "a", *args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "a").exists()
