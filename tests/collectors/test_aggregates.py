"""Short-lived agent entries become aggregates, never series of their own: stored pairs -> the
age and fidelity at use (histograms) and the pairs expired; app_statistics windows -> the key
consumed per application; plus the token buckets and swap statistics normalized like any leaf.
The series count stays fixed however many pairs come and go."""

from __future__ import annotations

from qstrata.bindings.tree import DataTree
from qstrata.collectors.model import Batch, Update
from qstrata.collectors.normalize import Normalizer
from qstrata.collectors.timefmt import date_and_time

S = 1_000_000_000
QFS_NODE = "11111111-2222-4333-8444-555555555555"
NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
APP = "0000000a-0000-4000-8000-0000000000a1"
SESSION = "0000000a-0000-4000-8000-0000000000c1"
TEL = "/qstrata-telemetry:telemetry"
MEM = f"{TEL}/memories/memory[node='{QFS_NODE}'][memory-id='m1']"
PAIRS = "/qstrata-qfs:qfs-node/memories/memory[memory-id='m1']/stored-pairs/pair[pair-id='{}']"


def pair(pid: str, created_s: float, fidelity: float, expiry_s: float, ts_s: float) -> list[Update]:
    base, ts = PAIRS.format(pid), int(ts_s * S)
    return [Update("mem-a", f"{base}/slot", 3, ts), Update("mem-a", f"{base}/remote-node", NODE, ts),
            Update("mem-a", f"{base}/creation-time", date_and_time(int(created_s * S)), ts),
            Update("mem-a", f"{base}/fidelity", fidelity, ts),
            Update("mem-a", f"{base}/expiry-time", date_and_time(int(expiry_s * S)), ts)]


def latest(norm: Normalizer, path: str):
    (series,) = [s for s in norm.registry if s.path == path]
    return series.value


def test_stored_pairs_become_histograms_and_an_expired_count():
    norm = Normalizer()
    norm.normalize([Update("mem-a", "/qstrata-qfs:qfs-node/uuid", QFS_NODE, 1)])
    for i in range(200):  # 200 pairs come and go: the series count does not move
        t = 100.0 + i
        norm.normalize(pair(f"p{i}", t, 0.93, t + 5.0, t + 0.3) + pair(f"q{i}", t, 0.7, t + 1.0, t + 0.9))
        norm.normalize([Update("mem-a", PAIRS.format(f"p{i}"), None, int((t + 0.5) * S)),  # used before expiry
                        Update("mem-a", PAIRS.format(f"q{i}"), None, int((t + 1.5) * S))])  # gone after: expired
        if i == 0:
            size = len(norm.registry)
    assert len(norm.registry) == size and not [s for s in norm.registry if "pair[" in s.path]
    assert latest(norm, f"{MEM}/expired-pairs") == 200
    assert latest(norm, f"{MEM}/pair-age-at-use/count") == 200
    assert abs(latest(norm, f"{MEM}/pair-age-at-use/sum") - 60.0) < 1e-6  # age at the last reading: 0.3 s
    assert latest(norm, f"{MEM}/pair-age-at-use/bucket[le='0.25']/count") == 0
    assert latest(norm, f"{MEM}/pair-age-at-use/bucket[le='0.5']/count") == 200
    assert latest(norm, f"{MEM}/pair-fidelity-at-use/bucket[le='0.9']/count") == 0
    assert latest(norm, f"{MEM}/pair-fidelity-at-use/bucket[le='0.95']/count") == 200
    # The memory goes: its aggregates end with it.
    norm.normalize([Update("mem-a", "/qstrata-qfs:qfs-node/memories/memory[memory-id='m1']", None, 400 * S)])
    assert not [s for s in norm.registry if s.path.startswith(MEM)]


def test_emptied_pair_list_keeps_the_aggregates_and_observes_its_pairs():
    """The agent deletes the `stored-pairs` container when a memory's last pair leaves: its pairs
    are gone (each observed as a single pair delete would be), the memory is not, so its
    histograms and expired count go on from where they were (they never go backwards)."""
    norm = Normalizer()
    norm.normalize([Update("mem-a", "/qstrata-qfs:qfs-node/uuid", QFS_NODE, 1)])
    norm.normalize(pair("p0", 100.0, 0.93, 105.0, 100.3))
    norm.normalize([Update("mem-a", PAIRS.format("p0"), None, int(100.5 * S))])
    norm.normalize(pair("p1", 101.0, 0.93, 106.0, 101.2) + pair("q1", 101.0, 0.7, 101.5, 101.4))
    container = "/qstrata-qfs:qfs-node/memories/memory[memory-id='m1']/stored-pairs"
    batch = norm.normalize([Update("mem-a", container, None, 102 * S)])
    assert None not in batch.values
    assert latest(norm, f"{MEM}/pair-age-at-use/count") == 2  # p0, and p1 leaving with the container
    assert abs(latest(norm, f"{MEM}/pair-age-at-use/sum") - 0.5) < 1e-6
    assert latest(norm, f"{MEM}/expired-pairs") == 1  # q1 left after its expiry
    norm.normalize(pair("p2", 103.0, 0.93, 108.0, 103.1))
    norm.normalize([Update("mem-a", PAIRS.format("p2"), None, 104 * S)])
    assert latest(norm, f"{MEM}/pair-age-at-use/count") == 3 and latest(norm, f"{MEM}/expired-pairs") == 1


def test_deleted_statistics_container_keeps_the_consumed_bits():
    norm = Normalizer()
    app = f"/etsi-qkd-sdn-node:qkd_node/qkd_applications/qkd_app[app_id='{APP}']"
    window = f"{app}/app_statistics/statistics[end_time='{{}}']/consumed_bits"
    norm.normalize([Update("alice", "/etsi-qkd-sdn-node:qkd_node/qkdn_id", NODE, 1),
                    Update("alice", window.format("2026-01-01T00:00:01Z"), 1000, 1)])
    batch = norm.normalize([Update("alice", f"{app}/app_statistics", None, 2)])
    consumed = f"{TEL}/key-delivery/application[node='{NODE}'][app-id='{APP}']/consumed-bits"
    assert None not in batch.values and latest(norm, consumed) == 1000
    norm.normalize([Update("alice", window.format("2026-01-01T00:00:02Z"), 500, 3)])
    assert latest(norm, consumed) == 1500
    norm.normalize([Update("alice", app, None, 4)])  # the application goes: its counter ends with it
    assert not [s for s in norm.registry if s.path == consumed]


def test_windows_token_buckets_and_swaps():
    norm = Normalizer()
    qkd = "/etsi-qkd-sdn-node:qkd_node"
    window = f"{qkd}/qkd_applications/qkd_app[app_id='{APP}']/app_statistics/statistics[end_time='{{}}']"
    bucket = f"/qstrata-ss:service-stratum/kme/sessions/session[session-id='{SESSION}']"
    swaps = "/qstrata-qfs:qfs-node/swap-statistics"
    batch = norm.normalize([
        Update("alice", f"{qkd}/qkdn_id", NODE, 1),
        *(Update("alice", f"{window.format(f'2026-01-01T00:00:0{i}Z')}/{leaf}", v, 1)
          for i in range(3) for leaf, v in (("consumed_bits", 1000 * (i + 1)), ("start_time", "x"))),
        Update("alice", f"{bucket}/tokens", 4096, 1), Update("alice", f"{bucket}/burst", 8192, 1),
        Update("alice", f"{bucket}/rate", 300_000, 1), Update("alice", f"{bucket}/rejected", 7, 1),
        Update("alice", f"{bucket}/admitted", 70, 1),
        Update("mem-a", "/qstrata-qfs:qfs-node/uuid", QFS_NODE, 1),
        Update("mem-a", f"{swaps}/swaps-attempted", 12, 1), Update("mem-a", f"{swaps}/swaps-succeeded", 9, 1),
        Update("mem-a", f"{swaps}/last-swap-fidelity", 0.81, 1),
    ])
    consumed = f"{TEL}/key-delivery/application[node='{NODE}'][app-id='{APP}']/consumed-bits"
    assert latest(norm, consumed) == 6000
    again = norm.normalize([Update("alice", f"{window.format('2026-01-01T00:00:02Z')}/consumed_bits", 3000, 2),
                            Update("alice", f"{window.format('2026-01-01T00:00:03Z')}/consumed_bits", 500, 2)])
    assert latest(norm, consumed) == 6500 and len(again.series) == 1  # a window counts once
    assert not [s for s in norm.registry if "statistics[" in s.path]
    tb = f"{TEL}/key-delivery/token-bucket[node='{NODE}'][session-id='{SESSION}']"
    assert [latest(norm, f"{tb}/{leaf}") for leaf in ("tokens", "burst", "rate", "rejected", "admitted")] == [
        4096, 8192, 300_000, 7, 70]
    sw = f"{TEL}/swaps/swap-node[node='{QFS_NODE}']"
    assert [latest(norm, f"{sw}/{leaf}") for leaf in ("attempted", "succeeded", "last-fidelity")] == [12, 9, 0.81]
    _validates(batch)


def _validates(batch: Batch) -> None:
    """The new telemetry leaves are valid instances of qstrata-telemetry."""
    tree = DataTree()
    for name in {s.target for s in batch.series}:
        tree.set(f"{TEL}/agents/agent[name='{name}']/reachable", "true")
    for s, v in zip(batch.series, batch.values, strict=True):
        if s.path.startswith(TEL):
            tree.set(s.path, str(v))
    tree.validate()


def test_histograms_validate():
    norm = Normalizer()
    norm.normalize([Update("mem-a", "/qstrata-qfs:qfs-node/uuid", QFS_NODE, 1)])
    norm.normalize(pair("p", 1.0, 0.9, 9.0, 1.2))
    _validates(norm.normalize([Update("mem-a", PAIRS.format("p"), None, 2 * S)]))


def test_northbound_tree_carries_the_histograms_and_new_lists():
    from qstrata.collectors.northbound import TelemetryTree

    norm = Normalizer()
    norm.normalize([Update("mem-a", "/qstrata-qfs:qfs-node/uuid", QFS_NODE, 1),
                    Update("mem-a", "/qstrata-qfs:qfs-node/swap-statistics/swaps-attempted", 3, 1)])
    norm.normalize(pair("p", 1.0, 0.9, 9.0, 1.2))
    norm.normalize([Update("mem-a", PAIRS.format("p"), None, 2 * S)])
    body = TelemetryTree().build(norm.registry, [])["qstrata-telemetry:telemetry"]
    (memory,) = body["memories"]["memory"]
    assert memory["pair-age-at-use"]["count"] == 1 and "expired-pairs" not in memory  # none expired: no value yet
    buckets = {b["le"]: b["count"] for b in memory["pair-fidelity-at-use"]["bucket"]}
    assert buckets["0.9"] == 1 and buckets["0.85"] == 0 and len(buckets) == 8
    assert body["swaps"]["swap-node"] == [{"node": QFS_NODE, "agent": "mem-a", "attempted": 3,
                                           "last-update": body["swaps"]["swap-node"][0]["last-update"]}]
