"""The gNMI input's pure parts: SubscribeResponse bytes -> Updates (every TypedValue kind, deletes,
prefixes, duplicates, sync), the SubscribeRequest built from a target's subscriptions, and the
retry policy (which statuses are retried soon, which are failures)."""

from __future__ import annotations

import random

import grpc
import pytest
from gnmi_pb import gnmi_pb2
from qstrata.bindings.paths import xpath_to_gnmi
from qstrata.collectors.config import Subscription
from qstrata.collectors.gnmi_codec import (
    ON_CHANGE,
    PROTO,
    SAMPLE,
    PathCache,
    ResponseDecoder,
    subscribe_request,
)
from qstrata.collectors.model import Update
from qstrata.collectors.session import Outcome, RetryPolicy, classify

LINK = "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='6f']"


def _response(updates, deletes=(), prefix=None, ts=7) -> bytes:
    return gnmi_pb2.SubscribeResponse(update=gnmi_pb2.Notification(
        timestamp=ts, prefix=prefix or gnmi_pb2.Path(target="alice"),
        update=[gnmi_pb2.Update(path=xpath_to_gnmi(p), val=v, duplicates=d) for p, v, d in updates],
        delete=[xpath_to_gnmi(p) for p in deletes])).SerializeToString()


TV = gnmi_pb2.TypedValue


@pytest.mark.parametrize(("leaf", "value", "expected"), [
    ("qkdl_performance/skr", TV(uint_val=1200), 1200),
    ("qkdl_performance/skr", TV(int_val=-3), -3),
    ("qkdl_performance/skr", TV(double_val=0.031), 0.031),
    ("qkdl_performance/skr", TV(decimal_val=gnmi_pb2.Decimal64(digits=31, precision=3)), 0.031),
    ("qkdl_status", TV(string_val="etsi-qkd-node-types:ACTIVE"), "etsi-qkd-node-types:ACTIVE"),
    ("qkdl_enable", TV(bool_val=True), True),
    ("qkdl_enable", TV(json_ietf_val=b"false"), False),
    ("qkdl_performance/skr", TV(json_ietf_val=b'"1200"'), 1200),   # RFC 7951: uint64 is a string
    ("qkdl_status", TV(json_val=b'"x"'), "x"),
    ("qkdl_enable", TV(json_ietf_val=b"[null]"), True),
    ("qkdl_status", TV(leaflist_val=gnmi_pb2.ScalarArray(element=[TV(string_val="a"), TV(uint_val=2)])), '["a",2]'),
    ("qkdl_status", TV(bytes_val=b"\x01\x02"), "AQI="),
])
def test_values(leaf, value, expected):
    decoded = ResponseDecoder("alice").decode(_response([(f"{LINK}/{leaf}", value, 0)]))
    assert decoded.updates == [Update("alice", f"{LINK}/{leaf}", expected, 7)]


def test_deletes_duplicates_prefix_and_cache():
    dec = ResponseDecoder("alice")
    prefix = gnmi_pb2.Path(target="alice", elem=xpath_to_gnmi(LINK).elem)
    data = _response([("/qkdl_status", TV(string_val="up"), 3), ("/qkdl_performance/skr", TV(uint_val=5), 0)],
                     deletes=["/qkdl_performance"], prefix=prefix)
    for _ in range(2):  # the second time from the path cache
        d = dec.decode(data)
        assert d.duplicates == 3 and not d.sync
        assert [(u.path, u.value) for u in d.updates] == [
            (f"{LINK}/qkdl_status", "up"), (f"{LINK}/qkdl_performance/skr", 5), (f"{LINK}/qkdl_performance", None)]
    # the same relative path under no prefix is another path
    assert dec.decode(_response([("/qkdl_status", TV(string_val="up"), 0)])).updates[0].path == "/qkdl_status"


def test_targets_share_one_path_cache():
    """Every target's decoder files a path in one cache: the same path from two targets is one
    string, each update still names its own target; the cache is bounded and refills."""
    cache = PathCache(max_entries=2)
    alice, bob = ResponseDecoder("alice", cache), ResponseDecoder("bob", cache)
    data = _response([(f"{LINK}/qkdl_status", TV(string_val="etsi-qkd-node-types:ACTIVE"), 0)])
    a, b = alice.decode(data).updates[0], bob.decode(data).updates[0]
    assert (a.target, b.target) == ("alice", "bob") and a.path == f"{LINK}/qkdl_status"
    assert a.path is b.path and len(cache) == 1
    assert a.value is b.value  # short string values (enumerations, identities) are shared too
    more = _response([(f"{LINK}/{leaf}", TV(uint_val=1), 0) for leaf in ("qkdl_performance/skr", "x", "y")])
    assert [u.path for u in bob.decode(more).updates] == [f"{LINK}/qkdl_performance/skr", f"{LINK}/x", f"{LINK}/y"]
    assert len(cache) == 4  # over the bound: cleared at the next notification
    assert alice.decode(data).updates[0].path == a.path and len(cache) == 1
    assert ResponseDecoder("carol").decode(data).updates[0].path is ResponseDecoder("dave").decode(data).updates[0].path


def test_sync_and_garbage():
    dec = ResponseDecoder("alice")
    assert dec.decode(gnmi_pb2.SubscribeResponse(sync_response=True).SerializeToString()).sync
    with pytest.raises(ValueError):
        dec.decode(b"\xff\xff\xff")
    assert dec.decode(_response([(f"{LINK}/x", TV(any_val={}), 0)])).skipped == 1


def test_subscribe_request():
    req = subscribe_request("alice", (Subscription(("/etsi-qkd-sdn-node:qkd_node",), "sample", 2.5),
                                      Subscription(("/qstrata-ss:service-stratum", "/a:b"), "on-change")))
    sl = req.subscribe
    assert sl.prefix.target == "alice" and sl.encoding == PROTO and sl.mode == 0
    assert [(s.path.elem[0].name, s.mode, s.sample_interval) for s in sl.subscription] == [
        ("etsi-qkd-sdn-node:qkd_node", SAMPLE, 2_500_000_000), ("qstrata-ss:service-stratum", ON_CHANGE, 0),
        ("a:b", ON_CHANGE, 0)]


@pytest.mark.parametrize(("code", "details", "state", "words"), [
    (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", "backoff", "unreachable"),
    (grpc.StatusCode.UNAVAILABLE, "Ssl handshake failed: CERTIFICATE_VERIFY_FAILED", "failed", "TLS"),
    (grpc.StatusCode.UNAUTHENTICATED, "wrong username or password", "failed", "login refused"),
    (grpc.StatusCode.INVALID_ARGUMENT, "unknown element 'nope'", "failed", "INVALID_ARGUMENT"),
    (grpc.StatusCode.UNIMPLEMENTED, "x", "failed", "UNIMPLEMENTED"),
    (grpc.StatusCode.PERMISSION_DENIED, "x", "failed", "PERMISSION_DENIED"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "too many sessions", "backoff", "RESOURCE_EXHAUSTED"),
    (grpc.StatusCode.INTERNAL, "boom", "backoff", "INTERNAL"),
    (None, "", "backoff", "ended"),
])
def test_classify(code, details, state, words):
    outcome = classify(code, details)
    assert outcome.state == state and words in outcome.reason


CLOSED = "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:2: Socket closed"
REFUSED = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote "
           "host: Connection refused")


@pytest.mark.parametrize(("details", "context", "state", "reason"), [
    (REFUSED, {"tls": True, "address": "127.0.0.1:1"}, "backoff",
     "connection refused: nothing listens on 127.0.0.1:1 (is the agent running?)"),
    ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:2: connection attempt timed out "
     "before receiving SETTINGS frame", {"tls": False, "address": "h:2", "connect_timeout": 10}, "backoff",
     "timed out: h:2 took the connection but did not answer within 10 s (is the agent stopped or overloaded?)"),
    ("failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:2: Handshake read failed "
     "(Endpoint closing)", {"tls": True, "address": "h:2"}, "backoff",
     "timed out: h:2 took the connection but did not answer (is the agent stopped or overloaded?)"),
    ("Stream removed (Socket closed)", {"tls": True, "established": True}, "backoff",
     "connection lost: Stream removed (Socket closed)"),
    ("Stream removed (ping timeout)", {"tls": True, "established": True}, "backoff",
     "timed out: the agent stopped answering (keepalive ping unanswered: Stream removed (ping timeout))"),
    # gRPC says only "Socket closed" in set-up; what the port answered our own TLS handshake with says why
    (CLOSED, {"tls": False, "speaks": "tls"}, "failed",
     f"TLS mismatch: the collector speaks plain text, the target serves TLS on this port (give its CA: tls-ca, or "
     f"the credentials file's ca) ({CLOSED})"),
    (CLOSED, {"tls": True, "speaks": "plain"}, "failed",
     "TLS mismatch: the collector speaks TLS, the target does not speak TLS on this port (it serves plain text: "
     f"connect without TLS) ({CLOSED})"),
    (CLOSED, {"tls": True, "speaks": "mutual-tls"}, "failed",
     f"TLS refused: the target requires a client certificate (mutual TLS) and the collector has none to give ({CLOSED})"),
    (CLOSED, {"tls": True, "speaks": "tls"}, "backoff", f"connection lost during set-up: the target closed it ({CLOSED})"),
    (CLOSED, {"tls": True, "speaks": None}, "backoff", f"connection lost during set-up: the target closed it ({CLOSED})"),
])
def test_classify_names_what_happened(details, context, state, reason):
    """Refused, timed out, lost: not a TLS problem, whatever the session offered."""
    assert classify(grpc.StatusCode.UNAVAILABLE, details, **context) == Outcome(state, reason)


def test_classify_names_an_unknown_target():
    assert classify(grpc.StatusCode.NOT_FOUND, "unknown target 'bob'", address="h:1") == Outcome(
        "failed", "unknown target 'bob' at h:1 (it serves other targets: check gnmi-target)")
    assert classify(grpc.StatusCode.NOT_FOUND, "no data at /x") == Outcome("failed", "NOT_FOUND: no data at /x")


def test_backoff_grows_with_jitter_and_caps():
    policy = RetryPolicy(initial=0.2, factor=2, maximum=5, jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay(i, rng) for i in range(10)]
    assert 0.16 <= delays[0] <= 0.24 and all(d <= 6.0 for d in delays) and delays[-1] >= 4.0
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jitter: capped delays still differ
