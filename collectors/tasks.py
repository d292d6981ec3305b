"""Stopping a collector's background task: the one way every long-lived worker is ended.

A worker (the NATS input's consumer, the lease round, an output's queue) is cancelled and then
awaited, so its `finally` blocks run before its owner closes what the worker was using; its
cancellation is the expected end, not an error to pass on.
"""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel `task` (if any) and wait until it has finished unwinding."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
