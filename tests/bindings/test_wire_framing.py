"""RFC 6242 framing: pure, table-driven."""

from __future__ import annotations

import pytest
from qstrata.bindings.wire.framing import (
    MAX_CHUNK_SIZE,
    Framer,
    Framing,
    FramingError,
    MessageTooLarge,
)

HELLO = b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>'
RPC = b'<rpc message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"\n#%d\n%s" % (len(c), c) for c in chunks) + b"\n##\n"


def after_hello(mode: Framing, **kwargs: int) -> Framer:
    framer = Framer(**kwargs)
    assert framer.feed(HELLO + b"]]>]]>") == [HELLO]
    if mode is Framing.CHUNKED:
        assert framer.use_chunked() == []
    else:
        assert framer.use_end_of_message() == []
    return framer


# -- end-of-message framing (1.0) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "messages"),
    [
        (RPC + b"]]>]]>", [RPC]),
        (RPC + b"]]>]]>" + RPC + b"]]>]]>", [RPC, RPC]),
        (b"\n" + RPC + b"\n]]>]]>\n", [RPC]),  # whitespace around a message is not part of it
        (b"]]>]]>  ]]>]]>", []),  # empty messages are skipped
        (RPC + b"]]>]]", []),  # delimiter incomplete
        (b"<a>]]</a>]]>]]>", [b"<a>]]</a>"]),  # partial delimiter inside the message
    ],
)
def test_end_of_message(stream: bytes, messages: list[bytes]) -> None:
    framer = after_hello(Framing.END_OF_MESSAGE)
    assert framer.feed(stream) == messages


def test_end_of_message_split_at_every_byte() -> None:
    stream = RPC + b"]]>]]>" + RPC + b"]]>]]>"
    for cut in range(len(stream) + 1):
        framer = after_hello(Framing.END_OF_MESSAGE)
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == [RPC, RPC], cut
    framer = after_hello(Framing.END_OF_MESSAGE)
    assert [m for byte in stream for m in framer.feed(bytes([byte]))] == [RPC, RPC]


def test_end_of_message_output() -> None:
    assert Framer().frame(RPC) == RPC + b"]]>]]>"


# -- chunked framing (1.1) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "messages"),
    [
        # RFC 6242 s4.2 example: one message in two chunks
        (b'\n#4\n<rpc\n#18\n message-id="102"\n\n#79\n', []),
        (chunked(RPC), [RPC]),
        (chunked(RPC[:10], RPC[10:]), [RPC]),
        (chunked(RPC) + chunked(b"<a/>"), [RPC, b"<a/>"]),
        (chunked(b"x" * 1000), [b"x" * 1000]),
        (chunked(b"\n##\n"), [b"\n##\n"]),  # chunk data may hold anything, even markers
        (b"\n" + chunked(RPC), [RPC]),  # stray newline between messages is tolerated
        (b"\r\n \n" + chunked(RPC), [RPC]),
        (chunked(RPC)[:-1], []),  # end-of-chunks incomplete
    ],
)
def test_chunked(stream: bytes, messages: list[bytes]) -> None:
    framer = after_hello(Framing.CHUNKED)
    assert framer.feed(stream) == messages


def test_chunked_split_at_every_byte() -> None:
    stream = chunked(RPC[:7], RPC[7:30], RPC[30:]) + chunked(b"<b/>")
    for cut in range(len(stream) + 1):
        framer = after_hello(Framing.CHUNKED)
        assert framer.feed(stream[:cut]) + framer.feed(stream[cut:]) == [RPC, b"<b/>"], cut
    framer = after_hello(Framing.CHUNKED)
    assert [m for byte in stream for m in framer.feed(bytes([byte]))] == [RPC, b"<b/>"]
    assert framer.buffered == 0


def test_chunked_round_trip() -> None:
    framer = after_hello(Framing.CHUNKED)
    assert framer.frame(RPC) == chunked(RPC)
    assert framer.feed(framer.frame(RPC) + framer.frame(b"<c/>")) == [RPC, b"<c/>"]
    with pytest.raises(ValueError):
        framer.frame(b"")


@pytest.mark.parametrize(
    "header",
    [
        b"\n#0\n",  # chunk-size is 1..4294967295
        b"\n#01\n",  # no leading zero
        b"\n#\n",  # no digits
        b"\n#12a\n",  # not a digit
        b"\n#4294967296\n",  # one too many
        b"\n#99999999999\n",  # too many digits
        b"\n#-1\n",
        b"\n# 4\n",
        b"\n#4 \n",
        b"#4\n",  # missing LF
        b"\n4\n",  # missing '#'
        b"<rpc/>",  # a 1.0 message where chunks were due
        b"\n##\n",  # end-of-chunks without a chunk
        b"\n##x",  # malformed end-of-chunks
        b"\n#4\nabcdX",  # data longer than declared: the next header is garbage
    ],
)
def test_chunked_malformed_headers(header: bytes) -> None:
    framer = after_hello(Framing.CHUNKED)
    with pytest.raises(FramingError):
        framer.feed(header + b"\n##\n")
    with pytest.raises(FramingError):  # the framer stays broken: the session must close
        framer.feed(chunked(RPC))


def test_largest_chunk_size_is_accepted_syntactically() -> None:
    framer = after_hello(Framing.CHUNKED, max_message_size=MAX_CHUNK_SIZE)
    assert framer.feed(b"\n#%d\n" % MAX_CHUNK_SIZE + b"abc") == []
    assert framer.buffered == 3


# -- switching after the hello ---------------------------------------------------------------


def test_hello_then_chunked_rpc_in_the_same_read() -> None:
    framer = Framer()
    assert framer.feed(HELLO + b"]]>]]>" + chunked(RPC) + chunked(b"<x/>")[:5]) == [HELLO]
    assert framer.feed(b"") == []  # held until the session decides
    assert framer.use_chunked() == [RPC]
    assert framer.chunked and framer.framing is Framing.CHUNKED
    assert framer.feed(chunked(b"<x/>")[5:]) == [b"<x/>"]


def test_hello_then_end_of_message_rpc_in_the_same_read() -> None:
    framer = Framer()
    assert framer.feed(HELLO + b"]]>]]>" + RPC + b"]]>]]>" + RPC) == [HELLO]
    assert framer.feed(b"]]>]]>") == []
    assert framer.use_end_of_message() == [RPC, RPC]
    assert not framer.chunked


def test_hello_split_then_switch() -> None:
    stream = HELLO + b"]]>]]>" + chunked(RPC)
    for cut in range(len(stream) + 1):
        framer = Framer()
        got = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert got == [HELLO], cut
        assert framer.use_chunked() == [RPC], cut


def test_framing_is_chosen_once() -> None:
    framer = after_hello(Framing.CHUNKED)
    assert framer.use_chunked() == []  # idempotent
    with pytest.raises(RuntimeError):
        framer.use_end_of_message()


def test_output_follows_the_switch() -> None:
    framer = Framer()
    assert framer.frame(HELLO) == HELLO + b"]]>]]>"  # the server hello goes out in 1.0 framing
    framer.feed(HELLO + b"]]>]]>")
    framer.use_chunked()
    assert framer.frame(RPC) == chunked(RPC)


# -- size limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "stream"),
    [
        (Framing.END_OF_MESSAGE, b"x" * 101 + b"]]>]]>"),
        (Framing.END_OF_MESSAGE, b"x" * 200),  # no delimiter at all: refused before it ends
        (Framing.CHUNKED, b"\n#101\n"),  # one chunk too large: refused from its header
        (Framing.CHUNKED, b"\n#60\n" + b"x" * 60 + b"\n#41\n"),  # chunks adding up
        (Framing.CHUNKED, b"\n#4294967295\n"),
    ],
)
def test_message_too_large(mode: Framing, stream: bytes) -> None:
    framer = after_hello(mode, max_message_size=100)
    with pytest.raises(MessageTooLarge):
        framer.feed(stream)
    with pytest.raises(FramingError):
        framer.feed(b"")


@pytest.mark.parametrize("mode", list(Framing))
def test_message_at_the_limit_is_accepted(mode: Framing) -> None:
    framer = after_hello(mode, max_message_size=100)
    message = b"<a>" + b"x" * 93 + b"</a>"
    assert len(message) == 100
    stream = message + b"]]>]]>" if mode is Framing.END_OF_MESSAGE else chunked(message[:50], message[50:])
    assert framer.feed(stream) == [message]


def test_oversized_hello_and_held_input_are_refused() -> None:
    with pytest.raises(MessageTooLarge):
        Framer(max_message_size=100).feed(b"<hello>" + b"x" * 200)
    framer = Framer(max_message_size=100)
    framer.feed(HELLO + b"]]>]]>")
    with pytest.raises(MessageTooLarge):
        framer.feed(b"x" * 200)


def test_large_message_in_small_reads_is_linear() -> None:
    """16 MiB in 4 KiB reads: would take minutes if each read rescanned the buffer."""
    payload = b"<data>" + b"y" * (16 * 1024 * 1024 - 13) + b"</data>"
    for mode in Framing:
        framer = after_hello(mode, max_message_size=len(payload))
        stream = framer.frame(payload)
        view = memoryview(stream)
        got: list[bytes] = []
        for start in range(0, len(stream), 4096):
            got += framer.feed(bytes(view[start : start + 4096]))
        assert got == [payload]
