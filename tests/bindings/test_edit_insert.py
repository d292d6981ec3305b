"""The core's positions in user-ordered lists (`EditOperation.insert`/`point`): what RESTCONF
insert/point and YANG Patch insert/move reduce to (RFC 7950 s7.8.6, RFC 8040 s4.8.5-6)."""

from __future__ import annotations

import pytest
from qstrata.bindings.edit import EditError, EditOperation, apply_operation, operation_units
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import IssueKind

GROUP = "/optical-switch:groups/group[group-name='g']"


def _ingress(ports: list[int]) -> DataTree:
    return DataTree.from_python({"optical-switch:groups": {"group": [{"group-name": "g", "ingress": ports}]}})


def _order(tree: DataTree) -> list[int]:
    return tree.to_python()["optical-switch:groups"]["group"][0]["ingress"]


def _port(port: int) -> str:
    return f"{GROUP}/ingress[.='{port}']"


def test_a_new_value_goes_first_after_or_before_a_point():
    tree = _ingress([1, 2, 3])
    apply_operation(tree, EditOperation("create", _port(9), _ingress([9]), insert="first"))
    assert _order(tree) == [9, 1, 2, 3]
    apply_operation(tree, EditOperation("create", _port(8), _ingress([8]), insert="after", point=_port(2)))
    assert _order(tree) == [9, 1, 2, 8, 3]
    apply_operation(tree, EditOperation("create", _port(7), _ingress([7]), insert="before", point=_port(9)))
    assert _order(tree) == [7, 9, 1, 2, 8, 3]
    apply_operation(tree, EditOperation("create", _port(6), _ingress([6])))  # no insert: last
    assert _order(tree) == [7, 9, 1, 2, 8, 3, 6]


def test_move_an_existing_value_and_the_diff_names_it():
    tree = _ingress([1, 2, 3])
    before = tree.copy()
    apply_operation(tree, EditOperation("merge", _port(3), None, insert="first"))
    assert _order(tree) == [3, 1, 2]
    assert [c.path for c in before.diff(tree)] == [_port(3)]
    apply_operation(tree, EditOperation("merge", _port(3), None, insert="last"))
    assert _order(tree) == [1, 2, 3]


def test_refusals_change_nothing():
    tree = _ingress([1, 2])
    with pytest.raises(EditError) as missing_point:
        apply_operation(tree, EditOperation("merge", _port(1), None, insert="after", point=_port(5)))
    assert missing_point.value.kind is IssueKind.INVALID_VALUE
    with pytest.raises(EditError) as missing_entry:
        apply_operation(tree, EditOperation("merge", _port(5), None, insert="first"))
    assert missing_entry.value.kind is IssueKind.MISSING
    groups = DataTree.from_python({"optical-switch:groups": {"group": [{"group-name": "g"}, {"group-name": "h"}]}})
    with pytest.raises(EditError) as system_ordered:  # group is ordered-by system
        apply_operation(groups, EditOperation("merge", "/optical-switch:groups/group[group-name='h']", None,
                                              insert="first"))
    assert system_ordered.value.kind is IssueKind.INVALID_VALUE
    assert _order(tree) == [1, 2]
    with pytest.raises(ValueError):
        EditOperation("merge", _port(1), None, insert="after")  # before/after need a point


def test_a_placed_or_replaced_entry_touches_its_parent():
    """The datastore validates and installs a slice of units: the order of the siblings is part of
    the change, so the unit is the list's parent, not the entry."""
    assert [u.path for u in operation_units(EditOperation("create", _port(9), _ingress([9]), insert="first"))] \
        == [GROUP]
    assert [u.path for u in operation_units(EditOperation("replace", _port(9), _ingress([9])))] == [GROUP]
    assert [u.path for u in operation_units(EditOperation("create", _port(9), _ingress([9])))] == [_port(9)]


def test_a_replaced_entry_keeps_its_place():
    tree = _ingress([1, 2, 3])
    apply_operation(tree, EditOperation("replace", _port(2), _ingress([2])))
    assert _order(tree) == [1, 2, 3]
