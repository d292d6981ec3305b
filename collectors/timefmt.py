"""Nanosecond timestamps <-> yang:date-and-time (RFC 3339) and the time arguments of the CLI."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

NS = 1_000_000_000
MAX_NS = 2**63 - 1
"""The largest timestamp or duration in ns the store holds (an SQLite INTEGER), year 2262."""


def date_and_time(ns: int) -> str:
    """UTC, millisecond precision, as libyang accepts and agents print (``...T15:06:52.000Z``)."""
    dt = datetime.fromtimestamp(ns // NS, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % NS) // 1_000_000:03d}Z"


def parse_date_and_time(text: str) -> int:
    """RFC 3339 (``Z`` or an offset) -> ns since the epoch."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    whole = int(dt.replace(microsecond=0).timestamp())
    return whole * NS + dt.microsecond * 1000


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(text: str | int | float) -> float:
    """``90``, ``1.5s``, ``500ms``, ``10m``, ``2h``, ``7d``, ``1w`` -> seconds. ValueError if not."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 500ms, 10m, 2h, 7d)")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {text!r} (too long)")
    return seconds


def duration_ns(text: str) -> int:
    """`parse_duration` in ns, no longer than the store can count (`MAX_NS`)."""
    ns = int(parse_duration(text) * NS)
    if ns > MAX_NS:
        raise ValueError(f"duration {text!r} is too long: at most {MAX_NS // NS // 86400}d")
    return ns


def parse_time_arg(text: str, now_ns: int | None = None) -> int:
    """A CLI time: ``now``, a duration ago (``1h``, ``-1h``, ``30m``) or RFC 3339 -> ns."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    text = text.strip()
    if text == "now":
        return now_ns
    try:
        ns = now_ns - int(parse_duration(text.lstrip("-")) * NS)
    except ValueError:
        try:
            ns = parse_date_and_time(text)
        except ValueError:
            raise ValueError(f"not a time: {text!r} (now, 15m, 2h, 7d ago, or RFC 3339 like "
                             "2026-01-02T03:04:05Z)") from None
    if not -MAX_NS <= ns <= MAX_NS:  # the store's timestamps are 64-bit ns: years 1677 to 2262
        raise ValueError(f"time out of range: {text!r} (the store holds years 1677 to 2262)")
    return ns
