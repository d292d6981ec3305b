"""config_model: a driver's configuration copy kept from change lists (pure, no libyang here;
the twins' tests feed it libyang's own change lists)."""

from __future__ import annotations

import copy

import pytest
from qstrata.agents.devices.base import ConfigTransaction
from qstrata.agents.devices.config_model import ChangeTracker, ConfigModel, ModelOutOfSync
from qstrata.bindings.diff import Change

TOP = "etsi-qkd-sdn-node:qkd_node"
LINKS = (TOP, "qkd_links", "qkd_link")
IFACES = (TOP, "qkd_interfaces", "qkd_interface")
WATCH = {LINKS: ("qkdl_id",), IFACES: ("qkdi_id",)}
L1, L2 = "00000000-0000-0000-0000-0000000000c1", "00000000-0000-0000-0000-0000000000c2"


def link_path(qkdl_id: str, leaf: str = "") -> str:
    base = f"/{TOP}/qkd_links/qkd_link[qkdl_id='{qkdl_id}']"
    return f"{base}/{leaf}" if leaf else base


def seeded() -> ConfigModel:
    return ConfigModel([TOP], WATCH, {
        TOP: {
            "qkdn_id": "00000000-0000-0000-0000-00000000000a",
            "qkd_interfaces": {"qkd_interface": [{"qkdi_id": 1, "qkdi_model": "m"}]},
            "qkd_links": {"qkd_link": [{"qkdl_id": L1, "qkdl_enable": True, "virt_next_hop": ["x"]}]},
        },
        "ietf-netconf-acm:nacm": {"enable-nacm": True},
    })


def test_only_the_models_top_level_nodes_are_kept_and_changes_elsewhere_are_ignored():
    model = seeded()
    assert set(model.to_json()) == {TOP}
    applied = model.apply([Change("modify", "/ietf-netconf-acm:nacm/enable-nacm", "true", "false")])
    assert applied.touched == {} and applied.others == set()
    assert set(model.to_json()) == {TOP}


def test_entry_leaf_and_leaf_list_changes_touch_their_entry():
    model = seeded()
    applied = model.apply([
        Change("modify", link_path(L1, "qkdl_enable"), "true", "false"),
        Change("create", link_path(L1, "virt_next_hop[.='y']"), None, "y"),
        Change("delete", link_path(L1, "virt_next_hop[.='x']"), "x", None),
        Change("create", link_path(L2), None, {"qkdl_id": L2, "qkdl_type": "etsi-qkd-node-types:VIRT"}),
        # a numeric key from the seeded JSON (1) matches the path's string ('1')
        Change("modify", f"/{TOP}/qkd_interfaces/qkd_interface[qkdi_id='1']/qkdi_model", "m", "n"),
    ])
    assert applied.keys(LINKS) == {(L1,), (L2,)}
    assert applied.keys(IFACES) == {("1",)}
    assert applied.others == set()
    assert model.entry(LINKS, (L1,)) == {"qkdl_id": L1, "qkdl_enable": "false", "virt_next_hop": ["y"]}
    assert model.entry(LINKS, (L2,))["qkdl_type"] == "etsi-qkd-node-types:VIRT"
    assert model.keys(LINKS) == [(L1,), (L2,)]
    assert model.entry(IFACES, ("1",))["qkdi_model"] == "n"
    assert model.entry(LINKS, ("nope",)) is None


def test_revert_puts_the_content_back():
    model = seeded()
    before = model.to_json()
    applied = model.apply([
        Change("delete", link_path(L1), {"qkdl_id": L1, "qkdl_enable": True, "virt_next_hop": ["x"]}, None),
        Change("create", link_path(L2), None, {"qkdl_id": L2}),
        Change("modify", f"/{TOP}/qkdn_id", "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"),
    ])
    assert applied.others == {(TOP, "qkdn_id")}
    assert model.to_json() != before
    model.revert(applied)
    assert model.to_json() == before


@pytest.mark.parametrize("change", [
    Change("create", link_path(L1), None, {"qkdl_id": L1}),
    Change("delete", link_path(L2), {"qkdl_id": L2}, None),
    Change("modify", link_path(L2, "qkdl_enable"), "true", "false"),
    Change("delete", link_path(L1, "phys_wavelength"), "1550", None),
    Change("create", link_path(L1, "virt_next_hop[.='x']"), None, "x"),
])
def test_a_change_that_does_not_fit_raises_and_changes_nothing(change):
    model = seeded()
    before = model.to_json()
    with pytest.raises(ModelOutOfSync):
        model.apply([Change("modify", link_path(L1, "qkdl_enable"), "true", "false"), change])
    assert model.to_json() == before


def test_container_changes_touch_every_entry_below():
    """A restart replays initial -> restored as a change list: whole containers appear."""
    model = ConfigModel([TOP], WATCH, {TOP: {"qkdn_id": "a"}})
    links = {"qkd_link": [{"qkdl_id": L1}, {"qkdl_id": L2}]}
    applied = model.apply([Change("create", f"/{TOP}/qkd_links", None, links)])
    assert applied.keys(LINKS) == {(L1,), (L2,)}
    assert model.keys(LINKS) == [(L1,), (L2,)]
    applied = model.apply([Change("delete", f"/{TOP}/qkd_links", links, None)])
    assert applied.keys(LINKS) == {(L1,), (L2,)}
    assert model.keys(LINKS) == [] and model.entry(LINKS, (L1,)) is None
    # the whole top node
    applied = model.apply([Change("delete", f"/{TOP}", {"qkdn_id": "a"}, None)])
    assert model.to_json() == {} and applied.others == {(TOP,)}


def test_double_quoted_keys_and_multiple_keys():
    names = (TOP, "things", "thing")
    model = ConfigModel([TOP], {names: ("a", "b")}, {TOP: {}})
    model.apply([Change("create", f"/{TOP}/things/thing[a=\"it's\"][b='2']", None, {"a": "it's", "b": 2, "v": 1})])
    model.apply([Change("modify", f"/{TOP}/things/thing[a=\"it's\"][b='2']/v", "1", "3")])
    assert model.entry(names, ("it's", "2")) == {"a": "it's", "b": 2, "v": "3"}


def test_created_subtrees_are_copied():
    model = seeded()
    value = {"qkdl_id": L2, "qkdl_remote": {"qkdn_id": "b"}}
    model.apply([Change("create", link_path(L2), None, value)])
    value["qkdl_remote"]["qkdn_id"] = "changed later"
    assert model.entry(LINKS, (L2,))["qkdl_remote"] == {"qkdn_id": "b"}


# -- the transaction phases -----------------------------------------------------------------------


def whole(tree):
    """A whole-tree accessor that counts its calls (they must stay off the per-edit path)."""
    calls = []

    def read():
        calls.append(1)
        return copy.deepcopy(tree)
    return read, calls


def test_tracker_stages_reverts_and_reseeds():
    running = {TOP: {"qkdn_id": "a", "qkd_links": {"qkd_link": [{"qkdl_id": L1}]}}}
    tracker = ChangeTracker("t", [TOP], WATCH)
    tracker.seed(running)
    create = Change("create", link_path(L2), None, {"qkdl_id": L2})
    old, old_calls = whole(running)
    new, new_calls = whole({TOP: {**running[TOP], "qkd_links": {"qkd_link": [{"qkdl_id": L1}, {"qkdl_id": L2}]}}})
    txn = ConfigTransaction((create,), old, new)
    staged = tracker.stage(txn)
    assert not staged.whole and staged.touched(LINKS) == [L2] and not staged.changed((TOP,))
    assert tracker.staged(txn) is staged
    tracker.refused()  # prepare refused: the copy is as before
    assert tracker.model.keys(LINKS) == [(L1,)]
    assert old_calls == new_calls == []

    tracker.stage(txn)  # prepared again, then never committed nor aborted (the store failed)
    again = ConfigTransaction((create,), old, new)
    staged = tracker.stage(again)  # re-seeded from the old configuration
    assert staged.whole and old_calls == [1] and new_calls == []
    assert sorted(staged.touched(LINKS, running=["zzz"])) == sorted([L1, L2, "zzz"])
    tracker.committed()
    assert tracker.model.keys(LINKS) == [(L1,), (L2,)]

    # out of step (a create of what the copy has): re-read from the new configuration
    staged = tracker.stage(ConfigTransaction((create,), old, new))
    assert staged.whole and staged.applied is None and new_calls == [1]
    tracker.refused()
    assert tracker.model is None  # cannot revert a re-read: seeded again next time


def test_containers_reported_by_a_slice_merge_and_subtract():
    """The datastore diffs a slice holding the edited entries only: the container of a new entry
    comes as created with that entry alone, and as deleted with the entries it lost alone."""
    model = seeded()
    applied = model.apply([Change("create", f"/{TOP}/qkd_links", None, {"qkd_link": [{"qkdl_id": L2}]})])
    assert applied.keys(LINKS) == {(L2,)}  # only what the change carries, not the whole list
    assert model.keys(LINKS) == [(L1,), (L2,)]
    applied = model.apply([Change("delete", f"/{TOP}/qkd_links", {"qkd_link": [{"qkdl_id": L1}]}, None)])
    assert applied.keys(LINKS) == {(L1,)} and model.keys(LINKS) == [(L2,)]
    model.revert(applied)
    assert model.keys(LINKS) == [(L2,), (L1,)]
    with pytest.raises(ModelOutOfSync):
        model.apply([Change("delete", f"/{TOP}/qkd_links", {"qkd_link": [{"qkdl_id": "gone"}]}, None)])
    assert sorted(model.keys(LINKS)) == sorted([(L1,), (L2,)])
