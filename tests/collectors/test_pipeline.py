"""The pipeline: a slow or failing output never blocks ingestion; bounded queues drop the oldest
and count it; a clean stop writes everything; drained() gives back-pressure to inputs that can wait."""

from __future__ import annotations

import asyncio
import time

from qstrata.collectors.model import Batch, TargetStatus, Update
from qstrata.collectors.pipeline import Pipeline


class Recorder:
    """An output that records what it is given; `gate` closed = a stalled output."""

    def __init__(self, name: str = "rec", fail: int = 0) -> None:
        self.name = name
        self.gate = asyncio.Event()
        self.gate.set()
        self.batches: list[Batch] = []
        self.fail = fail
        self.stopped = False

    async def start(self, pipeline) -> None:
        pass

    async def write(self, batches):
        await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.batches.extend(batches)

    async def stop(self) -> None:
        self.stopped = True

    def health(self):
        return {}

    def values(self) -> list:
        return [v for b in self.batches for v in b.values]


def updates(n: int, start: int = 0, target: str = "t1") -> list[Update]:
    return [Update(target, f"/vendor-x:box/sensor[id='{i % 50}']/value", start + i, start + i) for i in range(n)]


def test_stalled_output_does_not_block_ingestion_and_drops_oldest():
    async def main():
        slow, fast = Recorder("slow"), Recorder("fast")
        slow.gate.clear()
        pipeline = Pipeline([slow, fast], queue_items=1000)
        await pipeline.start()
        t0 = time.perf_counter()
        for k in range(100):
            pipeline.ingest(updates(100, start=k * 100))
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - t0
        await asyncio.wait_for(fast_drained(pipeline), 5)
        health = pipeline.health()["outputs"]
        assert health["fast"]["dropped"] == 0 and len(fast.values()) == 10_000
        assert health["slow"]["dropped"] >= 8_000 and health["slow"]["queued"] <= 1100
        assert health["slow"]["state"] == "behind" or health["slow"]["queued"] <= 1000
        assert elapsed < 2.0, elapsed  # 10,000 updates with a dead output: no waiting anywhere
        slow.gate.set()
        await pipeline.stop(timeout=5)
        kept = slow.values()
        assert kept and kept[-1] == 9_999  # the newest survived, the oldest went
        assert len(kept) + pipeline.health()["outputs"]["slow"]["dropped"] - 1 <= 10_000
        assert slow.stopped and fast.stopped

    async def fast_drained(pipeline):
        while pipeline.queues[1].queued:
            await asyncio.sleep(0.01)

    asyncio.run(main())


def test_failing_output_is_retried_then_writes():
    async def main():
        flaky = Recorder("flaky", fail=2)
        pipeline = Pipeline([flaky])
        pipeline.queues[0].retry_delays = (0.01, 0.01, 0.01)
        await pipeline.start()
        pipeline.ingest(updates(10))
        await asyncio.wait_for(pipeline.drained(), 5)
        h = pipeline.health()["outputs"]["flaky"]
        assert (h["errors"], h["written"], h["dropped"]) == (2, 10, 0)
        assert "disk full" in h["last_error"]
        assert flaky.values() == list(range(10))
        await pipeline.stop()

    asyncio.run(main())


def test_clean_stop_writes_everything_queued():
    async def main():
        rec = Recorder()
        rec.gate.clear()
        pipeline = Pipeline([rec])
        await pipeline.start()
        for k in range(20):
            pipeline.ingest(updates(50, start=k * 50))
        asyncio.get_running_loop().call_later(0.2, rec.gate.set)
        await pipeline.stop(timeout=5)
        assert sorted(rec.values()) == list(range(1000))

    asyncio.run(main())


def test_target_status_reaches_outputs_and_health():
    async def main():
        rec = Recorder()
        pipeline = Pipeline([rec])
        await pipeline.start()
        pipeline.ingest(updates(3, target="alice"))
        pipeline.target_status(TargetStatus("alice", reachable=False, state="backoff", reason="connection refused",
                                            reconnects=2, duplicates=7, timestamp_ns=1))
        await pipeline.drained()
        assert not pipeline.target_up("alice") and pipeline.target_up("never-seen")
        t = pipeline.health()["targets"]["alice"]
        assert (t["reachable"], t["reason"], t["reconnects"], t["duplicates"], t["updates_received"]) == \
            (False, "connection refused", 2, 7, 3)
        statuses = [s for b in rec.batches for s in b.statuses]
        assert statuses and statuses[0].reason == "connection refused"
        await pipeline.stop()

    asyncio.run(main())
