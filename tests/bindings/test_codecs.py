"""Lossless conversion of every YANG built-in type: XML <-> gNMI TypedValue <-> tree, and
canonical strings <-> Python values. Uses the test-only module tests/bindings/yang/qstrata-test-types.yang."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import libyang
import pytest
from _libyang import lib
from gnmi_pb import gnmi_pb2
from qstrata.bindings.codecs import gnmi
from qstrata.bindings.codecs.values import to_canonical, to_python
from qstrata.bindings.paths import gnmi_to_xpath, xpath_to_gnmi
from qstrata.bindings.schema import YANG_DIR, Schema, get_schema
from qstrata.bindings.tree import DataTree, c_str
from qstrata.bindings.validate import InvalidData

TEST_MODULE = Path(__file__).resolve().parent / "yang" / "qstrata-test-types.yang"
TOP = "/qstrata-test-types:types"

UNICODE = "Ünïcödé ✓ 量子 <&> \"q\" 'a' \t tab"
TYPES_XML = f"""<types xmlns="urn:qstrata:test:types" xmlns:tt="urn:qstrata:test:types"
       xmlns:et="urn:etsi:qkd:yang:etsi-qkd-node-types">
  <i8>-128</i8><i16>-32768</i16><i32>-2147483648</i32><i64>-9223372036854775808</i64>
  <u8>255</u8><u16>65535</u16><u32>4294967295</u32><u64>18446744073709551615</u64>
  <d1>-922337203685477580.8</d1><d18>9.223372036854775807</d18>
  <flag>true</flag>
  <text>{UNICODE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}</text>
  <mode>auto-tune</mode>
  <perms>read execute</perms>
  <blob>AAEC/w==</blob>
  <present/>
  <colour>tt:red</colour>
  <link-type>et:PHYS</link-type>
  <target>/tt:types/tt:items/tt:item[tt:name='a'][tt:index='-1']/tt:weight</target>
  <choice-of>unlimited</choice-of>
  <first-item>a</first-item>
  <counters>0</counters><counters>18446744073709551615</counters><counters>7</counters>
  <items>
    <item><name>a</name><index>-1</index><weight>1.500</weight></item>
    <item><name>a</name><index>2</index><weight>-0.001</weight></item>
    <item><name>b/[k='v']</name><index>2147483647</index></item>
  </items>
</types>"""

# leaf -> (TypedValue field, value in that field)
EXPECTED_VALUES = {
    "i8": ("int_val", -128),
    "i16": ("int_val", -32768),
    "i32": ("int_val", -2147483648),
    "i64": ("int_val", -9223372036854775808),
    "u8": ("uint_val", 255),
    "u16": ("uint_val", 65535),
    "u32": ("uint_val", 4294967295),
    "u64": ("uint_val", 18446744073709551615),
    "d1": ("decimal_val", (-9223372036854775808, 1)),
    "d18": ("decimal_val", (9223372036854775807, 18)),
    "flag": ("bool_val", True),
    "text": ("string_val", UNICODE),
    "mode": ("string_val", "auto-tune"),
    "perms": ("string_val", "read execute"),
    "blob": ("bytes_val", b"\x00\x01\x02\xff"),
    "present": ("json_ietf_val", b"[null]"),
    "colour": ("string_val", "qstrata-test-types:red"),
    "link-type": ("string_val", "etsi-qkd-node-types:PHYS"),
    "target": ("string_val", "/qstrata-test-types:types/items/item[name='a'][index='-1']/weight"),
    "choice-of": ("string_val", "unlimited"),
    "first-item": ("string_val", "a"),
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> Schema:
    yang = tmp_path_factory.mktemp("yang")
    for f in YANG_DIR.glob("*.yang"):
        shutil.copy(f, yang)
    shutil.copy(TEST_MODULE, yang)
    return Schema(yang)


@pytest.fixture(scope="module")
def tree(schema) -> DataTree:
    return DataTree.parse(TYPES_XML, "xml", schema=schema)


def _value(tv: gnmi_pb2.TypedValue):
    kind = tv.WhichOneof("value")
    if kind == "decimal_val":
        return kind, (tv.decimal_val.digits, tv.decimal_val.precision)
    return kind, getattr(tv, kind)


def _base_types(t: libyang.Type):
    if t.base() == libyang.Type.UNION:
        for member in t.union_types():
            yield from _base_types(member)
    yield t.basename()


def _types_used(schema: Schema, modules) -> set[str]:
    used: set[str] = set()
    for name in modules:
        for top in schema.module(name):
            for node in top.iter_tree(full=True):
                if node.nodetype() in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST):
                    used |= set(_base_types(node.type()))
    return used


def test_test_module_covers_every_builtin_type_our_modules_use(schema):
    ours = _types_used(get_schema(), get_schema().our_modules())
    tested = _types_used(schema, ["qstrata-test-types"])
    all_builtin = set(libyang.Type.BASENAMES.values()) - {"unknown"}
    assert ours <= tested, f"built-in types used in yang/ but not tested: {sorted(ours - tested)}"
    assert tested == all_builtin, sorted(all_builtin - tested)


def test_xml_to_typed_values(tree):
    updates = gnmi.tree_to_updates(tree)
    by_leaf = {gnmi_to_xpath(u.path).rsplit("/", 1)[1]: u for u in updates if len(u.path.elem) == 2}
    for leaf, (field, value) in EXPECTED_VALUES.items():
        assert leaf in by_leaf, leaf
        assert _value(by_leaf[leaf].val) == (field, value), leaf
    counters = by_leaf["counters"].val
    assert counters.WhichOneof("value") == "leaflist_val"
    assert [_value(e) for e in counters.leaflist_val.element] == [
        ("uint_val", 0), ("uint_val", 18446744073709551615), ("uint_val", 7)]


def test_two_key_list_entries_become_keyed_paths(tree):
    updates = gnmi.tree_to_updates(tree)
    weights = {gnmi_to_xpath(u.path): _value(u.val) for u in updates if u.path.elem[-1].name == "weight"}
    assert weights == {
        f"{TOP}/items/item[index='-1'][name='a']/weight": ("decimal_val", (15, 1)),
        f"{TOP}/items/item[index='2'][name='a']/weight": ("decimal_val", (-1, 3)),
    }
    keys = [dict(u.path.elem[2].key) for u in updates if u.path.elem[-1].name == "index"]
    assert keys == [{"name": "a", "index": "-1"}, {"name": "a", "index": "2"},
                    {"name": "b/[k='v']", "index": "2147483647"}]


def test_xml_gnmi_tree_xml_is_identical(schema, tree):
    xml = tree.print("xml")
    updates = gnmi.tree_to_updates(tree)
    rebuilt = gnmi.updates_to_tree(updates, schema=schema)
    rebuilt.validate()
    assert rebuilt.print("xml") == xml
    assert rebuilt.print("json") == tree.print("json")
    # and through the serialized protobuf, as on the wire
    wire = [gnmi_pb2.Update.FromString(u.SerializeToString()) for u in updates]
    assert gnmi.updates_to_tree(wire, schema=schema).print("xml") == xml


def test_json_ietf_keeps_64_bit_values_exact(tree):
    data = tree.to_python()["qstrata-test-types:types"]
    assert data["u64"] == "18446744073709551615" and data["i64"] == "-9223372036854775808"
    assert data["d18"] == "9.223372036854775807"
    assert data["present"] == [None]


def _leaf_update(leaf: str, **typed) -> gnmi_pb2.Update:
    return gnmi_pb2.Update(path=xpath_to_gnmi(f"{TOP}/{leaf}"), val=gnmi_pb2.TypedValue(**typed))


def _canonical(tree: DataTree, leaf: str) -> str | None:
    node = tree.get(f"{TOP}/{leaf}")
    assert node is not None, leaf
    return c_str(lib.lyd_get_value(node.cdata))


@pytest.mark.parametrize(
    ("leaf", "typed", "canonical"),
    [
        ("d1", {"double_val": 2.5}, "2.5"),
        ("d18", {"double_val": 1e-7}, "0.0000001"),
        ("d1", {"double_val": 1e16}, "10000000000000000.0"),
        ("d1", {"float_val": 0.1}, "0.1"),
        ("u8", {"double_val": 7.0}, "7"),
        ("text", {"ascii_val": "plain ascii"}, "plain ascii"),
        ("u64", {"json_ietf_val": b'"18446744073709551615"'}, "18446744073709551615"),
        ("u8", {"json_ietf_val": b"200"}, "200"),
        ("i64", {"json_ietf_val": b'"-9223372036854775808"'}, "-9223372036854775808"),
        ("flag", {"json_ietf_val": b"false"}, "false"),
        ("flag", {"json_val": b"true"}, "true"),
        ("d1", {"json_ietf_val": b'"-0.5"'}, "-0.5"),
        ("text", {"json_ietf_val": '"ünï"'.encode()}, "ünï"),
        ("colour", {"json_ietf_val": b'"qstrata-test-types:red"'}, "qstrata-test-types:red"),
        ("present", {"json_ietf_val": b"[null]"}, ""),
        ("choice-of", {"uint_val": 7}, "7"),
        ("choice-of", {"string_val": "unlimited"}, "unlimited"),
        ("i32", {"int_val": -5}, "-5"),
        ("d18", {"decimal_val": gnmi_pb2.Decimal64(digits=-1, precision=18)}, "-0.000000000000000001"),
        ("blob", {"bytes_val": b""}, ""),
    ],
)
def test_decoding_accepts_what_clients_send(schema, leaf, typed, canonical):
    tree = gnmi.updates_to_tree([_leaf_update(leaf, **typed)], schema=schema)
    tree.validate()
    assert _canonical(tree, leaf) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        {"any_val": {"type_url": "type.googleapis.com/x", "value": b"\x00"}},
        {"proto_bytes": b"\x08\x01"},
        {},
        {"json_ietf_val": b'{"a": 1}'},
        {"json_ietf_val": b"not json"},
    ],
    ids=["any_val", "proto_bytes", "unset", "json-object", "json-garbage"],
)
def test_unsupported_typed_values_raise(schema, typed):
    with pytest.raises(gnmi.UnsupportedValue):
        gnmi.updates_to_tree([_leaf_update("u8", **typed)], schema=schema)


@pytest.mark.parametrize(
    ("leaf", "typed"),
    [("u8", {"uint_val": 256}), ("i8", {"int_val": -129}), ("d1", {"double_val": 0.25}),
     ("flag", {"string_val": "yes"}), ("mode", {"string_val": "sideways"})],
)
def test_out_of_type_values_raise_invalid_data_with_the_path(schema, leaf, typed):
    with pytest.raises(InvalidData) as err:
        gnmi.updates_to_tree([_leaf_update(leaf, **typed)], schema=schema)
    assert any(i.path == f"{TOP}/{leaf}" for i in err.value.issues)


@pytest.mark.parametrize(
    ("base", "canonical", "python"),
    [
        ("INT8", "-128", -128),
        ("INT64", "-9223372036854775808", -9223372036854775808),
        ("UINT64", "18446744073709551615", 18446744073709551615),
        ("DEC64", "9.223372036854775807", Decimal("9.223372036854775807")),
        ("DEC64", "-922337203685477580.8", Decimal("-922337203685477580.8")),
        ("BOOL", "true", True),
        ("BOOL", "false", False),
        ("BINARY", "AAEC/w==", b"\x00\x01\x02\xff"),
        ("EMPTY", None, None),
        ("STRING", UNICODE, UNICODE),
        ("IDENT", "etsi-qkd-node-types:PHYS", "etsi-qkd-node-types:PHYS"),
        ("BITS", "read execute", "read execute"),
        ("ENUM", "auto-tune", "auto-tune"),
    ],
)
def test_values_round_trip(base, canonical, python):
    value = to_python(getattr(lib, f"LY_TYPE_{base}"), canonical)
    assert value == python and type(value) is type(python)
    assert to_canonical(value) == canonical


def test_decimal64_never_passes_through_a_float():
    value = to_python(lib.LY_TYPE_DEC64, "0.100000000000000001")
    assert value == Decimal("0.100000000000000001")
    assert to_canonical(value) == "0.100000000000000001"


@pytest.mark.parametrize(("value", "text"), [(1e-7, "0.0000001"), (1e16, "10000000000000000"), (7.0, "7"), (2.5, "2.5")])
def test_floats_become_positional_decimals(value, text):
    assert to_canonical(value) == text
