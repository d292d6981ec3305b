"""rpc-error / rpc-reply rendering (RFC 6241 s4.2, s4.3, Appendix A): table-driven."""

from __future__ import annotations

import pytest
from lxml import etree
from qstrata.agents.netconf.errors import (
    BASE_NS,
    ErrorSeverity,
    ErrorTag,
    ErrorType,
    RpcError,
    rpc_reply_data,
    rpc_reply_ok,
    rpc_reply_with_errors,
)

NC = {"nc": BASE_NS}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# RFC 6241 Appendix A: tag -> (allowed error-types, error-info elements)
APPENDIX_A = {
    "in-use": ({"protocol", "application"}, ()),
    "invalid-value": ({"protocol", "application"}, ()),
    "too-big": ({"transport", "rpc", "protocol", "application"}, ()),
    "missing-attribute": ({"rpc", "protocol", "application"}, ("bad-attribute", "bad-element")),
    "bad-attribute": ({"rpc", "protocol", "application"}, ("bad-attribute", "bad-element")),
    "unknown-attribute": ({"rpc", "protocol", "application"}, ("bad-attribute", "bad-element")),
    "missing-element": ({"protocol", "application"}, ("bad-element",)),
    "bad-element": ({"protocol", "application"}, ("bad-element",)),
    "unknown-element": ({"protocol", "application"}, ("bad-element",)),
    "unknown-namespace": ({"protocol", "application"}, ("bad-element", "bad-namespace")),
    "access-denied": ({"protocol", "application"}, ()),
    "lock-denied": ({"protocol"}, ("session-id",)),
    "resource-denied": ({"transport", "rpc", "protocol", "application"}, ()),
    "rollback-failed": ({"protocol", "application"}, ()),
    "data-exists": ({"application"}, ()),
    "data-missing": ({"application"}, ()),
    "operation-not-supported": ({"protocol", "application"}, ()),
    "operation-failed": ({"rpc", "protocol", "application"}, ()),
    "partial-operation": ({"application"}, ("ok-element", "err-element", "noop-element")),
    "malformed-message": ({"rpc"}, ()),
}


def parse(reply: bytes) -> etree._Element:
    assert reply.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    return etree.fromstring(reply)


def texts(element: etree._Element, path: str) -> list[str]:
    return [e.text for e in element.xpath(path, namespaces=NC)]


def test_every_appendix_a_tag_is_known() -> None:
    assert {t.value for t in ErrorTag} == set(APPENDIX_A)


@pytest.mark.parametrize("tag", list(ErrorTag), ids=lambda t: t.value)
def test_tag_metadata_matches_appendix_a(tag: ErrorTag) -> None:
    allowed, info = APPENDIX_A[tag.value]
    assert {t.value for t in tag.allowed_types} == allowed
    assert tag.default_type in tag.allowed_types
    assert tag.info_elements == info
    assert ErrorTag(tag.value) is tag and str(tag) == tag.value


@pytest.mark.parametrize(
    ("tag", "error_type"),
    [(tag, t) for tag in ErrorTag for t in ErrorType],
    ids=lambda v: v.value,
)
def test_error_type_is_checked_against_the_tag(tag: ErrorTag, error_type: ErrorType) -> None:
    if error_type in tag.allowed_types:
        assert RpcError(tag, error_type=error_type).error_type is error_type
    else:
        with pytest.raises(ValueError, match="Appendix A"):
            RpcError(tag, error_type=error_type)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            RpcError(
                ErrorTag.MISSING_ATTRIBUTE, info=[("bad-attribute", "message-id"), ("bad-element", "rpc")]
            ),
            {
                "error-type": ["rpc"],
                "error-tag": ["missing-attribute"],
                "error-severity": ["error"],
                "error-info/nc:bad-attribute": ["message-id"],
                "error-info/nc:bad-element": ["rpc"],
                "error-message": [],
                "error-path": [],
                "error-app-tag": [],
            },
        ),
        (
            RpcError(ErrorTag.LOCK_DENIED, "locked by session 4", info=[("session-id", "4")]),
            {
                "error-type": ["protocol"],
                "error-tag": ["lock-denied"],
                "error-message": ["locked by session 4"],
                "error-info/nc:session-id": ["4"],
            },
        ),
        (
            RpcError(
                "data-exists",
                "already there",
                severity="warning",
                app_tag="qstrata:duplicate",
                path="/t:top/t:users/t:user[t:name='fred']",
                path_namespaces={"t": "http://example.com/schema/1.2/config"},
            ),
            {
                "error-type": ["application"],
                "error-tag": ["data-exists"],
                "error-severity": ["warning"],
                "error-app-tag": ["qstrata:duplicate"],
                "error-path": ["/t:top/t:users/t:user[t:name='fred']"],
            },
        ),
        (
            RpcError(
                ErrorTag.PARTIAL_OPERATION,
                info=[("ok-element", "a"), ("err-element", "b"), ("noop-element", "c")],
            ),
            {
                "error-info/nc:ok-element": ["a"],
                "error-info/nc:err-element": ["b"],
                "error-info/nc:noop-element": ["c"],
            },
        ),
        (
            RpcError(ErrorTag.UNKNOWN_NAMESPACE, info=[("bad-element", "x"), ("bad-namespace", "urn:nope")]),
            {"error-info/nc:bad-namespace": ["urn:nope"], "error-type": ["protocol"]},
        ),
        (RpcError(ErrorTag.MALFORMED_MESSAGE, "bad XML"), {"error-type": ["rpc"]}),
        (RpcError(ErrorTag.OPERATION_FAILED, "device refused"), {"error-type": ["application"]}),
        (RpcError(ErrorTag.TOO_BIG, error_type="transport"), {"error-type": ["transport"]}),
    ],
    ids=lambda v: v.tag.value if isinstance(v, RpcError) else "",
)
def test_rpc_error_fields(error: RpcError, expected: dict[str, list[str]]) -> None:
    reply = parse(rpc_reply_with_errors([error], {"message-id": "7"}))
    (rpc_error,) = reply.xpath("nc:rpc-error", namespaces=NC)
    for path, values in expected.items():
        assert texts(rpc_error, "nc:" + path) == values, path
    # Children come in the RFC 6241 Appendix B schema order.
    order = [
        "error-type",
        "error-tag",
        "error-severity",
        "error-app-tag",
        "error-path",
        "error-message",
        "error-info",
    ]
    names = [etree.QName(child).localname for child in rpc_error]
    assert names == sorted(names, key=order.index)
    assert all(etree.QName(child).namespace == BASE_NS for child in rpc_error)


def test_error_path_declares_its_prefixes() -> None:
    error = RpcError(
        ErrorTag.INVALID_VALUE,
        path="/t:top/q:link[q:id='1']",
        path_namespaces={"t": "urn:example:top", "q": "urn:example:quantum"},
    )
    (path,) = parse(rpc_reply_with_errors([error], {})).xpath("//nc:error-path", namespaces=NC)
    assert path.nsmap["t"] == "urn:example:top"
    assert path.nsmap["q"] == "urn:example:quantum"
    with pytest.raises(ValueError):
        RpcError(ErrorTag.INVALID_VALUE, path="/top", path_namespaces={None: "urn:x"})


def test_error_message_is_english_tagged() -> None:
    (message,) = parse(rpc_reply_with_errors([RpcError(ErrorTag.IN_USE, "busy")], {})).xpath(
        "//nc:error-message", namespaces=NC
    )
    assert message.get(XML_LANG) == "en" and message.text == "busy"


def test_error_info_accepts_foreign_elements() -> None:
    extra = etree.fromstring('<detail xmlns="urn:example:vendor"><code>42</code></detail>')
    error = RpcError(ErrorTag.OPERATION_FAILED, info=[("{urn:example:vendor}hint", "retry"), extra])
    info = parse(rpc_reply_with_errors([error], {})).find(f"{{{BASE_NS}}}rpc-error/{{{BASE_NS}}}error-info")
    assert [child.tag for child in info] == ["{urn:example:vendor}hint", "{urn:example:vendor}detail"]
    assert info[1][0].text == "42"


def test_several_errors_in_one_reply() -> None:
    errors = [RpcError(ErrorTag.BAD_ELEMENT, "one"), RpcError(ErrorTag.DATA_MISSING, "two")]
    reply = parse(rpc_reply_with_errors(errors, {"message-id": "9"}))
    assert texts(reply, "nc:rpc-error/nc:error-message") == ["one", "two"]
    with pytest.raises(ValueError):
        rpc_reply_with_errors([], {"message-id": "9"})


def test_rpc_error_is_an_exception() -> None:
    with pytest.raises(RpcError) as caught:
        raise RpcError(ErrorTag.ACCESS_DENIED, "not for you")
    assert str(caught.value) == "access-denied: not for you"
    assert caught.value.severity is ErrorSeverity.ERROR


# -- rpc-reply attributes (RFC 6241 s4.2) ----------------------------------------------------

RPC = (
    b'<rpc message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"'
    b' xmlns:ex="http://example.net/content/1.0" ex:user-id="fred" plain="x"><get/></rpc>'
)


@pytest.mark.parametrize(
    "render",
    [
        lambda attrs, nsmap: rpc_reply_ok(attrs, nsmap=nsmap),
        lambda attrs, nsmap: rpc_reply_with_errors([RpcError(ErrorTag.IN_USE)], attrs, nsmap=nsmap),
        lambda attrs, nsmap: rpc_reply_data(attrs, None, nsmap=nsmap),
        lambda attrs, nsmap: rpc_reply_data(attrs, b"<x xmlns='urn:x'/>", nsmap=nsmap),
    ],
    ids=["ok", "errors", "data", "data-bytes"],
)
def test_reply_echoes_every_rpc_attribute(render) -> None:
    rpc = etree.fromstring(RPC)
    reply_bytes = render(dict(rpc.attrib), rpc.nsmap)
    reply = parse(reply_bytes)
    assert reply.tag == f"{{{BASE_NS}}}rpc-reply"
    assert dict(reply.attrib) == {
        "message-id": "101",
        "{http://example.net/content/1.0}user-id": "fred",
        "plain": "x",
    }
    assert b'ex:user-id="fred"' in reply_bytes  # the client's prefix is kept
    assert reply.nsmap[None] == BASE_NS


def test_reply_without_nsmap_still_namespaces_attributes() -> None:
    reply = parse(rpc_reply_ok({"message-id": "1", "{urn:a}b": "c"}))
    assert reply.get("{urn:a}b") == "c"
    assert reply[0].tag == f"{{{BASE_NS}}}ok"


def test_reply_ok() -> None:
    reply = parse(rpc_reply_ok({"message-id": "3"}))
    assert [child.tag for child in reply] == [f"{{{BASE_NS}}}ok"]


@pytest.mark.parametrize(
    ("data", "children"),
    [
        (None, []),
        (etree.fromstring('<top xmlns="urn:t"><a>1</a></top>'), ["{urn:t}top"]),
        (
            [etree.fromstring('<a xmlns="urn:a"/>'), etree.fromstring('<b xmlns="urn:b"/>')],
            ["{urn:a}a", "{urn:b}b"],
        ),
        (etree.fromstring(f'<data xmlns="{BASE_NS}"><top xmlns="urn:t"/></data>'), ["{urn:t}top"]),
        (b'<top xmlns="urn:t"><a>1</a></top><other xmlns="urn:o"/>', ["{urn:t}top", "{urn:o}other"]),
        (b"", []),
    ],
    ids=["none", "element", "elements", "data-element", "bytes", "empty-bytes"],
)
def test_reply_data(data, children: list[str]) -> None:
    reply = parse(rpc_reply_data({"message-id": "5"}, data))
    (data_element,) = reply
    assert data_element.tag == f"{{{BASE_NS}}}data"
    assert [child.tag for child in data_element] == children
    assert reply.get("message-id") == "5"


def test_reply_data_does_not_rewrite_spliced_bytes() -> None:
    content = b'<top xmlns="urn:t"><a attr="&lt;data/&gt;">]]&gt;</a></top>'
    reply = rpc_reply_data({"message-id": '&<"'}, content)
    assert content in reply
    assert parse(reply).get("message-id") == '&<"'
