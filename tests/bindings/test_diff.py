"""DataTree.diff and the tree operations (set, delete, merge, copy, find, get) on ETSI data."""

from __future__ import annotations

import pytest
from qstrata.bindings.diff import Change
from qstrata.bindings.generated import etsi_qkd_sdn_node as etsi
from qstrata.bindings.schema import YANG_DIR
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

EXAMPLE = YANG_DIR / "examples" / "valid-etsi-qkd-sdn-node-phys-virt-links.xml"
NODE = etsi.qkd_node.PATH
C1, C2, C3 = (f"00000000-0000-0000-0000-0000000000c{i}" for i in (1, 2, 3))
LINK1 = etsi.qkd_node.qkd_links.qkd_link.entry(C1)
LINK2 = etsi.qkd_node.qkd_links.qkd_link.entry(C2)
LINK3 = etsi.qkd_node.qkd_links.qkd_link.entry(C3)
NODE_B = "00000000-0000-0000-0000-00000000000b"
NODE_C = "00000000-0000-0000-0000-00000000000c"
NODE_D = "00000000-0000-0000-0000-00000000000d"


@pytest.fixture
def base() -> DataTree:
    return DataTree.parse(EXAMPLE.read_text(encoding="utf-8"), "xml")


def _has_metadata(value) -> bool:
    if isinstance(value, dict):
        return any(k.startswith("@") or "operation" in k or _has_metadata(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_metadata(v) for v in value)
    return False


def test_no_change_is_an_empty_list(base):
    assert base.diff(base.copy()) == []
    assert base.diff(base) == []
    assert DataTree().diff(DataTree()) == []


def test_modify_leaves_gives_old_and_new_canonical_values(base):
    new = base.copy()
    new.set(f"{LINK1}/qkdl_enable", "false")
    new.set(f"{LINK1}/phys_channel_att", "12.50")  # canonical form drops trailing zeros
    new.set(f"{NODE}/qkdn_location_id", "site-alice-2")
    new.validate()
    assert base.diff(new) == [
        Change("modify", f"{NODE}/qkdn_location_id", "site-alice", "site-alice-2"),
        Change("modify", f"{LINK1}/qkdl_enable", "true", "false"),
        Change("modify", f"{LINK1}/phys_channel_att", "10.0", "12.5"),
    ]
    # and back
    assert [(c.op, c.path, c.old, c.new) for c in new.diff(base)] == [
        ("modify", f"{NODE}/qkdn_location_id", "site-alice-2", "site-alice"),
        ("modify", f"{LINK1}/qkdl_enable", "false", "true"),
        ("modify", f"{LINK1}/phys_channel_att", "12.5", "10.0"),
    ]


def test_identityref_modify_uses_the_module_qualified_value(base):
    new = base.copy()
    new.set(f"{LINK1}/qkdl_status", "etsi-qkd-node-types:OFF")
    assert base.diff(new) == [
        Change("modify", f"{LINK1}/qkdl_status", "etsi-qkd-node-types:ACTIVE", "etsi-qkd-node-types:OFF")]


def test_create_link_gives_the_entry_without_metadata(base):
    new = base.copy()
    new.set(f"{LINK3}/qkdl_type", "etsi-qkd-node-types:PHYS")
    new.set(f"{LINK3}/phys_wavelength", "1310")
    new.set(f"{LINK3}/qkdl_remote/qkdn_id", NODE_D)
    new.validate()
    changes = base.diff(new)
    assert changes == [
        Change(
            "create",
            LINK3,
            None,
            {
                "qkdl_id": C3,
                "qkdl_remote": {"qkdn_id": NODE_D},
                "qkdl_type": "etsi-qkd-node-types:PHYS",
                "phys_wavelength": "1310",
            },
        )
    ]
    assert not _has_metadata(changes[0].new)


def test_delete_link_gives_the_old_entry(base):
    new = base.copy()
    assert new.delete(LINK2) is True
    assert new.delete(LINK2) is False
    changes = base.diff(new)
    assert [(c.op, c.path, c.new) for c in changes] == [("delete", LINK2, None)]
    old = changes[0].old
    assert old["qkdl_id"] == C2 and old["qkdl_type"] == "etsi-qkd-node-types:VIRT"
    assert old["virt_next_hop"] == [NODE_B, NODE_C]
    assert not _has_metadata(old)
    # the reverse is a create of the same entry
    assert new.diff(base) == [Change("create", LINK2, None, old)]


def test_leaf_list_changes(base):
    new = base.copy()
    new.set(f"{LINK2}/virt_next_hop", NODE_D)
    assert new.delete(f"{LINK2}/virt_next_hop[.='{NODE_B}']")
    changes = sorted(base.diff(new), key=lambda c: c.op)
    assert changes == [
        Change("create", f"{LINK2}/virt_next_hop[.='{NODE_D}']", None, NODE_D),
        Change("delete", f"{LINK2}/virt_next_hop[.='{NODE_B}']", NODE_B, None),
    ]
    # adding an existing value again changes nothing
    again = base.copy()
    again.set(f"{LINK2}/virt_next_hop", NODE_B)
    assert base.diff(again) == []


def test_set_creates_parents_and_updates(base):
    tree = DataTree()
    assert tree.is_empty() and tree.get(NODE) is None and tree.find("//qkdn_id") == []
    tree.set(etsi.qkd_node.qkdn_id, "00000000-0000-0000-0000-00000000000a")
    tree.set(f"{LINK1}/qkdl_enable", "true")
    tree.set(f"{LINK1}/qkdl_enable", "false")
    assert tree.get(f"{LINK1}/qkdl_enable").value() is False
    tree.validate()
    assert [n.name() for n in tree.top_nodes()] == ["qkd_node"]


@pytest.mark.parametrize(
    ("leaf", "value"),
    [("phys_wavelength", "abc"), ("qkdl_enable", "yes"), ("qkdl_performance/skr", "4294967296"),
     ("qkdl_type", "PHYS")],
)
def test_set_with_a_bad_value_raises_with_the_path(base, leaf, value):
    before = base.print("xml")
    with pytest.raises(InvalidData) as err:
        base.set(f"{LINK1}/{leaf}", value)
    assert f"{LINK1}/{leaf}" in [i.path for i in err.value.issues]
    assert base.print("xml") == before


def test_set_on_an_unknown_node_raises(base):
    with pytest.raises(InvalidData):
        base.set(f"{LINK1}/qkdl_colour", "blue")


def test_copy_is_independent(base):
    clone = base.copy()
    clone.set(f"{NODE}/qkdn_location_id", "elsewhere")
    clone.delete(LINK1)
    assert base.get(f"{NODE}/qkdn_location_id").value() == "site-alice"
    assert base.get(LINK1) is not None and clone.get(LINK1) is None
    del clone
    assert base.get(f"{LINK1}/qkdl_id").value() == C1
    assert DataTree().copy().is_empty()


def test_find_and_get(base):
    phys = base.find(f"{etsi.qkd_node.qkd_links.qkd_link.PATH}[qkdl_type='etsi-qkd-node-types:PHYS']")
    assert [n.path() for n in phys] == [LINK1]
    ids = [n.value() for n in base.find(etsi.qkd_node.qkd_links.qkd_link.qkdl_id)]
    assert ids == [C1, C2]
    assert base.get(f"{LINK1}/phys_wavelength").value() == "1550"
    assert base.get(LINK3) is None
    with pytest.raises(InvalidData):
        base.find("/etsi-qkd-sdn-node:qkd_node/[")


def test_delete_top_level_nodes():
    tree = DataTree.parse(EXAMPLE.read_text(encoding="utf-8"), "xml")
    other = DataTree.parse((YANG_DIR / "examples" / "valid-optical-switch-twin-8-ports.xml").read_text(), "xml")
    tree.merge(other)
    tops = [f"/{n.module().name()}:{n.name()}" for n in tree.top_nodes()]
    assert tops[0] == NODE and len(tops) > 2
    assert tree.delete(NODE)
    assert [f"/{n.module().name()}:{n.name()}" for n in tree.top_nodes()] == tops[1:]
    for top in tops[1:]:
        assert tree.delete(top)
    assert tree.is_empty() and tree.print("xml") == "" and tree.print("json") == "{}"


def test_merge(base):
    empty = DataTree()
    empty.merge(base)
    assert empty.print("xml") == base.print("xml")
    assert empty.diff(base) == []

    edit = DataTree()
    edit.set(f"{NODE}/qkdn_location_id", "merged")
    edit.set(f"{LINK3}/qkdl_enable", "false")
    target = base.copy()
    target.merge(edit)
    changes = base.diff(target)
    assert [(c.op, c.path) for c in changes] == [("modify", f"{NODE}/qkdn_location_id"), ("create", LINK3)]
    assert changes[0].new == "merged"
    # the source is copied, not moved
    edit.set(f"{NODE}/qkdn_location_id", "later")
    assert target.get(f"{NODE}/qkdn_location_id").value() == "merged"
    del edit
    assert target.get(f"{LINK3}/qkdl_enable").value() is False
    target.merge(DataTree())
    assert base.diff(target) == changes


def test_a_created_or_deleted_holder_reports_no_default_the_server_set() -> None:
    """A non-presence container that comes with one entry is reported as that entry; the leaves
    libyang adds at their defaults beside it (NACM's enable-nacm, read-default...) were set by
    nobody and are no change (they had been reported as creates, and deletes the other way)."""
    old = DataTree()
    new = DataTree.parse('{"ietf-netconf-acm:nacm": {"groups": {"group": [{"name": "g"}]}}}', "json",
                         validate=False)
    new.add_implicit(config_only=True)
    group = "/ietf-netconf-acm:nacm/groups/group[name='g']"
    assert old.diff(new) == [Change("create", group, None, {"name": "g"})]
    assert new.diff(old) == [Change("delete", group, {"name": "g"}, None)]
    explicit = DataTree.parse('{"ietf-netconf-acm:nacm": {"read-default": "permit", "groups": {"group": '
                              '[{"name": "g"}]}}}', "json", validate=False)
    explicit.add_implicit(config_only=True)
    assert [c.path for c in old.diff(explicit)] == ["/ietf-netconf-acm:nacm/read-default", group]
