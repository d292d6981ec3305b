"""agents/datastore as a library (no NETCONF): atomic transactions, device vetoes, locks, the
candidate, confirmed-commit rollback, journal recovery and the whole-tree validation fallback.
Real DataTrees, the real schema and a real (if small) device driver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from qstrata.agents.datastore.errors import DatastoreError, ErrorKind
from qstrata.agents.datastore.store import SYSTEM, Datastore, SessionInfo
from qstrata.agents.devices.base import WALL_CLOCK, ConfigTransaction, DeviceRefusal, Inventory
from qstrata.bindings.edit import EditOperation, annotated_operations, operation_units
from qstrata.bindings.locality import schema_path_of
from qstrata.bindings.tree import DataTree

TOP = "etsi-qkd-sdn-node:qkd_node"
NODE_ID = "00000000-0000-0000-0000-00000000000a"
SS = "qstrata-ss:service-stratum"


def link_id(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012x}"


def link_path(i: int) -> str:
    return f"/{TOP}/qkd_links/qkd_link[qkdl_id='{link_id(i)}']"


def initial() -> DataTree:
    return DataTree.from_python({TOP: {"qkdn_id": NODE_ID}}, config_only=True)


def link_tree(*ids: int, wavelength: int | None = None) -> DataTree:
    links = []
    for i in ids:
        entry: dict[str, Any] = {"qkdl_id": link_id(i), "qkdl_type": "etsi-qkd-node-types:PHYS"}
        if wavelength is not None:
            entry["phys_wavelength"] = str(wavelength)
        links.append(entry)
    return DataTree.from_python({TOP: {"qkd_links": {"qkd_link": links}}}, validate=False)


def merge(*ids: int, **kw: Any) -> EditOperation:
    return EditOperation("merge", link_path(ids[0]), link_tree(*ids, **kw))


def create(i: int) -> EditOperation:
    return EditOperation("create", link_path(i), link_tree(i))


def delete(i: int) -> EditOperation:
    return EditOperation("delete", link_path(i))


def printed(store: Datastore, name: str = "running") -> str:
    return store.get_config(name).print("json")


def run(coro):
    return asyncio.run(coro)


class Recorder:
    """A device driver that refuses one wavelength and records what it was asked."""

    name = "recorder"
    clock = WALL_CLOCK

    def __init__(self, refuse_wavelength: str | None = None) -> None:
        self.refuse = refuse_wavelength
        self.prepared: list[tuple] = []
        self.committed: list[tuple] = []

    async def start(self) -> Inventory:
        return Inventory(modules=("etsi-qkd-sdn-node",))

    async def prepare(self, txn: ConfigTransaction) -> None:
        self.prepared.append(txn.changes)
        for change in txn.changes:
            if change.path.endswith("/phys_wavelength") and change.new == self.refuse:
                raise DeviceRefusal(f"wavelength {change.new} nm is not supported", change.path)
            if self.refuse in _wavelengths(change.new):  # a created entry or container
                raise DeviceRefusal(f"wavelength {self.refuse} nm is not supported", change.path)

    async def commit(self, txn: ConfigTransaction) -> None:
        self.committed.append(txn.changes)

    async def abort(self, txn: ConfigTransaction) -> None:
        pass

    def read_state(self) -> dict:
        return {}

    def events(self):
        raise NotImplementedError

    async def stop(self) -> None:
        pass


def _wavelengths(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {str(value["phys_wavelength"])} if "phys_wavelength" in value else set()
        return found.union(*(_wavelengths(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_wavelengths(v) for v in value))
    return set()


def loaded(state_dir: Path | None = None, drivers=()) -> Datastore:
    store = Datastore(state_dir=state_dir, drivers=drivers)
    store.load(initial())
    return store


ALICE = SessionInfo(session_id=1, username="alice")
BOB = SessionInfo(session_id=2, username="bob")


# -- atomic transactions ---------------------------------------------------------------------------


def test_a_failing_operation_leaves_the_tree_exactly_as_it_was():
    async def go():
        store = loaded()
        await store.edit("running", [merge(1, 2)], ALICE)
        before, version = printed(store), store.versions["running"]
        # the first operation alone would succeed; the second fails (create of existing data)
        with pytest.raises(DatastoreError) as err:
            await store.edit("running", [merge(3), create(1)], ALICE)
        assert err.value.kind is ErrorKind.EXISTS
        assert printed(store) == before and store.versions["running"] == version
        with pytest.raises(DatastoreError) as missing:
            await store.edit("running", [delete(2), delete(9)], ALICE)
        assert missing.value.kind is ErrorKind.MISSING
        assert printed(store) == before
    run(go())


def test_invalid_result_is_refused_and_nothing_changes():
    async def go():
        store = loaded()
        await store.edit("running", [merge(1)], ALICE)
        before = printed(store)
        with pytest.raises(DatastoreError) as err:  # qkdn_id is mandatory
            await store.edit("running", [merge(2), EditOperation("delete", f"/{TOP}/qkdn_id")], ALICE)
        assert err.value.kind is ErrorKind.MANDATORY
        assert printed(store) == before
    run(go())


def test_a_device_refusal_rolls_back():
    async def go():
        device = Recorder(refuse_wavelength="1310")
        store = loaded(drivers=[device])
        await store.edit("running", [merge(1, wavelength=1550)], ALICE)
        before = printed(store)
        with pytest.raises(DatastoreError) as err:
            await store.edit("running", [merge(2, wavelength=1550), merge(3, wavelength=1310)], ALICE)
        assert err.value.kind is ErrorKind.DEVICE_REFUSED and "1310" in err.value.message
        assert printed(store) == before
        assert len(device.committed) == 1 and len(device.prepared) == 2
        # the driver saw the change list, not a whole tree
        assert all(c.op == "create" and c.path.startswith(f"/{TOP}/qkd_links") for c in device.prepared[-1])
    run(go())


# -- locks ------------------------------------------------------------------------------------------


def test_locks_refuse_other_sessions_but_not_the_system():
    async def go():
        store = loaded()
        store.lock("running", ALICE.session_id)
        with pytest.raises(DatastoreError) as err:
            await store.edit("running", [merge(1)], BOB)
        assert err.value.kind is ErrorKind.LOCKED and err.value.info == {"session-id": "1"}
        with pytest.raises(DatastoreError) as taken:
            store.lock("running", BOB.session_id)
        assert taken.value.kind is ErrorKind.LOCK_DENIED
        with pytest.raises(DatastoreError) as not_holder:
            store.unlock("running", BOB.session_id)
        assert not_holder.value.kind is ErrorKind.LOCK_DENIED
        await store.edit("running", [merge(1)], ALICE)  # the holder writes
        await store.edit("running", [merge(2)], SYSTEM)  # the server itself bypasses locks
        assert store.get_config("running").get(link_path(2)) is not None
        store.release_session(ALICE.session_id)  # a session's end drops its locks
        await store.edit("running", [merge(3)], BOB)
        with pytest.raises(DatastoreError) as unlocked:
            store.unlock("running", BOB.session_id)
        assert unlocked.value.kind is ErrorKind.NOT_LOCKED
    run(go())


# -- candidate ---------------------------------------------------------------------------------------


def test_candidate_commit_and_discard():
    async def go():
        store = loaded()
        await store.edit("candidate", [merge(1)], ALICE)
        assert store.get_config("running").get(link_path(1)) is None
        await store.commit(ALICE)
        assert store.get_config("running").get(link_path(1)) is not None
        await store.edit("candidate", [merge(2)], ALICE)
        assert store.candidate_modified
        await store.discard_changes(ALICE)
        assert not store.candidate_modified
        assert printed(store, "candidate") == printed(store, "running")
        assert store.get_config("candidate").get(link_path(2)) is None
    run(go())


def test_confirmed_commit_rolls_back_on_timeout():
    async def go():
        store = loaded()
        await store.edit("running", [merge(1)], ALICE)
        before = printed(store)
        await store.edit("candidate", [merge(2)], ALICE)
        await store.commit(ALICE, confirmed=True, timeout=1)
        assert store.get_config("running").get(link_path(2)) is not None and store.pending is not None
        await asyncio.sleep(1.3)
        assert store.pending is None
        assert printed(store) == before
        assert store.get_config("candidate").get(link_path(2)) is None
        with pytest.raises(DatastoreError):  # out of range timeouts are refused
            await store.commit(ALICE, confirmed=True, timeout=0)
    run(go())


# -- journal -----------------------------------------------------------------------------------------


def test_journal_brings_running_back_and_ignores_a_truncated_last_record(tmp_path):
    async def go():
        store = loaded(tmp_path)
        await store.edit("running", [merge(1)], ALICE)
        await store.edit("running", [merge(2)], ALICE)
        await store.edit("running", [delete(1)], ALICE)
        return printed(store)

    expected = run(go())
    again = loaded(tmp_path)
    assert printed(again) == expected
    assert again.get_config("running").get(link_path(2)) is not None
    assert again.get_config("running").get(link_path(1)) is None

    journal = tmp_path / "running.journal"
    good = journal.read_bytes()
    record = json.dumps({"not": "finished"}).encode()
    journal.write_bytes(good + b"%08x " % 0 + record[: len(record) // 2])  # crash in mid-write
    assert printed(loaded(tmp_path)) == expected
    journal.write_bytes(good[:-7])  # the last real record cut short: the ones before it stand
    reopened = loaded(tmp_path)
    assert reopened.get_config("running").get(link_path(2)) is not None
    assert reopened.get_config("running").get(link_path(1)) is not None  # its delete was lost


def test_folding_the_journal_off_the_write_path_loses_nothing_at_any_crash_point(tmp_path):
    """The journal is set aside (running.journal.folding) and the snapshot written in the
    background; a crash before the snapshot lands, or after it but before the set-aside journal is
    dropped, still recovers every commit, and commits made meanwhile go to a fresh journal."""
    def store_at(path: Path) -> Datastore:
        store = Datastore(state_dir=path, snapshot_every=3)
        store.load(initial())
        return store

    async def go():
        store = store_at(tmp_path)
        for i in range(1, 8):
            await store.edit("running", [merge(i)], ALICE)
        if store._idle_fold is not None:
            await store._idle_fold
        if store._folding is not None:
            await store._folding
        return printed(store)

    expected = run(go())
    assert printed(store_at(tmp_path)) == expected
    assert not (tmp_path / "running.journal.folding").exists()

    # a crash after the journal was set aside, before the snapshot was written
    async def crash_mid_fold():
        store = store_at(tmp_path)
        await store.edit("running", [merge(20)], ALICE)
        store.running_store.begin_fold(store.get_config("running"))  # the slow half never runs
        await store.edit("running", [merge(21)], ALICE)  # goes to a fresh journal
        return printed(store)

    expected = run(crash_mid_fold())
    assert (tmp_path / "running.journal.folding").exists()
    assert printed(store_at(tmp_path)) == expected
    # a second fold while the first never finished keeps both journals' records
    store = store_at(tmp_path)
    store.running_store.begin_fold(store.get_config("running"))()
    assert printed(store_at(tmp_path)) == expected
    assert not (tmp_path / "running.journal.folding").exists()


# -- leafrefs checked by lookup ---------------------------------------------------------------------

SESSION = "00000000-0000-0000-0000-0000000005e5"


def app_path(i: int) -> str:
    return f"/{TOP}/qkd_applications/qkd_app[app_id='{link_id(0xa00 + i)}']"


def app_edit(i: int, session: str, operation: str = "create") -> EditOperation:
    tree = DataTree.from_python({TOP: {"qkd_applications": {"qkd_app": [
        {"app_id": link_id(0xa00 + i), "qstrata-ss:ss-session-id": session}]}}}, validate=False)
    return EditOperation(operation, app_path(i), tree)


def session_edit(session: str = SESSION) -> EditOperation:
    tree = DataTree.from_python({SS: {"kme": {"kme-id": NODE_ID, "sessions": {"session": [
        {"session-id": session, "rate": "1000", "burst": "8000"}]}}}}, validate=False)
    return EditOperation("merge", f"/{SS}", tree)


def test_an_applications_session_is_checked_by_lookup_not_by_validating_every_session():
    """qkd_app/ss-session-id points into another module's list: the slice holds the app only and
    the session is looked up in the whole tree, with libyang's own error when it is missing."""
    store = loaded()
    plan = store.locality.plan(schema_path_of(app_path(1)), False)
    assert plan is not None and [r.key for r in plan.deferred] == ["session-id"]
    deleting = store.locality.plan(f"/{SS}/kme/sessions/session", True)  # deleting a target: a search
    assert deleting is not None and [r.leaf for r in deleting.guards] == [
        "/etsi-qkd-sdn-node:qkd_node/qkd_applications/qkd_app/qstrata-ss:ss-session-id"]

    async def go():
        before = printed(store)
        with pytest.raises(DatastoreError) as err:
            await store.edit("running", [app_edit(1, SESSION)], ALICE)
        assert err.value.kind == ErrorKind.INSTANCE_REQUIRED
        assert err.value.app_tag == "instance-required"
        assert err.value.path == f"{app_path(1)}/qstrata-ss:ss-session-id"
        # the same words whole-tree validation gives
        whole = store.get_config("running").copy()
        whole.merge(app_edit(1, SESSION).value)
        with pytest.raises(Exception) as libyang_says:
            whole.validate(config_only=True)
        assert libyang_says.value.issues[0].message == err.value.message
        assert printed(store) == before
        # session and app in one edit; then apps naming the installed session
        await store.edit("running", [session_edit(), app_edit(1, SESSION)], ALICE)
        await store.edit("running", [app_edit(2, SESSION)], ALICE)
        got = store.get_config("running")
        assert got.get(f"{app_path(2)}/qstrata-ss:ss-session-id") is not None
        # a merge that changes the reference to a missing session changes nothing
        middle = printed(store)
        with pytest.raises(DatastoreError):
            await store.edit("running", [app_edit(2, link_id(0xbad), "merge")], ALICE)
        assert printed(store) == middle
        # the referenced session cannot be deleted while apps name it
        with pytest.raises(DatastoreError) as gone:
            await store.edit("running", [EditOperation(
                "delete", f"/{SS}/kme/sessions/session[session-id='{SESSION}']")], ALICE)
        assert gone.value.kind == ErrorKind.INSTANCE_REQUIRED
        assert printed(store) == middle
    run(go())


# -- locality fallback -------------------------------------------------------------------------------


def test_edits_whose_locality_is_unknown_are_validated_whole(tmp_path):
    """A route's qkd-link is a leafref into qkd_links (not local): the datastore validates the
    whole tree, so a dangling reference is refused and a good one accepted."""
    store = loaded()
    assert store.locality.slice_ok(schema_path_of(link_path(1)), False)
    route = f"/{SS}/kme/forwarding-table/route[urn-prefix='urn:qkd:bob:']"
    assert not store.locality.slice_ok(schema_path_of(route), False)
    assert not store.locality.slice_ok("/no-such-module:thing", False)

    def route_tree(link: int) -> DataTree:
        return DataTree.from_python({SS: {"kme": {"kme-id": NODE_ID, "forwarding-table": {"route": [
            {"urn-prefix": "urn:qkd:bob:", "next-hop-kme": link_id(0xb0b), "qkd-link": link_id(link)}]}}}},
            validate=False)

    async def go():
        await store.edit("running", [merge(1)], ALICE)
        before = printed(store)
        with pytest.raises(DatastoreError) as err:
            await store.edit("running", [EditOperation("merge", route, route_tree(7))], ALICE)
        assert err.value.kind in (ErrorKind.INSTANCE_REQUIRED, ErrorKind.INVALID_VALUE)
        assert printed(store) == before
        await store.edit("running", [EditOperation("merge", route, route_tree(1))], ALICE)
        # deleting the referenced link is not local either: refused whole
        with pytest.raises(DatastoreError):
            await store.edit("running", [delete(1)], ALICE)
        assert store.get_config("running").get(link_path(1)) is not None
    run(go())


def test_deleting_a_link_routes_may_name_works_on_a_slice_guarded_by_a_search():
    """A route's qkd-link names links by key: deleting one link of many is checked by searching
    the routes for its key, not by copying, validating and diffing every link (10,000 links:
    180 ms a delete, against 0.3 ms). The installed tree is changed in place (a whole-tree
    transaction installs a new copy), and the change list names the one link."""
    store = loaded()
    plan = store.locality.plan(schema_path_of(link_path(1)), True)
    assert plan is not None and [(r.leaf, r.key) for r in plan.guards] == [
        (f"/{SS}/kme/forwarding-table/route/qkd-link", "qkdl_id")]

    async def go():
        await store.edit("running", [EditOperation("merge", "/", link_tree(*range(1, 201)))], ALICE)
        installed = store.get_config("running")
        changes = await store.edit("running", [delete(7)], ALICE)
        assert [(c.op, c.path) for c in changes] == [("delete", link_path(7))]
        assert store.get_config("running") is installed
        assert not installed.exists(link_path(7)) and installed.exists(link_path(8))
    run(go())


def test_a_netconf_delete_inside_qkd_links_does_not_put_every_link_in_the_slice():
    """NETCONF names a deleted link inside `<qkd_node><qkdn_id/><qkd_links>`: the merge left around
    it holds an empty `qkd_links`, which merges nothing; as a unit it put all links in the slice
    (10,000 links: 460 ms a delete over NETCONF). A merge of nothing but empty containers touches
    nothing and changes nothing."""
    edit = DataTree.from_python({TOP: {"qkdn_id": NODE_ID, "qkd_links": {"qkd_link": [
        {"@": {"ietf-netconf:operation": "delete"}, "qkdl_id": link_id(7)}]}}}, validate=False)
    operations = annotated_operations(edit)
    assert [u.path for op in operations for u in operation_units(op)] == [f"/{TOP}/qkdn_id", link_path(7)]
    empty = DataTree.from_python({TOP: {"qkd_links": {}}}, validate=False)
    assert operation_units(EditOperation("merge", "/", empty)) == []

    store = loaded()

    async def go():
        await store.edit("running", [EditOperation("merge", "/", link_tree(*range(1, 21)))], ALICE)
        changes = await store.edit("running", operations, ALICE)
        assert [(c.op, c.path) for c in changes] == [("delete", link_path(7))]
        assert len(store.get_config("running").find(f"/{TOP}/qkd_links/qkd_link")) == 19
        before = printed(store)
        assert await store.edit("running", [EditOperation("merge", "/", empty)], ALICE) == []
        assert printed(store) == before
    run(go())


def test_a_due_fold_waits_for_a_pause_unless_the_journal_keeps_growing(tmp_path):
    """Folding prints the whole configuration while writers wait: a due fold waits for a pause
    in commits; a journal four snapshots heavy is folded at once, burst or not."""
    store = Datastore(state_dir=tmp_path, snapshot_every=3)
    first = initial()
    first.merge(link_tree(*range(1000, 1050)))
    store.load(first)  # a snapshot of 50 links
    journal = store.running_store

    async def go():
        n = 1
        while not journal.snapshot_due():
            await store.edit("running", [merge(n)], ALICE)
            n += 1
        assert not journal.snapshot_urgent()
        assert store._idle_fold is not None and journal._records == n - 1  # waiting for a pause
        await asyncio.sleep(0.5)
        assert store._idle_fold is None and journal._records == 0  # folded in the pause
        records = 0
        for i in range(n, n + 400):  # a burst with no pause: the journal outgrows 4 snapshots
            await store.edit("running", [merge(i)], ALICE)
            records = max(records, journal._records)
        assert journal._records < 400 and records < 400
        if store._folding is not None:
            await store._folding
        return printed(store)

    expected = run(go())
    again = Datastore(state_dir=tmp_path)
    again.load(initial())
    assert printed(again) == expected
