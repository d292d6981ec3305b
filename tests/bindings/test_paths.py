"""Data paths <-> gNMI Path messages <-> gNMI path strings, table-driven."""

from __future__ import annotations

import pytest
from gnmi_pb import gnmi_pb2
from qstrata.bindings.paths import (
    PathSyntaxError,
    gnmi_path_to_string,
    gnmi_string_to_path,
    gnmi_to_xpath,
    has_wildcards,
    join,
    xpath_to_gnmi,
)


def P(*elems: str | tuple[str, dict[str, str]], origin: str = "") -> gnmi_pb2.Path:  # noqa: N802
    out = []
    for e in elems:
        name, keys = (e, {}) if isinstance(e, str) else e
        out.append(gnmi_pb2.PathElem(name=name, key=keys))
    return gnmi_pb2.Path(elem=out, origin=origin)


LINK = "etsi-qkd-sdn-node:qkd_node"

# (data path as libyang prints it, gNMI Path, gNMI path string); keys printed sorted by name
CASES = [
    ("/", P(), "/"),
    (f"/{LINK}", P(LINK), f"/{LINK}"),
    (f"/{LINK}/qkdn_id", P(LINK, "qkdn_id"), f"/{LINK}/qkdn_id"),
    (
        f"/{LINK}/qkd_links/qkd_link[qkdl_id='00000000-0000-0000-0000-0000000000c1']/qkdl_enable",
        P(LINK, "qkd_links", ("qkd_link", {"qkdl_id": "00000000-0000-0000-0000-0000000000c1"}), "qkdl_enable"),
        f"/{LINK}/qkd_links/qkd_link[qkdl_id=00000000-0000-0000-0000-0000000000c1]/qkdl_enable",
    ),
    # two keys
    (
        "/m:top/item[index='-1'][name='a']/weight",
        P("m:top", ("item", {"name": "a", "index": "-1"}), "weight"),
        "/m:top/item[index=-1][name=a]/weight",
    ),
    # ']' in a key: quoted in XPath, escaped in gNMI strings
    ("/m:l[k='x]y']/v", P(("m:l", {"k": "x]y"}), "v"), "/m:l[k=x\\]y]/v"),
    # "'" in a key: XPath quotes with '"', gNMI strings take it literally
    ("/m:l[k=\"it's\"]/v", P(("m:l", {"k": "it's"}), "v"), "/m:l[k=it's]/v"),
    ("/m:l[k='say \"hi\"']/v", P(("m:l", {"k": 'say "hi"'}), "v"), '/m:l[k=say "hi"]/v'),
    # '/' and '=' in keys do not split elements or keys
    ("/m:l[k='a/b/c']/v", P(("m:l", {"k": "a/b/c"}), "v"), "/m:l[k=a/b/c]/v"),
    ("/m:l[k='a=b']/v", P(("m:l", {"k": "a=b"}), "v"), "/m:l[k=a=b]/v"),
    ("/m:l[k='x=y/z]']", P(("m:l", {"k": "x=y/z]"})), "/m:l[k=x=y/z\\]]"),
    # backslashes: literal in XPath, doubled in gNMI strings
    ("/m:l[k='a\\b']/v", P(("m:l", {"k": "a\\b"}), "v"), "/m:l[k=a\\\\b]/v"),
    ("/m:l[k='end\\']", P(("m:l", {"k": "end\\"})), "/m:l[k=end\\\\]"),
    ("/m:l[k='\\]']", P(("m:l", {"k": "\\]"})), "/m:l[k=\\\\\\]]"),
    ("/m:l[k='a[b']", P(("m:l", {"k": "a[b"})), "/m:l[k=a[b]"),
    ("/m:l[k=' padded ']", P(("m:l", {"k": " padded "})), "/m:l[k= padded ]"),
    ("/m:l[k='']", P(("m:l", {"k": ""})), "/m:l[k=]"),
    ("/m:l[k='量子']/v", P(("m:l", {"k": "量子"}), "v"), "/m:l[k=量子]/v"),
    # module change below the top
    (
        "/optical-switch:port-config/port[port-id='4']/qstrata-optical-switch:crosstalk",
        P("optical-switch:port-config", ("port", {"port-id": "4"}), "qstrata-optical-switch:crosstalk"),
        "/optical-switch:port-config/port[port-id=4]/qstrata-optical-switch:crosstalk",
    ),
    # wildcards
    (f"/{LINK}/*/qkd_link", P(LINK, "*", "qkd_link"), f"/{LINK}/*/qkd_link"),
    (f"/{LINK}/.../qkdl_enable", P(LINK, "...", "qkdl_enable"), f"/{LINK}/.../qkdl_enable"),
    ("/.../qkdl_enable", P("...", "qkdl_enable"), "/.../qkdl_enable"),
]


@pytest.mark.parametrize(("xpath", "path", "string"), CASES, ids=[c[0] for c in CASES])
def test_data_path_to_gnmi_and_string(xpath, path, string):
    assert xpath_to_gnmi(xpath) == path
    assert gnmi_path_to_string(path) == string
    assert gnmi_string_to_path(string) == path
    assert gnmi_string_to_path(gnmi_path_to_string(path)) == path


XPATH_BACK = {
    f"/{LINK}/.../qkdl_enable": f"/{LINK}//qkdl_enable",
    "/.../qkdl_enable": "//qkdl_enable",
}


@pytest.mark.parametrize(("xpath", "path", "string"), CASES, ids=[c[0] for c in CASES])
def test_gnmi_to_data_path(xpath, path, string):
    back = gnmi_to_xpath(path)
    assert back == XPATH_BACK.get(xpath, xpath)
    if xpath not in XPATH_BACK:
        assert xpath_to_gnmi(back) == path


def test_key_wildcard():
    path = gnmi_string_to_path(f"/{LINK}/qkd_links/qkd_link[qkdl_id=*]/qkdl_enable")
    assert path == P(LINK, "qkd_links", ("qkd_link", {"qkdl_id": "*"}), "qkdl_enable")
    assert xpath_to_gnmi(f"/{LINK}/qkd_links/qkd_link[qkdl_id='*']/qkdl_enable") == path
    # an XPath has no key wildcard: the predicate is dropped, selecting every entry
    assert gnmi_to_xpath(path) == f"/{LINK}/qkd_links/qkd_link/qkdl_enable"
    # only the wildcard key is dropped
    two = P(("m:l", {"a": "*", "b": "1"}))
    assert gnmi_to_xpath(two) == "/m:l[b='1']"


@pytest.mark.parametrize(
    ("path", "wild"),
    [
        (P(LINK, "qkdn_id"), False),
        (P(LINK, "*"), True),
        (P("...", "x"), True),
        (P(("m:l", {"k": "*"})), True),
        (P(("m:l", {"k": "a*"})), False),
        (P(), False),
    ],
)
def test_has_wildcards(path, wild):
    assert has_wildcards(path) is wild


def test_join_prefix_and_path():
    prefix = P(LINK, "qkd_links", origin="openconfig")
    path = P(("qkd_link", {"qkdl_id": "x"}), "qkdl_enable")
    joined = join(prefix, path)
    assert joined == P(LINK, "qkd_links", ("qkd_link", {"qkdl_id": "x"}), "qkdl_enable", origin="openconfig")
    assert gnmi_to_xpath(path, prefix) == f"/{LINK}/qkd_links/qkd_link[qkdl_id='x']/qkdl_enable"
    assert join(None, path) is path
    assert join(P(), path) is path


def test_origin_is_kept():
    assert xpath_to_gnmi("/m:a", origin="rfc7951").origin == "rfc7951"
    assert gnmi_string_to_path("/", origin="rfc7951") == P(origin="rfc7951")


def test_leaf_list_value_predicate_is_dropped():
    assert xpath_to_gnmi(f"/{LINK}/qkd_links/qkd_link[qkdl_id='x']/virt_next_hop[.='y']") == P(
        LINK, "qkd_links", ("qkd_link", {"qkdl_id": "x"}), "virt_next_hop")


def test_key_with_both_quote_characters_has_no_xpath_form():
    path = P(("m:l", {"k": "it's \"x\""}))
    assert gnmi_string_to_path(gnmi_path_to_string(path)) == path
    with pytest.raises(PathSyntaxError):
        gnmi_to_xpath(path)


BAD = [
    "relative/path",
    "m:a",
    "/m:a/b[k='v'",
    "/m:a/b[k=v",
    "/m:a/b]",
    "/m:a/b[k='v']]",
    "/m:a//b",
    "/m:a/",
    "//m:a",
    "/m:a/[k=v]",
    "/m:a/b[=v]",
    "/m:a/b[k]",
    "/m:a/b[k=v]tail",
    "/m:a/b[k='v'x]",
]


@pytest.mark.parametrize("bad", BAD)
def test_bad_data_paths_raise(bad):
    with pytest.raises(PathSyntaxError):
        xpath_to_gnmi(bad)


@pytest.mark.parametrize("bad", [b for b in BAD if b != "/m:a/b[k='v'x]"])
def test_bad_gnmi_strings_raise(bad):
    with pytest.raises(PathSyntaxError):
        gnmi_string_to_path(bad)


def test_path_syntax_error_is_a_value_error():
    assert issubclass(PathSyntaxError, ValueError)
