"""RFC 6242 message framing, sans-IO.

A NETCONF session over SSH is a byte stream; this module cuts it into messages and back.
Two framings exist (RFC 6242 s4):

* end-of-message framing (NETCONF 1.0): each message ends with ``]]>]]>``;
* chunked framing (NETCONF 1.1): ``\\n#<chunk-size>\\n<chunk-data>`` repeated, then ``\\n##\\n``.

Every session starts in end-of-message framing because the ``<hello>`` messages are always
framed that way. Chunked framing applies from the first message *after* the peer's hello when
both peers advertise ``urn:ietf:params:netconf:base:1.1`` -- and a peer may put its first
chunked ``<rpc>`` in the very same TCP segment as its hello. So the `Framer` hands back the
first message (the peer's hello) and then holds whatever follows, undecoded, until the session
has read the capabilities and calls `Framer.use_chunked` or `Framer.use_end_of_message`; those
return the messages that were waiting, parsed with the right framing.

The framer never touches a socket: `Framer.feed` takes bytes and returns complete messages,
`Framer.frame` takes a message and returns bytes to write.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "END_OF_MESSAGE",
    "MAX_CHUNK_SIZE",
    "Framer",
    "Framing",
    "FramingError",
    "MessageTooLarge",
]

END_OF_MESSAGE = b"]]>]]>"
"""The RFC 6242 s4.3 end-of-message delimiter (NETCONF 1.0 framing)."""

MAX_CHUNK_SIZE = 4294967295
"""Largest chunk-size the RFC 6242 s4.2 grammar allows."""

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""Largest message accepted by default. Clients send small RPCs; a bigger one is an attack
or a bug, and buffering it would cost the whole server memory."""

_MAX_CHUNK_SIZE_DIGITS = len(str(MAX_CHUNK_SIZE))
_EOM_TAIL = len(END_OF_MESSAGE) - 1
_WHITESPACE = b" \t\r\n"
_LF = 0x0A
_HASH = 0x23


class FramingError(Exception):
    """The peer broke RFC 6242 framing. The stream can no longer be trusted: close the session
    (RFC 6242 s4.2: "the peer MUST terminate the NETCONF session")."""


class MessageTooLarge(FramingError):
    """A message (or one chunk) is larger than the configured maximum; close the session."""


class Framing(Enum):
    """The two RFC 6242 framing mechanisms."""

    END_OF_MESSAGE = "end-of-message"
    CHUNKED = "chunked"


class _State(Enum):
    HELLO = "hello"  # end-of-message framing, at most one message (the peer's hello)
    HELD = "held"  # hello delivered, waiting for the session to pick the framing
    RUNNING = "running"
    BROKEN = "broken"  # a FramingError was raised; every later call raises again


class Framer:
    """Cuts a NETCONF byte stream into messages and frames outgoing ones (RFC 6242 s4).

    Starts in end-of-message framing. After the first complete message (the peer's
    ``<hello>``), input is held until `use_chunked` or `use_end_of_message` is called; both
    return the messages already buffered. Output framing follows the same switch, so the
    session must write its own hello before switching (a server does so at session start).
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self.max_message_size = max_message_size
        self._framing = Framing.END_OF_MESSAGE
        self._state = _State.HELLO
        self._buf = bytearray()
        self._pos = 0  # start of the unconsumed input in _buf
        self._scan = 0  # end-of-message: where the next delimiter search starts
        # chunked framing: pieces of the message being assembled and its size so far
        self._chunks: list[bytearray] = []
        self._chunks_size = 0
        self._chunk_remaining = 0  # data bytes still expected for the current chunk

    @property
    def framing(self) -> Framing:
        """The framing in force for input and output."""
        return self._framing

    @property
    def chunked(self) -> bool:
        """True once chunked framing (NETCONF 1.1) is in force."""
        return self._framing is Framing.CHUNKED

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a message (for tests and metrics)."""
        return len(self._buf) - self._pos + self._chunks_size - self._chunk_remaining

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every message they complete, in order.

        Raises `FramingError` (or `MessageTooLarge`) when the stream is unusable; the session
        must then be closed, and every later call raises again.
        """
        if self._state is _State.BROKEN:
            raise FramingError("framing already failed; the session must be closed")
        if data:
            self._buf += data
        if self._state is _State.HELD:
            if len(self._buf) - self._pos > self.max_message_size + _EOM_TAIL:
                self._fail()
                raise MessageTooLarge("too much input before the session chose its framing")
            return []
        return self._drain()

    def use_chunked(self) -> list[bytes]:
        """Switch input and output to chunked framing, as RFC 6242 s4.1 requires once both
        hellos advertised base:1.1. Returns the messages already buffered after the hello."""
        return self._decide(Framing.CHUNKED)

    def use_end_of_message(self) -> list[bytes]:
        """Keep end-of-message framing for the rest of the session (a base:1.0-only peer).
        Returns the messages already buffered after the hello."""
        return self._decide(Framing.END_OF_MESSAGE)

    def frame(self, message: bytes) -> bytes:
        """Frame one outgoing message in the current framing."""
        if self._framing is Framing.END_OF_MESSAGE:
            return bytes(message) + END_OF_MESSAGE
        if not message:
            raise ValueError("chunked framing cannot carry an empty message")
        if len(message) <= MAX_CHUNK_SIZE:
            return b"\n#%d\n" % len(message) + bytes(message) + b"\n##\n"
        parts = []
        view = memoryview(message)
        for start in range(0, len(message), MAX_CHUNK_SIZE):
            chunk = view[start : start + MAX_CHUNK_SIZE]
            parts.append(b"\n#%d\n" % len(chunk))
            parts.append(bytes(chunk))
        parts.append(b"\n##\n")
        return b"".join(parts)

    # -- internals -------------------------------------------------------------------------

    def _decide(self, framing: Framing) -> list[bytes]:
        if self._state is _State.BROKEN:
            raise FramingError("framing already failed; the session must be closed")
        if self._state is _State.RUNNING and framing is not self._framing:
            raise RuntimeError("the framing can only be chosen once, after the hello")
        self._framing = framing
        if self._state is _State.RUNNING:
            return []
        self._state = _State.RUNNING
        return self._drain()

    def _drain(self) -> list[bytes]:
        try:
            if self._framing is Framing.END_OF_MESSAGE:
                messages = self._drain_end_of_message()
            else:
                messages = self._drain_chunked()
        except FramingError:
            self._fail()
            raise
        self._compact()
        return messages

    def _fail(self) -> None:
        self._state = _State.BROKEN
        self._buf.clear()
        self._pos = self._scan = 0
        self._chunks.clear()
        self._chunks_size = self._chunk_remaining = 0

    def _compact(self) -> None:
        # Dropping the consumed prefix is O(remaining); done once per call, so a message
        # arriving in many reads is never re-copied per read.
        if self._pos and self._pos == len(self._buf):
            # All consumed: a new buffer, since a bytearray keeps its capacity (a session that once
            # received 16 MiB would hold 16 MiB for the rest of its life).
            self._buf = bytearray()
            self._scan = self._pos = 0
        elif self._pos:
            del self._buf[: self._pos]
            self._scan = max(0, self._scan - self._pos)
            self._pos = 0

    def _drain_end_of_message(self) -> list[bytes]:
        messages: list[bytes] = []
        buf = self._buf
        while self._state is not _State.HELD:
            start = max(self._scan, self._pos)
            end = buf.find(END_OF_MESSAGE, start)
            if end < 0:
                # Resume just before the tail, which may hold a partial delimiter.
                self._scan = max(self._pos, len(buf) - _EOM_TAIL)
                if len(buf) - self._pos > self.max_message_size + _EOM_TAIL:
                    raise MessageTooLarge(
                        f"message exceeds {self.max_message_size} bytes without an end-of-message delimiter"
                    )
                break
            if end - self._pos > self.max_message_size:
                raise MessageTooLarge(f"message exceeds {self.max_message_size} bytes")
            message = bytes(buf[self._pos : end].strip(_WHITESPACE))
            self._pos = end + len(END_OF_MESSAGE)
            self._scan = self._pos
            if not message:
                continue  # stray whitespace between delimiters carries no message
            messages.append(message)
            if self._state is _State.HELLO:
                self._state = _State.HELD
        return messages

    def _drain_chunked(self) -> list[bytes]:
        messages: list[bytes] = []
        buf = self._buf
        while True:
            if self._chunk_remaining:
                available = len(buf) - self._pos
                if not available:
                    break
                take = min(available, self._chunk_remaining)
                self._chunks.append(buf[self._pos : self._pos + take])
                self._pos += take
                self._chunk_remaining -= take
                continue
            if not self._chunks and not self._skip_interframe_whitespace():
                break
            header = self._parse_chunk_header()
            if header is None:
                break
            if header == 0:  # end-of-chunks
                if not self._chunks:
                    raise FramingError("end-of-chunks without any chunk")
                messages.append(b"".join(self._chunks))
                self._chunks = []
                self._chunks_size = 0
                continue
            if self._chunks_size + header > self.max_message_size:
                raise MessageTooLarge(f"message exceeds {self.max_message_size} bytes")
            self._chunks_size += header
            self._chunk_remaining = header
        return messages

    def _skip_interframe_whitespace(self) -> bool:
        """Tolerate whitespace between messages (some 1.0-era clients send a newline after
        ``]]>]]>``). The LF that starts a chunk header is kept. Returns False when more input
        is needed to decide."""
        buf = self._buf
        while self._pos < len(buf) and buf[self._pos] in _WHITESPACE:
            if buf[self._pos] == _LF:
                if self._pos + 1 >= len(buf):
                    return False
                if buf[self._pos + 1] == _HASH:
                    return True
            self._pos += 1
        return self._pos < len(buf)

    def _parse_chunk_header(self) -> int | None:
        """Parse ``\\n#<size>\\n`` (returns size) or ``\\n##\\n`` (returns 0) at the current
        position; None when the header is not complete yet."""
        buf = self._buf
        pos = self._pos
        have = len(buf) - pos
        if have < 1:
            return None
        if buf[pos] != _LF:
            raise FramingError(f"expected a chunk header, got byte {buf[pos]:#04x}")
        if have < 2:
            return None
        if buf[pos + 1] != _HASH:
            raise FramingError(f"expected '#' in chunk header, got byte {buf[pos + 1]:#04x}")
        if have < 3:
            return None
        if buf[pos + 2] == _HASH:
            if have < 4:
                return None
            if buf[pos + 3] != _LF:
                raise FramingError("malformed end-of-chunks marker")
            self._pos = pos + 4
            return 0
        # chunk-size = 1*DIGIT1 0*DIGIT (no leading zero), at most 10 digits, then LF
        digits_end = pos + 2
        limit = min(len(buf), pos + 2 + _MAX_CHUNK_SIZE_DIGITS + 1)
        while digits_end < limit and 0x30 <= buf[digits_end] <= 0x39:
            digits_end += 1
        ndigits = digits_end - (pos + 2)
        if ndigits > _MAX_CHUNK_SIZE_DIGITS:
            raise FramingError("chunk-size has too many digits")
        if digits_end == len(buf):
            return None  # the size (or its LF) is still in flight
        if ndigits == 0:
            raise FramingError("chunk-size missing in chunk header")
        if buf[pos + 2] == 0x30:
            raise FramingError("chunk-size must not start with 0")
        if buf[digits_end] != _LF:
            raise FramingError("chunk-size must be followed by LF")
        size = int(buf[pos + 2 : digits_end])
        if size > MAX_CHUNK_SIZE:
            raise FramingError(f"chunk-size {size} exceeds {MAX_CHUNK_SIZE}")
        self._pos = digits_end + 1
        return size
