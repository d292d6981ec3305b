"""The wire package's untrusted-XML parser: hostile input fails fast with MalformedMessage, nothing else."""

from __future__ import annotations

import asyncio
import time

import pytest
from lxml import etree
from qstrata.agents.netconf.errors import BASE_NS, ErrorTag, ErrorType, RpcError, rpc_reply_with_errors
from qstrata.bindings.wire.xmlsafe import MalformedMessage, parse_message, parse_message_apart, tree_cost

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">&lol9;</rpc>"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE rpc [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get>&xxe;</get></rpc>"""

XXE_PARAMETER = b"""<!DOCTYPE rpc [<!ENTITY % ext SYSTEM "http://127.0.0.1:1/evil.dtd"> %ext;]><rpc/>"""

EXTERNAL_DTD = b'<!DOCTYPE rpc SYSTEM "file:///etc/passwd"><rpc/>'

HOSTILE = {
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE"),
    "external entity file": (XXE_FILE, "DOCTYPE"),
    "parameter entity over the network": (XXE_PARAMETER, "DOCTYPE"),
    "external DTD": (EXTERNAL_DTD, "DOCTYPE"),
    "DOCTYPE after comments and PIs": (b"\xef\xbb\xbf <!-- hi --><?pi x?>\n<!DOCTYPE a><a/>", "DOCTYPE"),
    "lower-case doctype": (b"<!doctype a><a/>", "DOCTYPE"),
    "undeclared entity": (b"<rpc>&xxe;</rpc>", "not well-formed"),
    "deep nesting": (b"<a>" * 200 + b"</a>" * 200, "nesting"),
    "very deep nesting": (b"<a>" * 100_000 + b"</a>" * 100_000, "nesting"),
    "garbage": (b"\x00\x01 hello, I am not XML", "not well-formed"),
    "plain text": (b"get-config running", "not well-formed"),
    "latin-1 bytes": ("<rpc><a>caf\xe9</a></rpc>".encode("latin-1"), "UTF-8"),
    "latin-1 declared": ('<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>'.encode("latin-1"), "UTF-8"),
    "utf-16": ("<rpc/>".encode("utf-16"), "UTF-8"),
    "truncated": (b'<rpc message-id="1"><get>', "not well-formed"),
    "mismatched tags": (b"<rpc><get></rpc></get>", "not well-formed"),
    "two roots": (b"<rpc/><rpc/>", "not well-formed"),
    "empty": (b"", "empty"),
    "whitespace only": (b" \r\n\t", "empty"),
    "unbound prefix": (b"<nc:rpc/>", "not well-formed"),
    "mismatch after CDATA": (b"<a><![CDATA[x]]></b>", "not well-formed"),
}


@pytest.mark.parametrize(("data", "why"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_a_clear_malformed_message(data: bytes, why: str) -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedMessage) as caught:
        parse_message(data)
    assert time.perf_counter() - started < 1.0
    assert why in caught.value.message
    assert "/etc/passwd" not in caught.value.message and "root:" not in caught.value.message
    assert "Traceback" not in caught.value.message


def test_element_count_is_bounded() -> None:
    data = b"<rpc>" + b"<a/>" * 1001 + b"</rpc>"
    with pytest.raises(MalformedMessage, match="more than 1000 elements"):
        parse_message(data, max_elements=1000)
    assert len(parse_message(data, max_elements=1002)) == 1001


def test_depth_is_configurable() -> None:
    data = b"<a>" * 10 + b"</a>" * 10
    with pytest.raises(MalformedMessage, match="deeper than 9"):
        parse_message(data, max_depth=9)
    assert parse_message(data, max_depth=10).tag == "a"


def test_well_formed_rpc_parses() -> None:
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- client comment -->'
        b'<rpc message-id="101" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        b"<get-config><source><running/></source><?ignored pi?>"
        b'<filter type="subtree"><top xmlns="http://example.com/schema/1.2/config">'
        b"<users><user><name>caf\xc3\xa9 &amp; &#x263A;</name></user></users></top></filter>"
        b"</get-config></rpc>"
    )
    root = parse_message(data)
    assert root.tag == f"{{{BASE_NS}}}rpc" and root.get("message-id") == "101"
    assert root.findtext(".//{http://example.com/schema/1.2/config}name") == "caf\u00e9 & \u263a"
    assert not [n for n in root.iter() if not isinstance(n.tag, str)]  # comments and PIs dropped


def test_cdata_mentioning_doctype_is_plain_text() -> None:
    root = parse_message(b"<a><![CDATA[<!DOCTYPE x>]]></a>")
    assert root.text == "<!DOCTYPE x>"


def test_malformed_message_becomes_an_rpc_error() -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_message(b"<rpc")
    error = RpcError(ErrorTag.MALFORMED_MESSAGE, caught.value.message)  # what the agent's session sends
    assert error.error_type is ErrorType.RPC
    reply = etree.fromstring(rpc_reply_with_errors([error], {}))
    assert reply.findtext(f".//{{{BASE_NS}}}error-tag") == "malformed-message"
    assert reply.findtext(f".//{{{BASE_NS}}}error-message") == caught.value.message


def test_a_message_too_dense_for_its_size_is_refused_before_parsing() -> None:
    """An attribute bomb: 200,000 attributes cost libxml2 about 50 MB for 2 MiB of message."""
    bomb = b"<rpc><get " + b" ".join(b"a%d=''" % i for i in range(200_000)) + b"/></rpc>"
    started = time.perf_counter()
    with pytest.raises(MalformedMessage, match=r"too dense .* attributes in 2088907 bytes"):
        parse_message(bomb)
    assert time.perf_counter() - started < 0.5
    empties = b"<rpc>" + b"<a/>" * 200_000 + b"</rpc>"
    with pytest.raises(MalformedMessage, match="too dense"):
        parse_message(empties, max_cost_factor=4)


def test_signs_that_only_look_like_attributes_cost_nothing() -> None:
    """'=' in text and in attribute values (XPath filters, base64 padding) is counted exactly once
    the quick bound is passed: a big message full of them still parses."""
    text = (b"<rpc><get><f sel=\"/a[b='1' and c='2']\"/>" + b"<v>x=1, y=2, z=3, QUJD==</v>" * 40_000
            + b"</get></rpc>")
    assert text.count(b"=") * 256 > 12 * len(text)  # the quick bound alone would refuse it
    assert len(parse_message(text)[0]) == 40_001


def test_a_bulk_edit_parses_and_its_cost_is_as_measured() -> None:
    entries = b"".join(b"<qkd_link><qkdl_id>%036d</qkdl_id></qkd_link>" % i for i in range(50_000))
    data = b"<rpc message-id='1'><edit-config><config>" + entries + b"</config></edit-config></rpc>"
    assert tree_cost(data) == (100_003, 50_000, 1)
    assert len(parse_message(data).find("edit-config/config")) == 50_000


def test_parse_apart_returns_the_tree_or_the_refusal() -> None:
    async def run() -> tuple[str, str]:
        root = await parse_message_apart(b"<rpc message-id='7'><get/></rpc>")
        with pytest.raises(MalformedMessage) as caught:
            await parse_message_apart(b"<rpc>")
        return root.get("message-id"), caught.value.message

    message_id, refusal = asyncio.run(run())
    assert message_id == "7" and refusal.startswith("not well-formed XML")


def test_a_big_message_is_measured_like_a_small_one() -> None:
    """Over 64 KiB the depth and the element count are taken by libxml2's XPath, not a walk."""
    padding = b"<p>" + b"x" * 70_000 + b"</p>"
    deep = b"<a>" * 130 + padding + b"</a>" * 130
    with pytest.raises(MalformedMessage, match="deeper than 128"):
        parse_message(deep)
    assert parse_message(deep, max_depth=131).tag == "a"
    many = b"<rpc>" + padding + b"<a/>" * 20_000 + b"</rpc>"
    with pytest.raises(MalformedMessage, match="more than 20000 elements"):
        parse_message(many, max_elements=20_000)
    assert len(parse_message(many, max_elements=20_002)) == 20_001
