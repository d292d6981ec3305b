"""Samples are split into notifications that every client accepts: below gRPC's default 4 MiB
receive limit (pygnmi and gnmic keep it), one notification per sample while it fits."""

from __future__ import annotations

from gnmi_pb import gnmi_pb2
from qstrata.agents.gnmi import subscribe
from qstrata.bindings.wire.gnmi_encoding import sample_response


class _Encoder:
    """Stands in for the agent's encoder: one framed Update of a given size per leaf."""

    def update_bytes(self, path, node, value, encoding, duplicates) -> bytes:
        update = gnmi_pb2.Update(path=gnmi_pb2.Path(elem=[gnmi_pb2.PathElem(name=path)]),
                                 val=gnmi_pb2.TypedValue(string_val=value))
        return b"\x22" + _varint(update.ByteSize()) + update.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _session() -> subscribe.SubscribeSession:
    session = subscribe.SubscribeSession.__new__(subscribe.SubscribeSession)
    session.target = type("T", (), {"encoder": _Encoder()})()
    session.encoding = 4
    return session


def test_every_notification_stays_under_the_clients_default_limit():
    leaves = [(f"leaf{i}", None, "x" * 1000) for i in range(10_000)]  # ~10 MB of updates
    chunks = _session()._encode_chunks(leaves)
    assert len(chunks) >= 4
    for chunk in chunks:
        response = sample_response(1, b"", chunk)
        assert len(response) < 4 << 20
        parsed = gnmi_pb2.SubscribeResponse.FromString(response)
        assert len(parsed.update.update) > 0
    total = sum(len(gnmi_pb2.SubscribeResponse.FromString(sample_response(1, b"", c)).update.update) for c in chunks)
    assert total == 10_000


def test_a_sample_of_ten_thousand_small_leaves_is_one_notification():
    leaves = [(f"leaf{i}", None, "ACTIVE") for i in range(10_000)]
    chunks = _session()._encode_chunks(leaves)
    assert len(chunks) == 1
    assert len(gnmi_pb2.SubscribeResponse.FromString(sample_response(1, b"", chunks[0])).update.update) == 10_000
