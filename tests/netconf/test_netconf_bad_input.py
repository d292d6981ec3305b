"""Bad input against a real qkd agent: every refusal carries the right error-tag and error-path,
the datastore is byte-for-byte what it was, and the session (and the agent) live on.

Edits go through ncclient; what ncclient cannot send (malformed XML, a DOCTYPE, an <rpc> without
message-id, oversized frames, custom attributes on <rpc>) goes through a raw asyncssh client that
speaks RFC 6242 framing itself.
"""

from __future__ import annotations

import asyncio
import re

import asyncssh
import pytest
from lxml import etree
from netconf_helpers import call, errors

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES_NS = "urn:etsi:qkd:yang:etsi-qkd-node-types"
NS = {"nc": NC_NS, "q": QKD_NS}
BASE_11 = "urn:ietf:params:netconf:base:1.1"
MAX_MESSAGE = 16 * 1024 * 1024  # the agent's default limit

PHYS = "3f1c2a10-0000-4000-8000-0000000000a1"
VIRT = "3f1c2a10-0000-4000-8000-0000000000a2"
APP = "3f1c2a10-0000-4000-8000-0000000000b1"
MISSING = "3f1c2a10-0000-4000-8000-0000000000ff"
LINKS = "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link"


def link_path(qkdl_id: str, leaf: str = "") -> str:
    return f"{LINKS}[qkdl_id='{qkdl_id}']" + (f"/{leaf}" if leaf else "")


# ---------------------------------------------------------------------------- helpers


def config(body: str, ns: str = QKD_NS) -> str:
    return (f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}"><qkd_node xmlns="{ns}" xmlns:t="{TYPES_NS}">'
            f"{body}</qkd_node></config>")


def edit_rpc(body: str, target: str = "running", ns: str = QKD_NS) -> str:
    return f'<edit-config xmlns="{NC_NS}"><target><{target}/></target>{config(body, ns)}</edit-config>'






_MESSAGE_ID = re.compile(r'message-id="[^"]*"')


def snapshot(m) -> str:
    """The whole get-config reply as sent (message-id blanked): compared byte for byte."""
    return _MESSAGE_ID.sub('message-id=""', m.get_config(source="running").xml)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "bad-input", twin=False)


@pytest.fixture(scope="module")
def mgr(node, netconf_connect):
    m = netconf_connect(node)
    qkdn_id = m.get_config(source="running").data_ele.findtext("q:qkd_node/q:qkdn_id", namespaces=NS)
    m.edit_config(target="running", config=config(
        f"<qkd_applications><qkd_app><app_id>{APP}</app_id><app_type>t:CLIENT</app_type>"
        f"<backing_qkdl_id>{PHYS}</backing_qkdl_id></qkd_app></qkd_applications>"
        f"<qkd_links>"
        f"<qkd_link><qkdl_id>{PHYS}</qkdl_id><qkdl_type>t:PHYS</qkdl_type>"
        f"<qkdl_local><qkdn_id>{qkdn_id}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_local>"
        f"<phys_channel_att>5.25</phys_channel_att><phys_wavelength>1550</phys_wavelength></qkd_link>"
        f"<qkd_link><qkdl_id>{VIRT}</qkdl_id><qkdl_type>t:VIRT</qkdl_type><virt_bandwidth>1000</virt_bandwidth>"
        f"</qkd_link></qkd_links>"))
    m.qkdn_id = qkdn_id
    yield m
    if m.connected:
        m.close_session()


@pytest.fixture
def unchanged(mgr):
    """The running datastore must come out of the test exactly as it went in."""
    before = snapshot(mgr)
    assert PHYS in before and VIRT in before and APP in before
    yield before
    assert snapshot(mgr) == before


# ---------------------------------------------------------------------------- edit-config refusals

EDIT_CASES = {
    # name: (qkd_node content, error-tag, error-path, error-info subset)
    "bad-uuid-key": (
        "<qkd_links><qkd_link><qkdl_id>not-a-uuid</qkdl_id></qkd_link></qkd_links>",
        "invalid-value", f"{LINKS}/qkdl_id", {}),
    "bad-uuid-leaf": (
        f"<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id><qkdl_remote><qkdn_id>1234-zz</qkdn_id></qkdl_remote>"
        f"</qkd_link></qkd_links>",
        "invalid-value", link_path(PHYS, "qkdl_remote/qkdn_id"), {}),
    "uint32-overflow": (
        f"<qkd_links><qkd_link><qkdl_id>{VIRT}</qkdl_id><virt_bandwidth>4294967296</virt_bandwidth>"
        f"</qkd_link></qkd_links>",
        "invalid-value", link_path(VIRT, "virt_bandwidth"), {}),
    "negative-uint32": (
        f"<qkd_applications><qkd_app><app_id>{APP}</app_id><app_priority>-1</app_priority></qkd_app>"
        f"</qkd_applications>",
        "invalid-value", f"/etsi-qkd-sdn-node:qkd_node/qkd_applications/qkd_app[app_id='{APP}']/app_priority", {}),
    "decimal64-fraction-digits": (
        f"<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id><phys_channel_att>1.23456</phys_channel_att>"
        f"</qkd_link></qkd_links>",
        "invalid-value", link_path(PHYS, "phys_channel_att"), {}),
    "wavelength-pattern": (
        f"<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id><phys_wavelength>15500</phys_wavelength>"
        f"</qkd_link></qkd_links>",
        "invalid-value", link_path(PHYS, "phys_wavelength"), {}),
    "unknown-identity": (
        f"<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id><qkdl_type>t:SIDEWAYS</qkdl_type></qkd_link></qkd_links>",
        "invalid-value", link_path(PHYS, "qkdl_type"), {}),
    "unknown-element": (
        f"<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id><qkdl_colour>red</qkdl_colour></qkd_link></qkd_links>",
        "unknown-element", link_path(PHYS), {"bad-element": "qkdl_colour"}),
    "missing-key": (
        "<qkd_links><qkd_link><qkdl_enable>true</qkdl_enable></qkd_link></qkd_links>",
        "missing-element", LINKS, {"bad-element": "qkdl_id"}),
    "create-existing": (
        f'<qkd_links><qkd_link nc:operation="create"><qkdl_id>{PHYS}</qkdl_id></qkd_link></qkd_links>',
        "data-exists", link_path(PHYS), {}),
    "delete-missing": (
        f'<qkd_links><qkd_link nc:operation="delete"><qkdl_id>{MISSING}</qkdl_id></qkd_link></qkd_links>',
        "data-missing", link_path(MISSING), {}),
    "phys-leaf-on-virt-link": (
        f"<qkd_links><qkd_link><qkdl_id>{VIRT}</qkdl_id><phys_wavelength>1550</phys_wavelength>"
        f"</qkd_link></qkd_links>",
        "unknown-element", link_path(VIRT, "phys_wavelength"), {}),
}


@pytest.mark.parametrize("case", list(EDIT_CASES))
@pytest.mark.parametrize("target", ["running", "candidate"])
def test_bad_edit_is_refused_with_tag_and_path(mgr, unchanged, case, target) -> None:
    body, tag, path, info = EDIT_CASES[case]
    candidate_before = mgr.get_config(source="candidate").data_xml
    reply = call(mgr, edit_rpc(body, target))
    assert reply.find("nc:ok", NS) is None
    errs = errors(reply)
    assert errs, etree.tostring(reply)
    err = errs[0]
    assert (err["tag"], err["path"]) == (tag, path), err
    assert err["severity"] == "error"
    assert err["message"]
    for key, value in info.items():
        assert err["info"].get(key) == value, err
    assert len(err["info_names"]) == len(set(err["info_names"])), err  # e.g. one bad-element, not two
    # every prefix of the error-path is declared on the element
    assert err["path_nsmap"].get("etsi-qkd-sdn-node") == QKD_NS
    assert mgr.get_config(source="candidate").data_xml == candidate_before


def test_missing_mandatory_leaf(mgr, unchanged) -> None:
    reply = call(mgr, edit_rpc(f'<qkdn_id nc:operation="delete">{mgr.qkdn_id}</qkdn_id>'))
    [err] = errors(reply)
    assert (err["tag"], err["path"]) == ("missing-element", "/etsi-qkd-sdn-node:qkd_node/qkdn_id")
    assert err["info"].get("bad-element") == "qkdn_id"


def test_deleting_the_whole_node_is_refused(mgr, unchanged) -> None:
    before = mgr.get_config(source="running").data_ele
    reply = call(mgr, f'<edit-config xmlns="{NC_NS}"><target><running/></target><config>'
                      f'<qkd_node xmlns="{QKD_NS}" xmlns:nc="{NC_NS}" nc:operation="delete"/></config></edit-config>')
    if errors(reply) == []:  # accepted: put the configuration back before failing
        inner = "".join(etree.tostring(c, encoding="unicode") for c in before)
        call(mgr, f'<copy-config xmlns="{NC_NS}"><target><running/></target><source><config>{inner}</config>'
                  f"</source></copy-config>")
    [err] = errors(reply)
    assert (err["tag"], err["path"]) == ("missing-element", "/etsi-qkd-sdn-node:qkd_node/qkdn_id")


def test_wrong_namespace(mgr, unchanged) -> None:
    wrong = "urn:example:not-etsi"
    reply = call(mgr, edit_rpc(f"<qkdn_id>{mgr.qkdn_id}</qkdn_id>", ns=wrong))
    [err] = errors(reply)
    assert err["tag"] == "unknown-namespace"
    assert err["info"].get("bad-namespace") == wrong
    assert err["info"].get("bad-element") == "qkd_node"
    # nothing of the schema can be named, so the error-path is the edit's top (or absent)
    assert err["path"] in (None, "/", "/qkd_node")


def test_wrong_namespace_below_a_known_node(mgr, unchanged) -> None:
    reply = call(mgr, edit_rpc(f'<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id>'
                               f'<qkdl_enable xmlns="urn:example:other">true</qkdl_enable></qkd_link></qkd_links>'))
    [err] = errors(reply)
    assert err["tag"] == "unknown-namespace"
    assert err["path"] == link_path(PHYS)
    assert err["info"] == {"bad-element": "qkdl_enable", "bad-namespace": "urn:example:other"}


def test_bad_operation_attribute(mgr, unchanged) -> None:
    reply = call(mgr, edit_rpc(f'<qkd_links><qkd_link nc:operation="frobnicate"><qkdl_id>{PHYS}</qkdl_id>'
                               f"</qkd_link></qkd_links>"))
    [err] = errors(reply)
    assert err["tag"] == "bad-attribute"
    assert err["info"] == {"bad-attribute": "operation", "bad-element": "qkd_link"}


def test_unknown_operation(mgr, unchanged) -> None:
    reply = call(mgr, '<frobnicate xmlns="urn:example:ops"><now/></frobnicate>')
    [err] = errors(reply)
    assert err["tag"] == "operation-not-supported"
    assert err["info"].get("bad-element") == "frobnicate"
    # an unknown operation in the base namespace too
    reply = call(mgr, f'<get-everything xmlns="{NC_NS}"/>')
    assert [e["tag"] for e in errors(reply)] == ["operation-not-supported"]


def test_edit_of_a_config_false_node(mgr, unchanged) -> None:
    reply = call(mgr, edit_rpc(f"<qkd_links><qkd_link><qkdl_id>{PHYS}</qkdl_id><qkdl_performance><skr>5</skr>"
                               f"</qkdl_performance></qkd_link></qkd_links>"))
    errs = errors(reply)
    assert errs and errs[0]["tag"] in ("unknown-element", "invalid-value", "access-denied")


# ---------------------------------------------------------------------------- raw NETCONF client


def client_hello(base11: bool = True) -> bytes:
    caps = "<capability>urn:ietf:params:netconf:base:1.0</capability>"
    if base11:
        caps += f"<capability>{BASE_11}</capability>"
    return f'<hello xmlns="{NC_NS}"><capabilities>{caps}</capabilities></hello>]]>]]>'.encode()


class RawSession:
    """One NETCONF session over a plain asyncssh channel; chunked framing after the hellos."""

    def __init__(self, conn: asyncssh.SSHClientConnection, stdin, stdout) -> None:
        self.conn, self.stdin, self.stdout = conn, stdin, stdout
        self.buffer = b""
        self.server_hello: etree._Element | None = None

    @classmethod
    async def open(cls, node, base11: bool = True) -> RawSession:
        creds = node.credentials
        conn = await asyncssh.connect(node.host, node.port, username=creds["username"], password=creds["password"],
                                      known_hosts=None, client_keys=None, agent_path=None)
        stdin, stdout, _stderr = await conn.open_session(subsystem="netconf", encoding=None)
        session = cls(conn, stdin, stdout)
        hello = await session._read_until(b"]]>]]>")
        session.server_hello = etree.fromstring(hello)
        stdin.write(client_hello(base11))
        return session

    async def _read_more(self) -> None:
        data = await self.stdout.read(1 << 16)
        if not data:
            raise EOFError("session closed by the server")
        self.buffer += data

    async def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            await self._read_more()
        message, self.buffer = self.buffer.split(marker, 1)
        return message

    async def send_raw(self, data: bytes) -> None:
        self.stdin.write(data)
        await self.stdin.drain()

    async def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            message = message.encode()
        await self.send_raw(b"\n#%d\n%s\n##\n" % (len(message), message))

    async def receive(self, timeout: float = 10.0) -> bytes:
        return await asyncio.wait_for(self._receive(), timeout)

    async def _receive(self) -> bytes:
        chunks = []
        while True:
            while not re.match(rb"\n#(\d+|#)\n", self.buffer):
                if len(self.buffer) > 16 and not self.buffer.startswith(b"\n#"):
                    raise AssertionError(f"bad chunk framing from the server: {self.buffer[:40]!r}")
                await self._read_more()
            header = re.match(rb"\n#(\d+|#)\n", self.buffer)
            self.buffer = self.buffer[header.end():]
            if header.group(1) == b"#":
                return b"".join(chunks)
            size = int(header.group(1))
            while len(self.buffer) < size:
                await self._read_more()
            chunks.append(self.buffer[:size])
            self.buffer = self.buffer[size:]

    async def rpc(self, message: bytes | str, timeout: float = 10.0) -> etree._Element:
        await self.send(message)
        return etree.fromstring(await self.receive(timeout))

    async def closed(self, timeout: float = 10.0) -> bool:
        """True when the server ends the session (EOF) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._read_more()
        except (EOFError, asyncssh.Error, OSError):
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.conn.close()
        await self.conn.wait_closed()


def run(coro, timeout: float = 60.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


GET_CONFIG = '<get-config><source><running/></source></get-config>'


def rpc_text(body: str, message_id: str | None = "1", attrs: str = "") -> str:
    mid = f' message-id="{message_id}"' if message_id is not None else ""
    return f'<rpc xmlns="{NC_NS}"{mid}{attrs}>{body}</rpc>'


async def assert_usable(session: RawSession, message_id: str = "ok-1") -> None:
    reply = await session.rpc(rpc_text(GET_CONFIG, message_id))
    assert reply.get("message-id") == message_id
    assert reply.find("nc:data/q:qkd_node/q:qkdn_id", NS) is not None, etree.tostring(reply)


def test_malformed_xml_keeps_the_session(node, mgr, unchanged) -> None:
    async def scenario():
        s = await RawSession.open(node)
        try:
            for broken in (
                rpc_text("<get-config><source><running/></source></get-config")[:-6],  # truncated
                f'<rpc xmlns="{NC_NS}" message-id="2"><get-config></rpc>',  # mismatched tags
                "\x00\x01 not xml at all",
                f'<rpc xmlns="{NC_NS}" message-id="3">\xff\xfe</rpc>',
            ):
                reply = await s.rpc(broken.encode("latin-1"))
                [err] = errors(reply)
                assert (err["type"], err["tag"]) == ("rpc", "malformed-message"), err
                assert reply.get("message-id") is None  # nothing trustworthy to echo
                await assert_usable(s)
        finally:
            await s.close()

    run(scenario())


@pytest.mark.parametrize("doc", ["billion-laughs", "xxe-file", "xxe-parameter-entity"])
def test_doctype_attacks_are_refused(node, mgr, unchanged, doc) -> None:
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    docs = {
        "billion-laughs": f'<?xml version="1.0"?><!DOCTYPE rpc [{lol}]>'
                          + rpc_text(edit_rpc("<qkdn_location_id>&lol9;</qkdn_location_id>"), "10"),
        "xxe-file": '<?xml version="1.0"?><!DOCTYPE rpc [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                    + rpc_text(edit_rpc("<qkdn_location_id>&xxe;</qkdn_location_id>"), "11"),
        "xxe-parameter-entity": '<?xml version="1.0"?><!DOCTYPE rpc [<!ENTITY % ext SYSTEM '
                                '"http://127.0.0.1:9/evil.dtd"> %ext;]>' + rpc_text(GET_CONFIG, "12"),
    }

    async def scenario():
        s = await RawSession.open(node)
        try:
            reply = await s.rpc(docs[doc])
            errs = errors(reply)
            assert errs and errs[0]["tag"] == "malformed-message", etree.tostring(reply)
            raw = etree.tostring(reply)
            assert b"root:" not in raw and b"lollollol" not in raw
            await assert_usable(s)
        finally:
            await s.close()

    run(scenario())
    assert "lollol" not in snapshot(mgr)


def test_rpc_without_message_id(node, unchanged) -> None:
    async def scenario():
        s = await RawSession.open(node)
        try:
            reply = await s.rpc(rpc_text(GET_CONFIG, message_id=None))
            [err] = errors(reply)
            assert (err["type"], err["tag"]) == ("rpc", "missing-attribute")
            assert err["info"] == {"bad-attribute": "message-id", "bad-element": "rpc"}
            assert reply.find("nc:data", NS) is None
            await assert_usable(s)
        finally:
            await s.close()

    run(scenario())


def test_all_rpc_attributes_are_echoed(node, mgr, unchanged) -> None:
    attrs = ' xmlns:ex="urn:example:echo" ex:trace="t-42" ex:user="ops team"'

    async def scenario():
        s = await RawSession.open(node)
        try:
            replies = [
                await s.rpc(rpc_text(edit_rpc(f'<qkd_links><qkd_link nc:operation="delete"><qkdl_id>{MISSING}'
                                              f"</qkdl_id></qkd_link></qkd_links>"), "m-101", attrs)),
                await s.rpc(rpc_text('<frobnicate xmlns="urn:example:ops"/>', "m-102", attrs)),
                await s.rpc(rpc_text(GET_CONFIG, "m-103", attrs)),
                await s.rpc(rpc_text('<validate><source><running/></source></validate>', "m-104", attrs)),
            ]
            for reply, mid, failed in zip(replies, ("m-101", "m-102", "m-103", "m-104"), (True, True, False, False),
                                          strict=True):
                assert reply.tag == f"{{{NC_NS}}}rpc-reply"
                assert reply.get("message-id") == mid
                assert reply.get("{urn:example:echo}trace") == "t-42"
                assert reply.get("{urn:example:echo}user") == "ops team"
                assert bool(errors(reply)) is failed
            assert errors(replies[0])[0]["tag"] == "data-missing"
            assert errors(replies[1])[0]["tag"] == "operation-not-supported"
        finally:
            await s.close()

    run(scenario())


def test_end_of_message_framing_client(node, unchanged) -> None:
    """A base:1.0-only client keeps ]]>]]> framing for the whole session."""
    async def scenario():
        s = await RawSession.open(node, base11=False)
        try:
            await s.send_raw(rpc_text(GET_CONFIG, "eom-1").encode() + b"]]>]]>")
            reply = etree.fromstring(await asyncio.wait_for(s._read_until(b"]]>]]>"), 10))
            assert reply.get("message-id") == "eom-1"
            assert reply.find("nc:data/q:qkd_node", NS) is not None
        finally:
            await s.close()

    run(scenario())


@pytest.mark.parametrize("how", ["announced-chunk", "many-chunks"])
def test_oversized_message(node, mgr, unchanged, how) -> None:
    async def scenario():
        s = await RawSession.open(node)
        try:
            await assert_usable(s, "before")
            try:
                if how == "announced-chunk":
                    # one chunk header announcing more than the limit, then the first bytes of it
                    await s.send_raw(b"\n#%d\n" % (MAX_MESSAGE + 1024) + rpc_text("<get-config>").encode())
                else:
                    # legal chunks of 1 MiB each, adding up to more than the limit
                    head = rpc_text("")[:-6].encode()
                    piece = b"<!-- " + b"x" * (1024 * 1024 - 10) + b" -->"
                    await s.send_raw(b"\n#%d\n%s" % (len(head), head))
                    for _ in range(MAX_MESSAGE // len(piece) + 2):
                        await s.send_raw(b"\n#%d\n%s" % (len(piece), piece))
                    await s.send_raw(b"\n#6\n</rpc>\n##\n")
            except (BrokenPipeError, ConnectionError, asyncssh.Error):
                pass  # the server may close the session before it has read everything
            # the server answers with an rpc-error or ends the session, and does not crash
            try:
                reply = etree.fromstring(await s.receive(15))
            except (EOFError, asyncssh.Error, OSError, TimeoutError, AssertionError):
                reply = None
            if reply is not None:
                [err] = errors(reply)
                assert err["tag"] in ("too-big", "malformed-message", "resource-denied"), err
            assert await s.closed(10), "the session survived a message over the limit"
        finally:
            await s.close()
        # the agent serves a new session
        s = await RawSession.open(node)
        try:
            await assert_usable(s, "after")
        finally:
            await s.close()

    run(scenario(), timeout=120)
    assert node.running


def test_bad_chunk_framing_closes_only_that_session(node, mgr, unchanged) -> None:
    async def scenario():
        s = await RawSession.open(node)
        other = await RawSession.open(node)
        try:
            await s.send_raw(b"\n#abc\n<rpc/>\n##\n")
            assert await s.closed(10)
            await assert_usable(other)
        finally:
            await s.close()
            await other.close()

    run(scenario())


def test_session_ids_are_distinct_and_hello_is_complete(node) -> None:
    async def scenario():
        a, b = await RawSession.open(node), await RawSession.open(node)
        try:
            ids = [int(s.server_hello.findtext("nc:session-id", namespaces=NS)) for s in (a, b)]
            assert ids[0] != ids[1] and min(ids) > 0
            caps = [c.text for c in a.server_hello.iterfind("nc:capabilities/nc:capability", NS)]
            assert BASE_11 in caps
        finally:
            await a.close()
            await b.close()

    run(scenario())

