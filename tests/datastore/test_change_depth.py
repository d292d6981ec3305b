"""The change list a transaction hands to subscribers (NETCONF's netconf-config-change, RFC 6470;
RESTCONF's stream; gNMI on-change; NACM; drivers) names what really changed: the list entry
created or deleted, with its keys, or the leaf set; never the container that holds it. Every
write path is here: edit (merge, replace, create, delete, remove), copy-config, commit.

A transaction works on a slice of the datastore (the edited subtrees and their ancestors'
leaves): a container of the slice that comes or goes with the edited entry is no change of the
datastore, where it held other entries."""

from __future__ import annotations

import asyncio

from qstrata.agents.datastore.store import SYSTEM, Datastore
from qstrata.bindings.diff import Change
from qstrata.bindings.edit import EditOperation
from qstrata.bindings.tree import DataTree

SW = "optical-switch:port-config"
PORTS = f"/{SW}/port"
QKD = "etsi-qkd-sdn-node:qkd_node"
NODE_ID = "00000000-0000-0000-0000-00000000000a"


def port_path(i: int) -> str:
    return f"{PORTS}[port-id='{i}']"


def ports(*entries: dict) -> DataTree:
    return DataTree.from_python({SW: {"port": list(entries)}}, validate=False)


def store_with(*ids: int) -> Datastore:
    store = Datastore()
    store.load(DataTree.from_python({SW: {"port": [{"port-id": i} for i in ids]}}, config_only=True))
    return store


def edit(store: Datastore, *ops: EditOperation, name: str = "running") -> list[tuple[str, str]]:
    return _pairs(asyncio.run(store.edit(name, ops, SYSTEM)))


def _pairs(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.op, c.path) for c in changes]


def test_deleting_or_removing_one_port_names_that_port() -> None:
    store = store_with(1, 2, 3)
    assert edit(store, EditOperation("delete", port_path(2))) == [("delete", port_path(2))]
    assert edit(store, EditOperation("remove", port_path(3))) == [("delete", port_path(3))]
    # the last one too: the container that held it is no configuration of its own
    assert edit(store, EditOperation("delete", port_path(1))) == [("delete", port_path(1))]


def test_creating_one_port_names_that_port() -> None:
    store = store_with(1)
    assert edit(store, EditOperation("create", port_path(2), ports({"port-id": 2}))) == [("create", port_path(2))]
    assert edit(store, EditOperation("merge", f"/{SW}", ports({"port-id": 3}))) == [("create", port_path(3))]
    empty = store_with()
    assert edit(empty, EditOperation("merge", f"/{SW}", ports({"port-id": 5}))) == [("create", port_path(5))]


def test_creating_one_link_beside_others_names_that_link() -> None:
    def link(i: int) -> dict:
        return {"qkdl_id": f"00000000-0000-0000-0000-{i:012x}", "qkdl_type": "etsi-qkd-node-types:PHYS"}

    def path(i: int) -> str:
        return f"/{QKD}/qkd_links/qkd_link[qkdl_id='{link(i)['qkdl_id']}']"

    store = Datastore()
    store.load(DataTree.from_python({QKD: {"qkdn_id": NODE_ID, "qkd_links": {"qkd_link": [link(1)]}}},
                                    config_only=True))
    value = DataTree.from_python({QKD: {"qkd_links": {"qkd_link": [link(2)]}}}, validate=False)
    assert edit(store, EditOperation("create", path(2), value)) == [("create", path(2))]
    assert edit(store, EditOperation("delete", path(1))) == [("delete", path(1))]


def test_merging_one_leaf_names_that_leaf() -> None:
    store = store_with(1, 2)
    label = f"{port_path(2)}/label"
    assert edit(store, EditOperation("merge", f"/{SW}", ports({"port-id": 2, "label": "a"}))) == [("create", label)]
    assert edit(store, EditOperation("merge", f"/{SW}", ports({"port-id": 2, "label": "b"}))) == [("modify", label)]


def test_replacing_the_container_with_one_entry_changed_names_that_leaf() -> None:
    store = store_with(1, 2, 3)
    same = ports({"port-id": 1}, {"port-id": 2, "label": "x"}, {"port-id": 3})
    assert edit(store, EditOperation("replace", f"/{SW}", same)) == [("create", f"{port_path(2)}/label")]
    fewer = ports({"port-id": 1}, {"port-id": 2, "label": "x"})
    assert edit(store, EditOperation("replace", f"/{SW}", fewer)) == [("delete", port_path(3))]


def test_copy_config_and_commit_name_the_entries() -> None:
    store = store_with(1, 2, 3)
    new = DataTree.from_python({SW: {"port": [{"port-id": 1}, {"port-id": 3}, {"port-id": 4}]}}, config_only=True)
    changes = _pairs(asyncio.run(store.replace("running", new, SYSTEM)))
    assert sorted(changes) == [("create", port_path(4)), ("delete", port_path(2))]
    # emptied: each entry goes, not the container that held them
    changes = _pairs(asyncio.run(store.replace("running", DataTree(store.schema), SYSTEM)))
    assert sorted(changes) == [("delete", port_path(i)) for i in (1, 3, 4)]

    store = store_with(1, 2)
    assert edit(store, EditOperation("delete", port_path(1)), name="candidate") == [("delete", port_path(1))]
    assert _pairs(asyncio.run(store.commit(SYSTEM))) == [("delete", port_path(1))]


def test_a_deleted_entry_keeps_its_old_value_and_a_created_one_its_new() -> None:
    """Subscribers (NACM, drivers, the KME) read the subtree that went or came."""
    store = store_with(1, 2)
    asyncio.run(store.edit("running", [EditOperation("merge", f"/{SW}", ports({"port-id": 2, "label": "l"}))],
                           SYSTEM))
    [gone] = asyncio.run(store.edit("running", [EditOperation("delete", port_path(2))], SYSTEM))
    assert (gone.old, gone.new) == ({"port-id": 2, "label": "l"}, None)
    [came] = asyncio.run(store.edit("running", [EditOperation("create", port_path(7), ports({"port-id": 7}))],
                                    SYSTEM))
    assert (came.old, came.new) == (None, {"port-id": 7})


def test_a_copy_config_of_many_entries_is_journaled_whole_and_replays(tmp_path) -> None:
    """Past FULL_RECORD_AFTER units the journal records the whole tree rather than list each
    entry the change names; the restart brings back exactly what was committed."""
    store = Datastore(state_dir=tmp_path)
    store.load(DataTree.from_python({SW: {"port": [{"port-id": 1}]}}, config_only=True))
    many = DataTree.from_python({SW: {"port": [{"port-id": i, "label": f"p{i}"} for i in range(2, 602)]}},
                                config_only=True)
    assert len(asyncio.run(store.replace("running", many, SYSTEM))) == 601
    asyncio.run(store.edit("running", [EditOperation("delete", port_path(7))], SYSTEM))
    again = Datastore(state_dir=tmp_path)
    again.load()
    assert again.get_config("running").print("json") == store.get_config("running").print("json")
    assert again.get_config("running").get(port_path(1)) is None and again.get_config("running").get(port_path(601))
    asyncio.run(again.replace("running", DataTree(again.schema), SYSTEM))
    third = Datastore(state_dir=tmp_path)
    third.load()
    assert third.get_config("running").is_empty()
