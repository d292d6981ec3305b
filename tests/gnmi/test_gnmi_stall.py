"""A subscriber that stops reading must not make the agent's memory grow: the agent blocks on its
own writes (HTTP/2 flow control) and coalesces what changes meanwhile. Here a subscriber asks for
the whole QKD node (the twin streaming a live link) as fast as it can be sent, reads one
response, then stalls for 30 s while a second, healthy subscriber keeps being served."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from gnmi_helpers import QKD, World, path, subscribe_list
from gnmi_pb import gnmi_pb2


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("gnmi-stall"), ["alice", "bob"], speed=20)
    yield w
    w.stop()


def test_a_stalled_subscriber_keeps_the_agent_rss_flat(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    everything = subscribe_list(gnmi_pb2.Subscription(path=path(QKD), mode=2, sample_interval=0))
    stalled = stub.Subscribe(iter([everything]), metadata=md)
    first = next(stalled)
    assert first.update.update  # served once; never read again
    healthy_count = [0]
    healthy = world.stub("alice").Subscribe(
        iter([subscribe_list(gnmi_pb2.Subscription(path=path(f"{QKD}/qkdn_id"), mode=2,
                                                   sample_interval=100_000_000))]), metadata=md)

    def read_healthy():
        try:
            for _ in healthy:
                healthy_count[0] += 1
        except grpc.RpcError:
            pass

    thread = threading.Thread(target=read_healthy, daemon=True)
    thread.start()
    time.sleep(5)  # buffers fill up first
    before = rss_mb(world.pid())
    served_before = healthy_count[0]
    time.sleep(25)
    after = rss_mb(world.pid())
    healthy.cancel()
    stalled.cancel()
    assert after - before < 10, (before, after)
    assert healthy_count[0] - served_before >= 100, "the healthy subscriber was not served meanwhile"
