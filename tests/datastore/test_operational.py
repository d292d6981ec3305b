"""The core's operational read and the changes it hands to subscribers, with no front end: one read
per device tick, stamped with when the values were produced; a commit's change read from running
(a leaf back at its default is an update, a deleted entry one delete); a device announcement's
change compared with what was handed out last (only leaves that moved, a list entry that went is
one delete). Real DataTrees and schema, a small device with a clock the test moves."""

from __future__ import annotations

import asyncio
import copy

from qstrata.agents.datastore.operational import OperationalChange
from qstrata.agents.datastore.store import SYSTEM, Datastore
from qstrata.agents.devices.base import Inventory
from qstrata.agents.events import DeviceEvent
from qstrata.bindings.edit import EditOperation
from qstrata.bindings.schema import get_schema
from qstrata.bindings.tree import DataTree

SW = "optical-switch"
PORT = f"/{SW}:port-config/port[port-id='3']"
POWER = f"/{SW}:opm-power/port"


class Clock:
    def __init__(self) -> None:
        self.settled_ns, self.settled_wall_ns = 1, 1_700_000_000_000_000_000

    def unix_ns(self, device_ns: int | None = None) -> int:
        return self.settled_wall_ns


class Device:
    name = "device"

    def __init__(self) -> None:
        self.clock = Clock()
        self.reads = 0
        self.state = {f"{SW}:opm-power": {"port": [{"port-id": 1, "power": "-3.00"}, {"port-id": 2, "power": "-4.00"}]}}

    async def start(self) -> Inventory:
        return Inventory(modules=(SW,))

    async def prepare(self, txn) -> None: ...

    async def commit(self, txn) -> None: ...

    async def abort(self, txn) -> None: ...

    def read_state(self) -> dict:
        self.reads += 1
        return copy.deepcopy(self.state)

    def tick(self, **powers: str) -> None:
        self.state[f"{SW}:opm-power"]["port"] = [{"port-id": int(p[1:]), "power": v} for p, v in powers.items()]
        self.clock.settled_ns += 1_000_000_000
        self.clock.settled_wall_ns += 1_000_000_000


def _store(device: Device) -> Datastore:
    schema = get_schema((SW,))
    store = Datastore(schema, drivers=[device])
    store.load(DataTree.from_python({f"{SW}:port-config": {"port": [{"port-id": 3}, {"port-id": 4}]}}, schema=schema,
                                   config_only=True))
    return store


def test_one_read_per_device_tick_stamped_when_its_values_were_made():
    device = Device()
    store = _store(device)
    first = store.read_operational()
    assert first.data[f"{SW}:port-config"]["port"][0]["label"] == ""  # with defaults
    assert first.data[f"{SW}:opm-power"]["port"][0]["power"] == "-3.00"
    assert first.time_ns == max(device.clock.settled_wall_ns, store.installed_ns["running"])
    assert store.read_operational().data is first.data and device.reads == 1  # same tick: same snapshot
    device.tick(p1="-5.00")
    second = store.read_operational()
    assert device.reads == 2 and second.data is not first.data
    assert second.data[f"{SW}:opm-power"]["port"] == [{"port-id": 1, "power": "-5.00"}]
    assert "opm-power" not in str(store.read_operational(config_only=True).data)
    assert store.operational().get(f"{POWER}[port-id='1']/power").value() == -5.0


def test_subscribers_get_what_changed_from_the_core():
    async def go() -> list[OperationalChange]:
        device = Device()
        store = _store(device)
        got: list[OperationalChange] = []
        store.watch_operational(got.append)

        async def settle() -> None:
            for _ in range(3):
                await asyncio.sleep(0)

        label = EditOperation("merge", f"{PORT}/label", DataTree.from_python(
            {f"{SW}:port-config": {"port": [{"port-id": 3, "label": "to-bob"}]}}, schema=store.schema, validate=False))
        await store.edit("running", [label], SYSTEM)
        await settle()
        await store.edit("running", [EditOperation("remove", f"{PORT}/label")], SYSTEM)  # back to its default
        await settle()
        await store.edit("running", [EditOperation("remove", PORT)], SYSTEM)
        await settle()
        five = f"/{SW}:port-config/port[port-id='5']"
        await store.edit("running", [EditOperation("merge", five, DataTree.from_python(
            {f"{SW}:port-config": {"port": [{"port-id": 5}]}}, schema=store.schema, validate=False))], SYSTEM)
        await settle()
        device.tick(p1="-3.00", p3="-1.00")  # port 1 unchanged, port 2 gone, port 3 new
        store.bus.publish(DeviceEvent("state", paths=(f"/{SW}:opm-power",)))
        await settle()
        return got

    got = asyncio.run(go())
    assert [dict((p, v) for p, (_, v) in c.updates.items()) for c in got[:2]] == [
        {f"{PORT}/label": "to-bob"}, {f"{PORT}/label": ""}]
    assert got[2].updates == {} and list(got[2].deletes) == [PORT], (got[2].counts, list(got[2].updates), got[2].deletes)
    five = f"/{SW}:port-config/port[port-id='5']"
    assert {p.removeprefix(five) for p in got[3].updates} >= {"/port-id", "/label"}  # with its defaults
    assert all(p.startswith(five + "/") for p in got[3].updates) and not got[3].deletes, got[3]  # port 4 untouched
    got.pop(3)
    assert {p: v for p, (_, v) in got[3].updates.items()} == {
        f"{POWER}[port-id='3']/port-id": 3, f"{POWER}[port-id='3']/power": "-1.00"}
    assert list(got[3].deletes) == [f"{POWER}[port-id='2']"]
    assert len(got) == 4
