"""Key delivery in the telemetry plane, from an application's keys to Prometheus and back to the
network: `qstrata up --bare` runs alice -100 km- bob -10 km- charlie (`topologies/telemetry.yaml`)
with its collector, configured over NETCONF as a controller would (links, SAEs, an application
relayed alice -> charlie through bob, a direct one alice -> bob); applications fetch keys over ETSI
GS QKD 014 with their certificates.

* The KMEs' figures stream with the subscriptions up's collector makes (TARGET_DEFINED: counters
  sampled every second, the route and each hop's next KME when they change) into its store,
  normalized to qstrata-telemetry (per application delivered keys and bits, their rates, refusals
  by reason, latency; per relay hop the key consumed; per store the bits drained), and a real
  Prometheus scrapes them under conventional names (`_bits_total` counters, `_seconds` gauges,
  list keys as labels); a SAMPLE subscription gets them too.
* A client draining alice's store of the 100 km link raises the collector's key-store-low alarm on
  real readings; its NETCONF action throttles the direct application's token bucket on alice, the
  store fills again and the alarm clears: raised, action, cleared, in that order in the store."""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kme_net import SS, TOPOLOGIES, KmeNetwork, Link, Pair

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "collectors"), str(TESTS / "gnmi")]
from collector_servers import PrometheusServer  # noqa: E402
from gnmi_helpers import leaf_values, path, subscribe_list, wait_until  # noqa: E402

pytest.importorskip("ncclient")
pytestmark = pytest.mark.timeout(240)

TOPOLOGY = TOPOLOGIES / "telemetry.yaml"
L1 = "44444444-0000-4000-8000-0000000000ab"
L2 = "44444444-0000-4000-8000-0000000000bc"
AC = Pair("dddddddd-0000-4000-8000-0000000000ac", "sae-a", ("sae-c",), "5e552222-0000-4000-8000-0000000000ac",
          burst=65_536)
AB = Pair("dddddddd-0000-4000-8000-0000000000ab", "sae-a", ("sae-b",), "5e552222-0000-4000-8000-0000000000ab",
          burst=262_144)
TEL = "/qstrata-telemetry:telemetry"
APP = "qstrata_telemetry_key_delivery_application"
LOW, HIGH = 65_536, 262_144
"""The key-store-low rule of the topology: below 256 keys of 256 bits, clear above 1024."""


class Client:
    """An application: HTTPS with its SAE certificate to its KME, one kept-alive connection."""

    def __init__(self, net: KmeNetwork, node: str, sae: str) -> None:
        folder = net.agents[node].state_dir / "sae"
        cert, key = folder / f"{sae}.pem", folder / f"{sae}.key"
        if not cert.exists():
            cert, key = net.sae(node, sae)
        context = ssl.create_default_context(cafile=str(net.ca(node)))
        context.load_cert_chain(cert, key)
        self.conn = http.client.HTTPSConnection("127.0.0.1", net.kme_ports[node], context=context, timeout=30)

    def call(self, path: str, body: Any = None) -> tuple[int, Any]:
        if body is None:
            self.conn.request("GET", path)
        else:
            self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        reply = self.conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Network:
    doc: dict
    net: KmeNetwork
    prom: PrometheusServer
    store: Path

    def kme(self, name: str) -> str:
        return self.net.kme_id(name)

    def latest(self, path: str, source: str) -> Any:
        """The newest sample the collector stored for the series at `path` (None: none yet)."""
        from qstrata.collectors.store import StoreReader

        reader = StoreReader(self.store)
        try:
            rows = reader.series(path=path.replace("[", "[[]"), source=source)
            found = list(reader.samples(rows, 0, 2**62, last_only=True))
        finally:
            reader.close()
        return found[-1][2] if found else None

    def alarm_log(self) -> list[dict]:
        out = subprocess.run([str(Path(sys.executable).with_name("qstrata")), "query", "alarms", "--store",
                              f"sqlite:{self.store}", "--log", "--format", "json"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return [e for e in json.loads(out.stdout) if e["rule"] == "key-store-low"]


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    base = tmp_path_factory.mktemp("kme-telemetry")
    qstrata = Path(sys.executable).with_name("qstrata")
    with open(base / "up.log", "wb") as log:
        proc = subprocess.Popen([str(qstrata), "up", "--bare", "--topology", str(TOPOLOGY), "--state-dir", "state",
                                 "--no-dashboard"], cwd=base, stdout=log, stderr=subprocess.STDOUT)
    endpoints = base / "state" / "endpoints.json"
    prom = None
    try:
        assert wait_until(lambda: endpoints.exists() or proc.poll() is not None, 60) and proc.poll() is None, \
            (base / "up.log").read_text()[-3000:]
        doc = json.loads(endpoints.read_text())
        exposition = doc["collector"]["prometheus"].removeprefix("http://").split("/")[0]
        prom = PrometheusServer(base / "prometheus", [exposition]).start()
        net = KmeNetwork.from_endpoints(endpoints)
        net.configure([Link(L1, "alice", 1, "bob", 1), Link(L2, "bob", 2, "charlie", 1)],
                      {"sae-a": "alice", "sae-b": "bob", "sae-c": "charlie"}, [AC, AB])
        yield Network(doc, net, prom, Path(doc["collector"]["store"]))
    finally:
        if prom is not None:
            prom.stop()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def sample_subscription(doc: dict, agent: str, seconds: float = 3.0) -> dict[str, Any]:
    """What a gNMI SAMPLE subscription (1 s) to `agent`'s service stratum and applications gets in
    `seconds`, through up's gateway: data path -> last value."""
    import grpc
    from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

    entry = next(a for a in doc["agents"] if a["name"] == agent)
    cred = json.loads(Path(entry["credentials"]).read_text())
    channel = grpc.secure_channel(f"127.0.0.1:{entry['gnmi']['port']}",
                                  grpc.ssl_channel_credentials(Path(entry["gnmi"]["ca"]).read_bytes()))
    request = subscribe_list(*(gnmi_pb2.Subscription(path=path(p), mode=2, sample_interval=10**9) for p in (
        "/etsi-qkd-sdn-node:qkd_node/qkd_applications", "/qstrata-ss:service-stratum/kme")),
        prefix=gnmi_pb2.Path(target=agent))

    def requests():
        yield request
        time.sleep(seconds + 1)

    seen: dict[str, Any] = {}
    call = gnmi_pb2_grpc.gNMIStub(channel).Subscribe(requests(), timeout=seconds, metadata=[
        ("username", cred["username"]), ("password", cred["password"])])
    try:
        for reply in call:
            seen.update(leaf_values(reply))
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
    finally:
        channel.close()
    return seen


def test_key_delivery_streams_into_the_store_and_prometheus(network: Network):
    alice, bob, charlie = (network.kme(n) for n in ("alice", "bob", "charlie"))
    master, slave = Client(network.net, "alice", "sae-a"), Client(network.net, "charlie", "sae-c")
    asked: list[int] = []

    def enc_keys(number: int) -> tuple[int, Any]:
        status, body = master.call(f"/api/v1/keys/sae-c/enc_keys?number={number}&size=256")
        asked.append(status)
        return status, body

    try:
        status, body = wait_until(lambda: (lambda r: r[0] == 200 and r)(enc_keys(4)), 30)  # until the link makes key
        assert status == 200, body
        keys = [k["key_ID"] for k in body["keys"]]
        for _ in range(10):  # at a steady pace: the collector's rates need readings either side of keys
            status, body = enc_keys(4)
            assert status == 200, body
            keys += [k["key_ID"] for k in body["keys"]]
            time.sleep(0.3)
        status, body = slave.call("/api/v1/keys/sae-a/dec_keys", {"key_IDs": [{"key_ID": k} for k in keys]})
        assert status == 200 and len(body["keys"]) == 44, body
        status, body = enc_keys(512)  # beyond the bucket's 65536 bits
        assert status == 503 and "rate limited" in body["message"], body
    finally:
        master.close()
        slave.close()
    bits = 44 * 256

    # Prometheus: counters of bits as _bits_total, list keys (application, reason, link) as labels
    prom = network.prom
    ac = f'app_id="{AC.app_id}"'
    prom.wait_for(f'{APP}_delivered_bits_total{{{ac},source="alice",node="{alice}"}} == {bits}')
    prom.wait_for(f'{APP}_delivered_keys_total{{{ac},source="alice"}} == 44')
    prom.wait_for(f'{APP}_delivered_keys_total{{{ac},source="charlie",node="{charlie}"}} == 44')  # the slave's
    prom.wait_for(f'{APP}_requests_total{{{ac},source="alice"}} == {len(asked)}')
    early = asked.count(503) - 1  # refused while the link was locking: not enough key yet
    if early:
        prom.wait_for(f'qstrata_telemetry_key_delivery_refused_requests_total{{{ac},reason="not-enough-key",'
                      f'source="alice"}} == {early}')
    prom.wait_for(f'qstrata_telemetry_key_delivery_refused_requests_total{{{ac},reason="rate-limited",'
                  f'source="alice"}} == 1')
    prom.wait_for(f'qstrata_telemetry_key_relay_hop_consumed_bits_total{{link_id="{L1}",source="alice"}} == {bits}')
    prom.wait_for(f'qstrata_telemetry_key_relay_hop_consumed_bits_total{{link_id="{L2}",source="bob"}} == {bits}')
    prom.wait_for(f'qstrata_telemetry_qkd_links_qkd_link_store_drained_bits_total{{link_id="{L2}",'
                  f'source="charlie"}} >= {bits}')
    prom.wait_for(f'qstrata_telemetry_qkd_links_qkd_link_store_filled_bits_total{{link_id="{L1}",'
                  f'source="alice"}} > 0')
    (latency,) = prom.wait_for(f'{APP}_latency_seconds{{{ac},source="alice"}} > 0')
    assert float(latency["value"][1]) < 5
    prom.wait_for(f'max_over_time({APP}_delivered_bits_per_second{{{ac},source="alice"}}[1m]) > 0')
    meta = prom.api("metadata")
    for counter in (f"{APP}_delivered_bits", f"{APP}_requests", "qstrata_telemetry_key_relay_hop_consumed_bits"):
        assert (meta.get(counter) or meta[f"{counter}_total"])[0]["type"] == "counter", counter
    for gauge in (f"{APP}_latency_seconds", f"{APP}_delivered_bits_per_second"):
        assert meta[gauge][0]["type"] == "gauge", gauge
    assert prom.query(f"{APP}_route") == []  # strings are in the store, not in Prometheus

    # the store: what is not a number came through on change (the subscription predates it)
    app = f"{TEL}/key-delivery/application[node='{alice}'][app-id='{AC.app_id}']"
    assert wait_until(lambda: network.latest(f"{app}/route", "alice"), 10) == f"{alice} {bob} {charlie}"
    assert (network.latest(f"{app}/master-sae", "alice"), network.latest(f"{app}/slave-saes", "alice")) == (
        "sae-a", "sae-c")
    assert network.latest(f"{TEL}/key-relay/hop[node='{alice}'][link-id='{L1}']/next-hop", "alice") == bob
    assert network.latest(f"{TEL}/key-relay/hop[node='{bob}'][link-id='{L2}']/next-hop", "bob") == charlie

    # a SAMPLE subscription gets the KME's figures as they are (the agent's own leaves)
    seen = sample_subscription(network.doc, "alice")
    delivery = f"/etsi-qkd-sdn-node:qkd_node/qkd_applications/qkd_app[app_id='{AC.app_id}']/qstrata-ss:key-delivery"
    assert [e.string_val for e in seen[f"{delivery}/route"].element] == [alice, bob, charlie]
    assert seen[f"{delivery}/bits-delivered"] == bits and seen[f"{delivery}/refused[reason='rate-limited']/count"] == 1
    assert seen[f"/qstrata-ss:service-stratum/kme/key-relay/hop[qkdl-id='{L1}']/consumed-bits"] == bits


def test_a_store_that_runs_low_raises_the_alarm_whose_action_throttles_the_application(network: Network):
    alice = network.kme("alice")
    stored = f"{TEL}/qkd-links/qkd-link[node='{alice}'][link-id='{L1}']/key-available"
    assert wait_until(lambda: (network.latest(stored, "alice") or 0) > HIGH, 30), "alice's store never filled"
    assert network.alarm_log() == []  # it was empty while the link came up: not 'running low' (arm)
    client = Client(network.net, "alice", "sae-a")
    answers: list[tuple[float, int, str]] = []

    def fetch(pause: float = 0.0) -> None:
        status, body = client.call("/api/v1/keys/sae-b/enc_keys", {"number": 512, "size": 256})
        answers.append((time.monotonic(), status, "" if status == 200 else body["message"]))
        time.sleep(pause)

    try:
        began = time.monotonic()
        deadline = began + 60
        while not any(e["event"] == "raised" for e in network.alarm_log()):  # as fast as it can: drain
            assert time.monotonic() < deadline, f"no alarm: {answers[-3:]}"
            for _ in range(20):
                fetch()
        raised_at = time.monotonic()
        while not any(e["event"] == "cleared" for e in network.alarm_log()):  # at a steady pace
            assert time.monotonic() < raised_at + 60, f"never cleared: {network.alarm_log()} {answers[-3:]}"
            fetch(0.1)
        print(f"raised {raised_at - began:.1f} s after the drain began, cleared {time.monotonic() - raised_at:.1f} s "
              f"after; {len(answers)} requests")
    finally:
        client.close()
    story = network.alarm_log()
    assert [(e["event"], e["agent"], e.get("action") or "", e.get("outcome") or "") for e in story] == [
        ("raised", "alice", "", ""), ("action", "alice", "throttle-direct", "ok"), ("cleared", "alice", "", "")], story
    raised, _, cleared = (e["detail"] for e in story)
    resource = f"/qstrata-ss:service-stratum/kme/key-stores/key-store[qkdl-id='{L1}']"
    assert raised.startswith("key-store-low: key-available ") and f"below {LOW} on {resource}" in raised, raised
    assert cleared.startswith("key-store-low: cleared, key-available ") and f"above {HIGH} for 3 readings" in cleared
    # keys were served; whether the drain also emptied the store before the throttle came ("not enough
    # key") is a race between the collector's alarm and the requests, not what this test is about
    assert any(status == 200 for _, status, _ in answers)
    limited = [t for t, status, message in answers if status == 503 and "rate limited" in message]
    assert limited and "rate 8192 bit/s" in [m for _, _, m in answers if "rate limited" in m][-1]
    rate = network.net.get("alice", f'<service-stratum xmlns="{SS}"><kme><sessions><session><session-id>'
                                    f'{AB.session}</session-id></session></sessions></kme></service-stratum>')
    assert rate.findtext(f".//{{{SS}}}rate") == "8192"  # the action's edit, in alice's running configuration


def test_the_built_in_network_throttles_its_applications_when_alices_store_runs_low(tmp_path):
    """The rule `qstrata up` runs on the built-in network, as its collector loads it: armed, on
    alice's stores (the masters' KME), its action a NETCONF edit of qstrata-ss token buckets."""
    import yaml
    from qstrata.agents.testbed.network import NETWORK_TOPOLOGY, UpOptions, check
    from qstrata.bindings.tree import DataTree
    from qstrata.collectors.actions import render
    from qstrata.collectors.config import load
    from qstrata.collectors.model import Alarm

    _, topology, network = check(UpOptions(topology=NETWORK_TOPOLOGY))
    plan = network.collector
    stand_ins = [{"name": n.name, "kind": n.kind, "address": "127.0.0.1:1", "netconf": "127.0.0.1:2", "username": "x"}
                 for n in topology.nodes.values()]
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump({"targets": stand_ins, "alarms": list(plan.alarms), "actions": list(plan.actions)}))
    config = load(path)
    (rule,) = [r for r in config.rules if r.name == "key-store-low"]
    assert rule.arm and rule.targets == frozenset({"alice"}) and rule.path == f"{TEL}/qkd-links/qkd-link/key-available"
    assert rule.below is not None and rule.clear is not None and rule.clear > rule.below
    (action,) = [a for a in config.actions if a.name == rule.actions[0]]
    edit = render(action.options["config"], Alarm("id", "alice", "", rule.severity, 1, None, "t", rule.name), xml=True)
    tree = DataTree.parse(edit, "xml", config_only=True, validate=False)
    sessions = tree.to_python()["qstrata-ss:service-stratum"]["kme"]["sessions"]["session"]
    assert len(sessions) == 2 and {s["rate"] for s in sessions} == {"300000"}, sessions
