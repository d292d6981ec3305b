"""Frames between an agent process and the world service, sans-IO.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON holding one
object. JSON as Python's `json` module writes it (NaN and Infinity included: both ends are
qstrata); never pickle, so a peer can send nothing but data. `FrameDecoder.feed` takes bytes and
returns whole messages, `encode` turns a message into bytes; neither touches a socket (the
asyncio glue is `aio.py`).

`Outbox` is what a sender keeps until the socket takes it: frames in order, except that a frame
sent under a key (a state snapshot) replaces, in its place, an older one of that key still
waiting. A slow reader then gets the newest snapshot instead of a backlog, and every other frame
(events, replies) still arrives, in order, after a snapshot at least as new as the one it
followed (a reader keeps the newest clock it saw, as a later frame may carry an older one).
"""

from __future__ import annotations

import json
import struct
from collections import deque
from typing import Any

__all__ = ["MAX_FRAME", "FrameDecoder", "FramingError", "Outbox", "encode"]

MAX_FRAME = 64 * 1024 * 1024
"""Largest frame accepted: a whole device's state is a few hundred kB even at thousands of links."""

_HEADER = struct.Struct("!I")


class FramingError(Exception):
    """The peer sent something that is not a frame of a JSON object; the stream cannot be trusted
    any more: close the connection."""


def encode(message: dict[str, Any]) -> bytes:
    """One message as a frame."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise FramingError(f"a message of {len(body)} bytes is larger than the {MAX_FRAME} a frame may hold")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Cuts a byte stream into messages. After a `FramingError` every call raises again."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._broken: FramingError | None = None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        messages = []
        try:
            while len(self._buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self._buffer)
                if size > self.max_frame:
                    raise FramingError(f"a frame of {size} bytes is larger than the {self.max_frame} accepted")
                end = _HEADER.size + size
                if len(self._buffer) < end:
                    break
                body = bytes(self._buffer[_HEADER.size:end])
                del self._buffer[:end]
                messages.append(_decode(body))
        except FramingError as exc:
            self._broken = exc
            raise
        return messages

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (non-zero at end of stream: the peer stopped mid-frame)."""
        return len(self._buffer)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FramingError(f"a frame is not UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FramingError(f"a frame holds a JSON {type(message).__name__}, not an object")
    return message


class Outbox:
    """Frames waiting for the socket, in order; a keyed frame takes the place of the waiting frame
    of its key (in that frame's position, so what followed the old one still follows)."""

    def __init__(self) -> None:
        self._frames: deque[list[Any]] = deque()
        self._keyed: dict[str, list[Any]] = {}

    def put(self, frame: bytes, key: str | None = None) -> None:
        if key is not None:
            waiting = self._keyed.get(key)
            if waiting is not None:
                waiting[1] = frame
                return
        cell = [key, frame]
        if key is not None:
            self._keyed[key] = cell
        self._frames.append(cell)

    def take(self) -> bytes | None:
        """The next frame to write, or None when nothing waits."""
        if not self._frames:
            return None
        key, frame = self._frames.popleft()
        if key is not None:
            del self._keyed[key]
        return frame

    def __len__(self) -> int:
        return len(self._frames)
