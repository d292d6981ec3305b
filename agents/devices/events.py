"""Fan-out of DeviceEvents from synchronous ticks to any number of async readers.

World ticks are plain function calls, while `DeviceDriver.events()` is an async iterator; the
hub buffers per subscriber so a slow reader loses nothing and `close()` ends every iterator.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from .base import DeviceEvent


class EventHub:
    def __init__(self) -> None:
        self._queues: list[deque[DeviceEvent]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._listeners: list[Callable[[DeviceEvent], None]] = []
        self.closed = False

    def add_listener(self, listener: Callable[[DeviceEvent], None]) -> None:
        """Synchronous observer (tests, in-process collectors)."""
        self._listeners.append(listener)

    def publish(self, event: DeviceEvent) -> None:
        if self.closed:
            return
        for listener in self._listeners:
            listener(event)
        for queue in self._queues:
            queue.append(event)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return  # no new list per event nobody waits for (every twin publishes every tick)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def subscribe(self) -> AsyncIterator[DeviceEvent]:
        """Events published from now on, until `close`."""
        queue: deque[DeviceEvent] = deque()
        self._queues.append(queue)
        try:
            while True:
                while queue:
                    yield queue.popleft()
                if self.closed:
                    return
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter
        finally:
            self._queues.remove(queue)
