"""Waiting in black-box tests: poll a condition until it holds or a deadline passes.

A plain module (tests/ is on sys.path, like agent_processes.py), so every test polls the same way:
the last value is returned rather than asserted, so the caller's assert message shows what was
seen when time ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, step: float = 0.1) -> T:
    """The first truthy value of `predicate()` within `timeout` s, else its value at the end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()
