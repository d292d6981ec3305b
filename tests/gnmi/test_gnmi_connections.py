"""The gNMI server's bounds on connections (`qstrata.agents.gnmi.server.server_options`), on an
agent with TLS in its own process, with the figures lowered to seconds: connections that send
nothing or a piece of a ClientHello are closed after the handshake bound while a real client is
served; beyond the cap, connections are closed as they come; a connection with no RPC in flight
gets a GOAWAY after the idle bound; a Subscribe stream, busy or quiet, outlives the idle bound;
the stream of a subscriber that vanished (its process stopped: no FIN, no ping answered) is
closed by the server's keepalive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from gnmi_helpers import HOST, QKD, World, path, subscribe_list
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

HANDSHAKE_S = 1.5
IDLE_S = 1.5
CAP = 60
KEEPALIVE_S = 1.0
SLACK_S = 1.5
"""How late a bound may act on a loaded 2-core machine."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("gnmi-conns"), ["alice"], speed=20,
              extra={"gnmi_bounds": {"HANDSHAKE_TIMEOUT_S": HANDSHAKE_S, "IDLE_TIMEOUT_S": IDLE_S,
                                     "MAX_CONNECTIONS": CAP, "KEEPALIVE_S": KEEPALIVE_S,
                                     "KEEPALIVE_TIMEOUT_S": KEEPALIVE_S}})
    yield w
    w.stop()


def _channel(w: World) -> grpc.Channel:
    """A channel with a connection of its own (not shared through grpc's global subchannel pool)."""
    ca = Path(w.creds("alice")["ca"]).read_bytes()
    return grpc.secure_channel(f"{HOST}:{w.ports['alice']['gnmi']}", grpc.ssl_channel_credentials(ca),
                               options=(("grpc.use_local_subchannel_pool", 1),))


def _open(port: int, n: int, first: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection((HOST, port), timeout=5)
        if first:
            s.sendall(first)
        socks.append(s)
    return socks


def _closed(s: socket.socket, within: float) -> bool:
    s.settimeout(max(within, 0.001))
    try:
        return s.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def _capabilities(w: World) -> None:
    with _channel(w) as channel:
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        reply = stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=w.metadata("alice"), timeout=10)
        assert reply.gNMI_version


def test_silent_and_half_open_connections_are_closed_after_the_handshake_bound(world):
    port = world.ports["alice"]["gnmi"]
    start = time.monotonic()
    silent = _open(port, 30) + _open(port, 5, first=b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's first bytes
    assert not any(_closed(s, 0.01) for s in silent), "nothing is closed before the bound"
    _capabilities(world)  # a real client is served meanwhile
    deadline = start + HANDSHAKE_S + SLACK_S
    assert all(_closed(s, deadline - time.monotonic()) for s in silent), "closed after the handshake bound"
    for s in silent:
        s.close()


def test_connections_beyond_the_cap_are_closed_at_once(world):
    port = world.ports["alice"]["gnmi"]
    socks = _open(port, CAP + 30)
    time.sleep(0.3)
    refused = sum(_closed(s, 0.01) for s in socks)
    assert 25 <= refused <= 35, f"{refused} of {CAP + 30} closed at once (cap {CAP})"
    for s in socks:
        s.close()
    _capabilities(world)  # the slots are free again


def test_a_connection_with_no_rpc_in_flight_gets_a_goaway_after_the_idle_bound(world):
    states: list[grpc.ChannelConnectivity] = []
    with _channel(world) as channel:
        channel.subscribe(states.append, try_to_connect=False)
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=world.metadata("alice"), timeout=10)
        ready_at = time.monotonic()
        assert states[-1] == grpc.ChannelConnectivity.READY
        # grpc's idle timer fires at the bound and then re-arms for what is left: the GOAWAY comes
        # between one and two bounds after the last RPC (measured: 1.8 to 2.1 for 1.5 s)
        while states[-1] == grpc.ChannelConnectivity.READY and time.monotonic() < ready_at + 2 * (IDLE_S + SLACK_S):
            time.sleep(0.05)
        assert states[-1] == grpc.ChannelConnectivity.IDLE, f"still {states[-1]} after the idle bound"
        assert time.monotonic() - ready_at >= IDLE_S - 0.2
        # and the client simply reconnects for its next RPC
        stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=world.metadata("alice"), timeout=10)


def _subscribe(world: World, request: gnmi_pb2.SubscribeRequest, seconds: float):
    """Hold a Subscribe stream open `seconds` (the request side never ends); the arrival times of
    its responses, whether the call was still running at the end, and the channel's states."""
    stop = threading.Event()

    def requests():
        yield request
        stop.wait()

    states: list[grpc.ChannelConnectivity] = []
    times: list[float] = []
    with _channel(world) as channel:
        channel.subscribe(states.append, try_to_connect=True)
        stream = gnmi_pb2_grpc.gNMIStub(channel).Subscribe(requests(), metadata=world.metadata("alice"))

        def read():
            try:
                for _ in stream:
                    times.append(time.monotonic())
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        start = time.monotonic()
        time.sleep(seconds)
        running = not stream.done()
        stop.set()
        stream.cancel()
        reader.join(5)
    return [t - start for t in times], running, states


def test_a_sampled_subscribe_stream_outlives_the_idle_bound(world):
    request = subscribe_list(gnmi_pb2.Subscription(path=path(f"{QKD}/qkdn_id"), mode=2, sample_interval=300_000_000))
    times, running, states = _subscribe(world, request, 3 * IDLE_S)
    assert running, "the stream was cut"
    assert times and times[-1] > 2 * IDLE_S, f"samples stopped at {times[-1:]} s"
    assert grpc.ChannelConnectivity.IDLE not in states[states.index(grpc.ChannelConnectivity.READY):]


def test_a_quiet_on_change_stream_is_not_idle(world):
    """Only the initial values and sync_response, then nothing for three idle bounds: an RPC in
    flight, so the connection stays."""
    request = subscribe_list(gnmi_pb2.Subscription(path=path(f"{QKD}/qkdn_id"), mode=1))
    times, running, states = _subscribe(world, request, 3 * IDLE_S)
    assert running, "the stream was cut"
    assert times and times[-1] < IDLE_S, "a quiet stream: only its first responses"
    assert grpc.ChannelConnectivity.IDLE not in states[states.index(grpc.ChannelConnectivity.READY):]


SUBSCRIBER = """
import sys, threading, grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from qstrata.bindings.paths import gnmi_string_to_path
port, ca, user, password = sys.argv[1:5]
channel = grpc.secure_channel("127.0.0.1:" + port, grpc.ssl_channel_credentials(open(ca, "rb").read()))
sub = gnmi_pb2.Subscription(path=gnmi_string_to_path("/etsi-qkd-sdn-node:qkd_node/qkdn_id"), mode=1)
request = gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(subscription=[sub], encoding=2))
def requests():
    yield request
    threading.Event().wait()
for response in gnmi_pb2_grpc.gNMIStub(channel).Subscribe(requests(), metadata=[("username", user), ("password", password)]):
    if response.sync_response:
        print("subscribed", flush=True)
"""


def _established(port: int, pid: int) -> int:
    """The connections of process `pid` to `port` still established on its side."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return sum(f"pid={pid}," in line for line in out.splitlines())


def test_the_stream_of_a_subscriber_that_vanished_is_closed_by_keepalive(world):
    port, creds = world.ports["alice"]["gnmi"], world.creds("alice")
    proc = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, str(port), creds["ca"], creds["username"],
                             creds["password"]], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "subscribed"
        assert _established(port, proc.pid) == 1
        os.kill(proc.pid, signal.SIGSTOP)  # its kernel still ACKs, but nobody answers a ping
        stopped = time.monotonic()
        while _established(port, proc.pid) and time.monotonic() < stopped + 2 * KEEPALIVE_S + SLACK_S + 1:
            time.sleep(0.1)
        assert _established(port, proc.pid) == 0, "the server still holds the vanished subscriber's stream"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(10)
