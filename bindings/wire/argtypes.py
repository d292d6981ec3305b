"""The ``type=`` of every numeric option of the ``qstrata`` commands, in one place.

argparse checks them before anything starts, so careless input (``--speed nan``, ``--timeout inf``,
``--netconf-port 99999``, ``--max-size -1``) is one usage line and exit code 2, never a network
that never configures, a socket that wraps the port modulo 65536, or a traceback later on.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

__all__ = ["port", "positive_float", "non_negative_float", "positive_int", "non_negative_int"]

MAX_PORT = 65535


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _checked(kind: type, ok: Callable[[float], bool], says: str, name: str) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{says}, got {text}")
        return value

    check.__name__ = check.__qualname__ = name
    return check


port: Callable[[str], int] = _checked(int, lambda v: 0 <= v <= MAX_PORT, f"a port is 0..{MAX_PORT} (0: any free port)",
                                      "port")
"""A TCP port, 0..65535; 0 asks the system for a free one."""
positive_float: Callable[[str], float] = _checked(float, lambda v: v > 0, "must be positive", "positive_float")
"""Seconds, a speed factor: finite and more than 0."""
non_negative_float: Callable[[str], float] = _checked(float, lambda v: v >= 0, "must not be negative",
                                                      "non_negative_float")
"""Seconds where 0 means something the option documents (none, never)."""
positive_int: Callable[[str], int] = _checked(int, lambda v: v >= 1, "must be at least 1", "positive_int")
"""A count or a size: at least 1."""
non_negative_int: Callable[[str], int] = _checked(int, lambda v: v >= 0, "must not be negative", "non_negative_int")
"""A count where 0 means something the option documents."""
