"""Keys from the URI in request bodies, for every YANG key type (RFC 8040 s3.5.3, RFC 7951 s6).

A PUT, PATCH or POST body is parsed inside the target's ancestors, each list entry with the keys
the URI gives, as strings. RFC 7951 writes a uint32 as a JSON number, and libyang refuses the
string ``"13"`` for it: a PUT of ``/optical-switch:port-config/port=13/label`` was refused with
``Invalid non-number-encoded uint32 value "13"``. Here the codec (`agents/restconf/codec.py`)
on a module with a list per key type, in both JSON media (strict RFC 8040 and plain JSON); the
same requests against agent processes, on the models' own lists, are in
test_restconf_keys.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from qstrata.agents.restconf import codec, resource
from qstrata.agents.restconf.errors import RestconfError
from qstrata.bindings.schema import Schema
from qstrata.bindings.schema_index import schema_index

MODULE = "key-types"
_LISTS = {  # list name -> (the key's type statement, a key value as a URI carries it, as RFC 7951 has it)
    "u8": ("uint8", "7", 7),
    "u16": ("uint16", "65535", 65535),
    "u32": ("uint32", "13", 13),
    "u64": ("uint64", "18446744073709551615", "18446744073709551615"),
    "i8": ("int8", "-8", -8),
    "i32": ("int32", "-13", -13),
    "i64": ("int64", "-9223372036854775808", "-9223372036854775808"),
    "dec": ("decimal64 { fraction-digits 2; }", "1.50", "1.5"),
    "flag": ("boolean", "true", True),
    "str": ("string", "port 13", "port 13"),
    "digits": ("string", "13", "13"),
    "enum": ("enumeration { enum north; enum south; }", "south", "south"),
    "ident": ("identityref { base colour; }", "key-types:red", "key-types:red"),
    "num-or-text": ("union { type uint32; type string; }", "13", 13),
    "text-of-union": ("union { type uint32; type string; }", "thirteen", "thirteen"),
    "ref": ("leafref { path '/kt:lists/kt:u32/kt:k'; }", "13", 13),
}
YANG = f"""module {MODULE} {{
  yang-version 1.1;
  namespace "urn:qstrata:test:{MODULE}";
  prefix kt;
  identity colour;
  identity red {{ base colour; }}
  container lists {{
{"".join(f'''    list {name} {{ key k; leaf k {{ type {kind if kind.endswith('}') else kind + ';'} }} leaf label {{ type string; }} }}
''' for name, (kind, _, _) in _LISTS.items())}
    list pair {{ key "id name"; leaf id {{ type uint32; }} leaf name {{ type string; }} leaf label {{ type string; }} }}
    list outer {{
      key id;
      leaf id {{ type uint32; }}
      leaf label {{ type string; }}
      list inner {{ key n; leaf n {{ type uint16; }} leaf label {{ type string; }} }}
    }}
  }}
}}
"""
ENTRIES = [(f"{name}={uri}", (name,), {"k": value}) for name, (_, uri, value) in _LISTS.items()] + [
    ("pair=13,north", ("pair",), {"id": 13, "name": "north"}),
    ("outer=13", ("outer",), {"id": 13}),
    ("outer=13/inner=7", ("outer", "inner"), {"n": 7})]
"""(the entry's resource path below lists, its list and the lists above it, its keys as RFC 7951 has them)"""
MEDIA = {"json": '{"key-types:label": "x"}', "plain": '{"label": "x"}'}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    yang_dir: Path = tmp_path_factory.mktemp("key-types")
    (yang_dir / f"{MODULE}.yang").write_text(YANG)
    return Schema(yang_dir=yang_dir)


def _decode(schema: Schema, path: str, body: str, media: str, *, child: bool) -> codec.Body:
    index = schema_index(schema)
    target = resource.parse(index, path.replace(" ", "%20"))
    return codec.decode(body.encode(), media, target, schema, index, child)  # type: ignore[arg-type]


def _entry(body: codec.Body, lists: tuple[str, ...]) -> dict:
    node = body.tree.to_python()[f"{MODULE}:lists"]
    for name in lists:
        (node,) = node[name]
    return node


@pytest.mark.parametrize("media", MEDIA)
@pytest.mark.parametrize(("entry", "lists", "keys"), ENTRIES, ids=[e for e, _, _ in ENTRIES])
def test_a_leaf_of_an_entry_keyed_by_any_type(schema: Schema, entry: str, lists: tuple[str, ...], keys: dict,
                                              media: str) -> None:
    """PUT and PATCH of ``.../entry=KEY/label``: the body holds the leaf, its entry comes from the URI."""
    body = _decode(schema, f"/{MODULE}:lists/{entry}/label", MEDIA[media], media, child=False)
    assert body.node.name == "label" and body.path.endswith("/label")
    assert _entry(body, lists) == {**keys, "label": "x"}


@pytest.mark.parametrize("media", MEDIA)
@pytest.mark.parametrize(("entry", "lists", "keys"), ENTRIES, ids=[e for e, _, _ in ENTRIES])
def test_a_post_into_an_entry_keyed_by_any_type(schema: Schema, entry: str, lists: tuple[str, ...], keys: dict,
                                                media: str) -> None:
    """POST of the leaf to ``.../entry=KEY``: a new child of the entry."""
    body = _decode(schema, f"/{MODULE}:lists/{entry}", MEDIA[media], media, child=True)
    assert body.node.name == "label" and _entry(body, lists) == {**keys, "label": "x"}


@pytest.mark.parametrize("media", MEDIA)
def test_a_post_of_an_entry_into_a_list_under_a_uint32_keyed_entry(schema: Schema, media: str) -> None:
    inner = '{"key-types:inner": [{"n": 7, "label": "x"}]}' if media == "json" else '{"inner": [{"n": 7, "label": "x"}]}'
    body = _decode(schema, f"/{MODULE}:lists/outer=13", inner, media, child=True)
    assert body.node.name == "inner" and body.keys == (("n", "7"),)
    assert _entry(body, ("outer", "inner")) == {"n": 7, "label": "x"}
    assert body.tree.to_python()[f"{MODULE}:lists"]["outer"][0]["id"] == 13


@pytest.mark.parametrize(("entry", "tag"), [("u32=x", "invalid-value"), ("u8=256", "invalid-value"),
                                            ("flag=yes", "invalid-value"), ("enum=west", "invalid-value")])
def test_a_key_its_type_refuses_is_a_400(schema: Schema, entry: str, tag: str) -> None:
    with pytest.raises(RestconfError) as refused:
        _decode(schema, f"/{MODULE}:lists/{entry}/label", MEDIA["json"], "json", child=False)
    assert refused.value.http_status == 400 and refused.value.tag == tag
    assert entry.split("=")[1] in refused.value.message
