"""The parsed-request cache: reused only for byte-identical read-only requests."""

from __future__ import annotations

from qstrata.agents.netconf.requests import RequestCache
from qstrata.bindings.wire.xmlsafe import parse_message

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def rpc(body: str, mid: str = "1", extra: str = "") -> bytes:
    return f'<rpc xmlns="{NC}" message-id="{mid}"{extra}>{body}</rpc>'.encode()


GET_CONFIG = "<get-config><source><running/></source></get-config>"


def remembered(message: bytes) -> RequestCache:
    cache = RequestCache()
    cache.remember(message, parse_message(message))
    return cache


def test_same_request_with_another_message_id_is_reused_under_the_new_id() -> None:
    cache = remembered(rpc(GET_CONFIG, "101"))
    root, attrs = cache.lookup(rpc(GET_CONFIG, "urn:uuid:5f0c-42"))
    assert attrs == {"message-id": "urn:uuid:5f0c-42"}
    assert root.find(f"{{{NC}}}get-config") is not None


def test_other_content_is_not_reused() -> None:
    cache = remembered(rpc(GET_CONFIG))
    assert cache.lookup(rpc(GET_CONFIG.replace("running", "startup"))) is None
    assert cache.lookup(rpc(GET_CONFIG + " ")) is None


def test_writes_and_unusual_requests_are_not_kept() -> None:
    edit = "<edit-config><target><running/></target><config/></edit-config>"
    for message in (
        rpc(edit),                                          # not read-only
        rpc(GET_CONFIG, extra=' xmlns:x="urn:x" x:a="1"'),  # other attributes to echo
        rpc(GET_CONFIG, mid="a&amp;b"),                     # needs unescaping
        rpc(GET_CONFIG, mid="a b"),                         # attribute normalization
    ):
        cache = remembered(message)
        assert cache.lookup(message) is None, message


def test_lookup_ignores_message_ids_outside_the_rpc_tag() -> None:
    cache = remembered(rpc(GET_CONFIG))
    body = '<get-config><source><running/></source><filter message-id="7"/></get-config>'
    assert cache.lookup(f'<rpc xmlns="{NC}">{body}</rpc>'.encode()) is None


def test_cache_is_bounded() -> None:
    cache = RequestCache()
    for i in range(500):
        message = rpc(f'<get-config><source><running/></source><filter type="xpath" select="/a{i}"/></get-config>')
        cache.remember(message, parse_message(message))
    assert len(cache._entries) <= 128  # noqa: SLF001
