"""The web dashboard as an output: it reads the series registry, health view and alarms the
pipeline keeps, and the embedded store, so like Prometheus it needs no queue of its own
(`wants_batches = False`). The page and its server: `qstrata.collectors.dashboard`."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dashboard.api import DashboardData
from ..dashboard.graph import Graph
from ..dashboard.server import DashboardServer

if TYPE_CHECKING:
    from ..model import Batch
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.dashboard")


class DashboardOutput:
    name = "dashboard"
    wants_batches = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0, store: Path | None = None, graph: Graph | None = None,
                 fallback: bool = False, interval: float = 1.0,
                 health: Callable[[], dict[str, Any]] | None = None) -> None:
        """`fallback`: when `port` is taken, take a free one instead of failing (`qstrata up`'s
        fixed default port may be in use by another network). `health`: the collector's whole
        health view (configuration error, targets collected, lease members), for /api/health."""
        self.host = host
        self.port = port
        self.requested_port = port
        """The port asked for; `port` differs once a taken one was replaced by a free one."""
        self.store = store
        self.graph = graph
        self.fallback = fallback
        self.interval = interval
        self.collector_health = health
        self.server: DashboardServer | None = None

    @property
    def url(self) -> str:
        return self.server.url if self.server is not None else ""

    async def start(self, pipeline: Pipeline) -> None:
        data = DashboardData(pipeline, self.store, self.graph, self.collector_health)
        self.server = DashboardServer(data, self.host, self.port, self.interval)
        try:
            await self.server.start()
        except OSError as exc:
            if not (self.fallback and self.port and exc.errno == errno.EADDRINUSE):
                data.close()
                raise
            log.info("dashboard: port %d in use, taking a free one", self.port)
            self.server = DashboardServer(data, self.host, 0, self.interval)
            await self.server.start()
        self.port = self.server.port

    async def write(self, batches: list[Batch]) -> None:
        """Nothing to do: the page reads the registry and the store."""

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def health(self) -> dict[str, Any]:
        return self.server.health() if self.server is not None else {}
