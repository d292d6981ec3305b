"""Several collector instances share the targets through a real nats-server (JetStream KV leases):
each target is collected by exactly one live instance; when one dies, the survivor takes its
targets within 10 s; a clean stop hands them over at once."""

from __future__ import annotations

import asyncio
import time

from qstrata.collectors.app import CollectOptions, Collector
from qstrata.collectors.config import CollectorConfig, Subscription, TargetConfig
from qstrata.collectors.leases import preferred

NAMES = [f"qkd-{i:02d}" for i in range(16)]


class Recorder:
    """A TargetInput that records what the collector tells the input side."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.events: list[tuple[str, str]] = []

    def target_added(self, target: TargetConfig) -> None:
        assert target.name not in self.active
        self.active.add(target.name)
        self.events.append(("add", target.name))

    def target_changed(self, target: TargetConfig) -> None:
        self.events.append(("change", target.name))

    def target_removed(self, name: str) -> None:
        self.active.discard(name)
        self.events.append(("remove", name))


def config(names: list[str]) -> CollectorConfig:
    return CollectorConfig(None, {n: TargetConfig(n, "127.0.0.1", 9339, kind="qkd", subscriptions=(Subscription(("/x:y",)),))
                                  for n in names})


async def until(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def test_rendezvous_hashing_moves_only_the_leavers_share():
    members = ["a", "b", "c"]
    before = {t: preferred(t, members) for t in NAMES}
    after = {t: preferred(t, ["a", "b"]) for t in NAMES}
    assert set(before.values()) == {"a", "b", "c"}
    assert all(after[t] == before[t] for t in NAMES if before[t] != "c")


def test_two_instances_split_then_survivor_takes_over_within_10s(nats_server):
    async def main():
        inputs = {"a": Recorder(), "b": Recorder()}
        collectors = {name: Collector(CollectOptions(config=config(NAMES), store=None, nats=nats_server.url,
                                                     instance=name), target_input=inputs[name])
                      for name in inputs}
        for c in collectors.values():
            await c.start()
        a, b = inputs["a"], inputs["b"]

        def split() -> bool:
            return a.active | b.active == set(NAMES) and not a.active & b.active and a.active and b.active

        await until(split, 15)
        # Exactly one: stays split (no target collected twice) over several lease renewals.
        for _ in range(30):
            assert not a.active & b.active
            await asyncio.sleep(0.1)
        assert split()

        # Kill b: no lease given back, its NATS connections just vanish.
        dead = collectors["b"]
        dead.leases._task.cancel()
        await dead._lease_nc.close()
        lost = set(b.active)
        took = await until(lambda: a.active == set(NAMES), 10)
        assert took < 10 and lost
        print(f"takeover of {len(lost)} targets after a crash: {took:.1f} s")
        assert ("add", sorted(lost)[0]) in a.events

        # b comes back (a new instance): the work is split again; a hands its share over.
        inputs["b2"] = b2 = Recorder()
        collectors["b2"] = Collector(CollectOptions(config=config(NAMES), store=None, nats=nats_server.url,
                                                    instance="b2"), target_input=b2)
        await collectors["b2"].start()
        await until(lambda: b2.active and a.active | b2.active == set(NAMES) and not a.active & b2.active, 15)

        # A clean stop gives the leases back at once.
        released = set(b2.active)
        await collectors["b2"].stop()
        handover = await until(lambda: a.active == set(NAMES), 5)
        assert released and handover < 4
        print(f"handover of {len(released)} targets after a clean stop: {handover:.1f} s")
        await collectors["a"].stop()
        await dead.pipeline.stop()

    asyncio.run(main())


def test_targets_added_and_removed_while_running_follow_the_leases(nats_server):
    async def main():
        rec = Recorder()
        c = Collector(CollectOptions(config=config(NAMES[:3]), store=None, nats=nats_server.url, instance="solo"),
                      target_input=rec)
        await c.start()
        await until(lambda: rec.active == set(NAMES[:3]), 10)
        c.apply(config(NAMES[1:5]))  # qkd-00 removed, qkd-03 and qkd-04 added
        await until(lambda: rec.active == set(NAMES[1:5]), 10)
        assert ("remove", "qkd-00") in rec.events
        await c.stop()

    asyncio.run(main())
