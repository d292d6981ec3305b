"""The core's `require` operation: what NETCONF default-operation none reduces an entry without
an operation to (RFC 6241 s7.2: data with no corresponding level in the datastore is data-missing)."""

from __future__ import annotations

import pytest
from lxml import etree
from qstrata.bindings.edit import (
    OPERATIONS,
    REQUIRE,
    EditError,
    EditOperation,
    apply_operation,
    operation_units,
)
from qstrata.bindings.schema import YANG_DIR
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import IssueKind

EXAMPLE = YANG_DIR / "examples" / "valid-etsi-qkd-sdn-node-phys-virt-links.xml"


def test_require_passes_on_existing_data_and_changes_nothing():
    tree = DataTree.parse(EXAMPLE.read_text(encoding="utf-8"), "xml")
    path = _first_link_path()
    before = tree.copy()
    apply_operation(tree, EditOperation(REQUIRE, path))
    assert tree.diff(before) == []


def test_require_of_missing_data_is_data_missing():
    tree = DataTree.parse(EXAMPLE.read_text(encoding="utf-8"), "xml")
    path = "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='00000000-0000-4000-8000-00000000beef']"
    with pytest.raises(EditError) as info:
        apply_operation(tree, EditOperation(REQUIRE, path))
    assert info.value.kind is IssueKind.MISSING and info.value.path == path


def test_require_is_not_a_client_operation_and_removes_nothing():
    assert REQUIRE not in OPERATIONS  # nc:operation="require" stays a bad-attribute
    [unit] = operation_units(EditOperation(REQUIRE, "/etsi-qkd-sdn-node:qkd_node"))
    assert unit.removes is False


def _first_link_path() -> str:
    root = etree.fromstring(EXAMPLE.read_bytes())
    ns = {"e": "urn:etsi:qkd:yang:etsi-qkd-node"}
    link_id = root.find(".//e:qkd_link/e:qkdl_id", ns).text
    return f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='{link_id}']"
