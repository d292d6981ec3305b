"""The embedded store as an output: batches written by one thread, maintenance on a timer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import Retention, StoreWriter

if TYPE_CHECKING:
    from ..model import Batch
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.store")


class SqliteOutput:
    name = "sqlite"

    def __init__(self, path: Path | str, retention: Retention | None = None, maintenance_interval: float = 60.0) -> None:
        self.path = Path(path)
        self.retention = retention or Retention()
        self.maintenance_interval = maintenance_interval
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._writer: StoreWriter | None = None
        self._maintenance: asyncio.Task | None = None
        self.last_maintenance: dict[str, int] = {}

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self, pipeline: Pipeline) -> None:
        self._writer = await self._call(StoreWriter, self.path, self.retention)
        self._maintenance = asyncio.create_task(self._maintain_forever(), name="store-maintenance")
        log.info("store: %s (WAL), raw samples kept %gs, rollups of %gs kept %gs", self.path, self.retention.raw,
                 self.retention.bucket, self.retention.rollups)

    async def write(self, batches: list[Batch]) -> None:
        assert self._writer is not None
        await self._call(self._writer.write, batches)

    async def maintain(self) -> dict[str, int]:
        assert self._writer is not None
        self.last_maintenance = await self._call(self._writer.maintain)
        return self.last_maintenance

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_interval)
            try:
                await self.maintain()
            except Exception as exc:  # a full disk must not end maintenance for good
                log.warning("store maintenance failed: %s", exc)

    async def stop(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        if self._writer is not None:
            await self._call(self._writer.close)
        self._pool.shutdown(wait=True)

    def health(self) -> dict[str, Any]:
        w = self._writer
        return {"path": str(self.path), "samples_written": w.samples_written if w else 0,
                "alarms_written": w.alarms_written if w else 0}
