"""`qstrata up` starts a KME on every QKD agent and lists it in endpoints.json; configured over
NETCONF from that file (as a controller would, `--bare`), keys relayed through the trusted node
come out equal at both ends. In one process the KMEs reach each other through the world's channel
(a direct await); with `--processes` through the world service, which routes each call to the
agent process serving the KME called."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_processes import stop_process
from kme_net import RELAY, KmeNetwork, Link, Pair

pytest.importorskip("ncclient")

L1 = "33333333-0000-4000-8000-0000000000ab"
L2 = "33333333-0000-4000-8000-0000000000bc"
AC = Pair("cccccccc-0000-4000-8000-0000000000ac", "sae-a", ("sae-c",), "5e552222-0000-4000-8000-0000000000ac")


def gnmi_get(doc: dict, agent: str, path: str, timeout: float = 10.0) -> dict:
    """A gNMI Get (JSON_IETF) of `path` at `agent` through `up`'s gateway; waits for the value."""
    import grpc
    from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
    from qstrata.bindings.paths import gnmi_string_to_path

    entry = next(a for a in doc["agents"] if a["name"] == agent)
    cred = json.loads(Path(entry["credentials"]).read_text())
    channel = grpc.secure_channel(f"127.0.0.1:{entry['gnmi']['port']}",
                                  grpc.ssl_channel_credentials(Path(entry["gnmi"]["ca"]).read_bytes()))
    stub = gnmi_pb2_grpc.gNMIStub(channel)
    md = [("username", cred["username"]), ("password", cred["password"])]
    deadline = time.monotonic() + timeout
    try:
        while True:
            reply = stub.Get(gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target=agent), path=[gnmi_string_to_path(path)],
                                                 encoding=4), metadata=md, timeout=10)
            values = [json.loads(u.val.json_ietf_val) for n in reply.notification for u in n.update]
            if values and values[0] or time.monotonic() > deadline:
                return values[0] if values else {}
            time.sleep(0.2)
    finally:
        channel.close()


@pytest.mark.parametrize("hosting", ["one process", "--processes"])
def test_up_lists_every_kme_and_relays_keys(tmp_path: Path, hosting: str) -> None:
    qstrata = Path(sys.executable).with_name("qstrata")
    extra = ["--processes"] if hosting == "--processes" else []
    proc = subprocess.Popen([str(qstrata), "up", "--bare", "--topology", str(RELAY), "--state-dir", "state",
                             "--speed", "20", "--no-dashboard", *extra], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    endpoints = tmp_path / "state" / "endpoints.json"
    try:
        deadline = time.monotonic() + 60
        while not endpoints.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "qstrata up did not start"
            time.sleep(0.1)
        doc = json.loads(endpoints.read_text())
        for agent in doc["agents"]:
            kme = agent["kme"]
            assert kme["url"].startswith("https://127.0.0.1:")
            assert kme["ca"] == str(Path(agent["state_dir"]) / "gnmi" / "ca.pem") and Path(kme["ca"]).exists()
            assert kme["sae_dir"] == str(Path(agent["state_dir"]) / "sae")
        net = KmeNetwork.from_endpoints(endpoints)
        net.configure([Link(L1, "alice", 1, "bob", 1), Link(L2, "bob", 2, "charlie", 1)],
                      {"sae-a": "alice", "sae-c": "charlie"}, [AC])
        a, c = net.sae("alice", "sae-a"), net.sae("charlie", "sae-c")
        deadline = time.monotonic() + 30
        while True:
            status, body = net.curl("alice", a, "/api/v1/keys/sae-c/enc_keys?number=4&size=256")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert status == 200, body
        keys = {k["key_ID"]: k["key"] for k in body["keys"]}
        status, got = net.curl("charlie", c, "/api/v1/keys/sae-a/dec_keys",
                               {"key_IDs": [{"key_ID": i} for i in keys]})
        assert status == 200 and {k["key_ID"]: k["key"] for k in got["keys"]} == keys
        assert all(len(base64.b64decode(k)) == 32 for k in keys.values())
        figures = gnmi_get(doc, "alice", "/qstrata-ss:service-stratum/kme/key-delivery")
        assert int(figures["keys-delivered"]) >= 4 and int(figures["requests"]) >= 1
        hops = gnmi_get(doc, "bob", "/qstrata-ss:service-stratum/kme/key-relay")["hop"]
        assert {(h["qkdl-id"], int(h["consumed-bits"])) for h in hops} == {(L2, 4 * 256)}, \
            "the trusted node's telemetry tells the key its hop consumed"
    finally:
        stop_process(proc)
