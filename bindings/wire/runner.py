"""The event loop every long-running command runs on (agents, `qstrata up`, the collector).

uvloop when installed (measured: +5-10% NETCONF ops/s, scripts/bench_netconf.py), else asyncio;
``QSTRATA_EVENT_LOOP=asyncio`` forces the standard loop. Its own module so that the agent's CLI,
the testbed and the collector share it without importing each other.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run", "run_until_signalled"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new event loop (uvloop unless told otherwise)."""
    if os.environ.get("QSTRATA_EVENT_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """`run` ``main(stop)``, where `stop` is set by SIGINT or SIGTERM: a command stops cleanly on
    Ctrl-C and on a service manager's stop alike."""

    async def guarded() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    return run(guarded())
