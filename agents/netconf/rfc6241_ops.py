"""RFC 6241 operations (s7, s8) and with-defaults (RFC 6243) on the shared datastore.

Handlers translate XML into the core's protocol-neutral calls (an edit-config becomes a list of
`EditOperation`s) and the core's answers back into XML; they never validate or touch devices.
Each handler gets the core services it may use as a `HandlerContext` (`context.py`) and the
session it runs for. Work that grows with the request or the datastore runs through `ctx.offload`, so one huge
request never stalls the other sessions.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from lxml import etree
from qstrata.agents.datastore.errors import DatastoreError, ErrorKind, from_invalid
from qstrata.agents.datastore.store import MAX_CONFIRM_TIMEOUT
from qstrata.bindings.edit import OPERATIONS, EditOperation, annotated_operations
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData
from qstrata.bindings.wire.xmlsafe import content_xml

from . import rfc6241_confirmed
from .errors import BASE_NS, ErrorTag, RpcError
from .subtree import subtree_filter_xml

if TYPE_CHECKING:
    from qstrata.bindings.schema import Schema

    from .context import HandlerContext
    from .dispatch import RpcRegistry
    from .session import NetconfSession

_B = "{" + BASE_NS + "}"
WD_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
WD_MODES = ("explicit", "trim", "report-all", "report-all-tagged")
FILTER_TYPES = ("subtree", "xpath")


def _child(op: etree._Element, name: str, ns: str = BASE_NS) -> etree._Element | None:
    tag = f"{{{ns}}}{name}"
    for child in op:
        if child.tag == tag:
            return child
    return None


def _config_child(holder: etree._Element) -> etree._Element | None:
    """The <config> parameter. ncclient's ``edit_config(config="<config>...")`` sends it in no
    namespace inside nc:edit-config (ncclient #251, #489); that is unambiguous, so it is accepted
    like the base-namespace one, as netconfd does."""
    found = _child(holder, "config")
    if found is None:
        for child in holder:
            if child.tag == "config":
                return child
    return found


def _datastore_name(op: etree._Element, param: str, allowed=("running", "candidate", "startup")) -> str:
    holder = _child(op, param)
    if holder is None:
        raise RpcError(ErrorTag.MISSING_ELEMENT, f"<{param}> is missing", info=[("bad-element", param)])
    choice = [c for c in holder if isinstance(c.tag, str)]
    if len(choice) != 1 or etree.QName(choice[0]).namespace != BASE_NS or etree.QName(choice[0]).localname not in allowed:
        name = etree.QName(choice[0]).localname if choice else param
        raise RpcError(ErrorTag.BAD_ELEMENT, f"<{param}> must name one of: {', '.join(allowed)}",
                       info=[("bad-element", name)])
    return etree.QName(choice[0]).localname


def parse_content(schema: Schema, config: etree._Element, *, config_only: bool = True) -> DataTree:
    """Inline <config> content -> a libyang tree (types and structure checked, not validated).
    Value prefixes declared on <config> or <rpc> stay in scope (`content_xml`)."""
    text = content_xml(config)
    if not text:
        return DataTree(schema)
    try:
        return DataTree.parse(text, "xml", schema=schema, config_only=config_only, validate=False)
    except InvalidData as exc:
        raise _content_error(exc, [c for c in config if isinstance(c.tag, str)]) from None


def _content_error(exc: InvalidData, elements: list[etree._Element]) -> DatastoreError:
    """The core's error, plus what only the XML knows: which element carried an unknown namespace."""
    error = from_invalid(exc)
    if error.kind is ErrorKind.UNKNOWN_NAMESPACE:
        ns = error.node
        bad = next((etree.QName(e).localname for top in elements for e in top.iter()
                    if isinstance(e.tag, str) and ns and etree.QName(e).namespace == ns),
                   etree.QName(elements[0]).localname if elements else "")
        error.info.update({"bad-element": bad, "bad-namespace": ns or ""})
    return error


def _with_defaults(op: etree._Element) -> str | None:
    wd = _child(op, "with-defaults", WD_NS)
    if wd is None:
        return None
    mode = (wd.text or "").strip()
    if mode not in WD_MODES:
        raise RpcError(ErrorTag.INVALID_VALUE, f"with-defaults must be one of {', '.join(WD_MODES)}",
                       path="/nc:rpc/ncwd:with-defaults", path_namespaces={"nc": BASE_NS, "ncwd": WD_NS})
    return mode


def _filter(op: etree._Element) -> tuple[etree._Element | None, str]:
    flt = _child(op, "filter")
    if flt is None:
        return None, ""
    kind = flt.get("type") or "subtree"
    if kind not in FILTER_TYPES:
        raise RpcError(ErrorTag.BAD_ATTRIBUTE, f"filter type {kind!r} is not subtree or xpath",
                       info=[("bad-attribute", "type"), ("bad-element", "filter")])
    return flt, kind


def render(ctx: HandlerContext, session: NetconfSession, tree: DataTree, op: etree._Element, *, config_only: bool) -> etree._Element | bytes:
    """<data> for get/get-config: with-defaults applied, then the filter. Without a subtree filter
    the content goes out as libyang printed it (bytes), never re-parsed. Pure CPU work: callers
    may run it off the event loop."""
    mode = _with_defaults(op)
    flt, kind = _filter(op)
    access = ctx.user_access(session)
    if not access.unrestricted:
        tree = ctx.access.filter_read(access, tree)  # RFC 8341 s3.2.4
    if mode in ("report-all", "report-all-tagged"):
        tree = tree.copy()
        tree.add_implicit(config_only=config_only)
    if kind == "xpath":
        tree = _xpath_select(ctx, tree, flt)
    text = tree.print("xml", with_defaults=mode).encode()
    if mode == "report-all-tagged":
        # RFC 6243 s6: the XML attribute is wd:default in urn:ietf:params:xml:ns:netconf:default:1.0;
        # libyang tags with the YANG module's namespace (the RFC 8040 form).
        text = text.replace(b'xmlns:ncwd="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"',
                            b'xmlns:wd="urn:ietf:params:xml:ns:netconf:default:1.0"').replace(b" ncwd:default=", b" wd:default=")
    if kind != "subtree":
        return b"<data xmlns='%s'>%s</data>" % (BASE_NS.encode(), text)
    data = etree.fromstring(b"<data xmlns='%s'>%s</data>" % (BASE_NS.encode(), text), _DATA_PARSER)
    return b"<data xmlns='%s'>%s</data>" % (BASE_NS.encode(), subtree_filter_xml(data, list(flt)))  # type: ignore[arg-type]


_DATA_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)
"""Parses only what libyang printed (trusted); huge_tree because a datastore may be large."""


def _xpath_select(ctx: HandlerContext, tree: DataTree, flt: etree._Element) -> DataTree:
    select = flt.get("select")
    if not select:
        raise RpcError(ErrorTag.MISSING_ATTRIBUTE, "an xpath filter needs a select attribute",
                       info=[("bad-attribute", "select"), ("bad-element", "filter")])
    for prefix, ns in (flt.nsmap or {}).items():
        if prefix is None:
            continue
        module = ctx.module_of_namespace(ns)
        if module:
            select = re.sub(rf"(?<![\w.-]){re.escape(prefix)}:", f"{module}:", select)
    try:
        return tree.select(select)
    except InvalidData as exc:
        raise RpcError(ErrorTag.INVALID_VALUE, f"invalid XPath: {exc.issues[0].message}") from None


async def get_config(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> etree._Element | bytes:
    name = _datastore_name(op, "source")
    datastore = ctx.datastore
    tree = datastore.get_config(name)
    if name != "running" or _child(op, "filter") is not None:
        return await ctx.offload(render, ctx, session, tree, op, config_only=True, big=session.big_request,
                                            output=f"config:{name}", datastore=name)
    # Unfiltered running is what controllers poll: print each committed version once (per what the
    # user may read: unrestricted users share one copy).
    access = ctx.user_access(session)
    key = (datastore.versions.get("running", 0), _with_defaults(op),
           None if access.unrestricted else (access.username, access.groups))
    cache = ctx.running_text_cache
    body = cache.get(key)
    if body is None:
        body = await ctx.offload(render, ctx, session, tree, op, config_only=True, output="config:running",
                                            datastore="running")
        cache.clear()
        cache[key] = body
    return body


async def get(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> etree._Element | bytes:
    _filter(op)  # a bad filter is refused before any work
    return await ctx.offload(_render_operational, ctx, session, op, big=session.big_request,
                                        output="operational", datastore="operational")


def _render_operational(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> etree._Element | bytes:
    return render(ctx, session, ctx.operational(), op, config_only=False)


async def edit_config(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    target = _datastore_name(op, "target", ("running", "candidate"))
    default_op = (_text(op, "default-operation") or "merge")
    if default_op not in ("merge", "replace", "none"):
        raise RpcError(ErrorTag.INVALID_VALUE, "default-operation must be merge, replace or none",
                       info=[("bad-element", "default-operation")])
    test_option = _text(op, "test-option") or "test-then-set"
    if test_option not in ("test-then-set", "set", "test-only"):
        raise RpcError(ErrorTag.INVALID_VALUE, "test-option must be test-then-set, set or test-only",
                       info=[("bad-element", "test-option")])
    error_option = _text(op, "error-option") or "stop-on-error"
    if error_option not in ("stop-on-error", "continue-on-error", "rollback-on-error"):
        raise RpcError(ErrorTag.INVALID_VALUE, "error-option must be stop-on-error, continue-on-error or rollback-on-error",
                       info=[("bad-element", "error-option")])
    config = _config_child(op)
    if config is None:
        if _child(op, "url") is not None:
            raise RpcError(ErrorTag.OPERATION_NOT_SUPPORTED, "the :url capability is not supported")
        raise RpcError(ErrorTag.MISSING_ELEMENT, "<config> is missing", info=[("bad-element", "config")])
    operations = await ctx.offload(
        _edit_operations, ctx, config, default_op, error_option == "continue-on-error", big=session.big_request)
    await ctx.datastore.edit(target, operations, ctx.session_info(session),
                                        test_only=test_option == "test-only", error_option=error_option,
                                        big=session.big_request)


def _edit_operations(ctx: HandlerContext, config: etree._Element, default_op: str,
                     per_unit: bool) -> list[EditOperation]:
    """<config> -> the core's operations: the annotated content, then valueless deletes."""
    for el in config.iter():
        value = el.get(f"{{{BASE_NS}}}operation")
        if value is not None and value not in OPERATIONS + ("none",):
            raise RpcError(ErrorTag.BAD_ATTRIBUTE, f"operation {value!r} is not one of {', '.join(OPERATIONS)}, none",
                           info=[("bad-attribute", "operation"), ("bad-element", etree.QName(el).localname)])
    removals = _valueless_removals(ctx, config)
    edit = parse_content(ctx.schema, config)
    operations = annotated_operations(edit, default_op, per_unit=per_unit)
    operations.extend(EditOperation(operation, path) for path, operation in removals)  # type: ignore[arg-type]
    return operations


def _valueless_removals(ctx: HandlerContext, config: etree._Element) -> list[tuple[str, str]]:
    """`<leaf nc:operation="delete"/>` names a leaf without a value, which a boolean or uint32
    leaf cannot parse: take such elements out of the edit and return them as (data path, operation)."""
    found: list[tuple[str, str]] = []
    op_attr = f"{{{BASE_NS}}}operation"
    for element in list(config.iter()):
        if not isinstance(element.tag, str) or element is config or len(element) or (element.text or "").strip():
            continue
        op = element.get(op_attr)
        if op not in ("delete", "remove"):
            continue
        path = _data_path(ctx, element, config)
        if path is None:
            continue  # not a leaf of ours: leave it to the parser's error
        found.append((path, op))
        element.getparent().remove(element)
    return found


def _data_path(ctx: HandlerContext, element: etree._Element, config: etree._Element) -> str | None:
    chain = []
    node = element
    while node is not None and node is not config:
        chain.append(node)
        node = node.getparent()
    chain.reverse()
    parts: list[str] = []
    schema_parts: list[str] = []
    parent_module = None
    for el in chain:
        qname = etree.QName(el)
        module = ctx.module_of_namespace(qname.namespace or "")
        if module is None:
            return None
        name = qname.localname if module == parent_module else f"{module}:{qname.localname}"
        schema_parts.append(name)
        info = ctx.schema.node_info("/" + "/".join(schema_parts))
        if info is None:
            return None
        predicate = ""
        if el is element:
            if info.kind != "leaf":
                return None
        elif info.kind == "list":
            for key in info.keys:
                value = el.findtext(f"{{{qname.namespace}}}{key}")
                if value is None or "'" in value:
                    return None
                predicate += f"[{key}='{value.strip()}']"
        parts.append(name + predicate)
        parent_module = module
    return "/" + "/".join(parts)


async def copy_config(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    target = _datastore_name(op, "target")
    source_el = _child(op, "source")
    config = _config_child(source_el) if source_el is not None else None
    if config is not None:
        tree = await ctx.offload(parse_content, ctx.schema, config,
                                            big=session.big_request)
    else:
        tree = ctx.datastore.get_config(_datastore_name(op, "source"))
    await ctx.datastore.replace(target, tree, ctx.session_info(session))


async def delete_config(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    target = _datastore_name(op, "target")
    await ctx.datastore.delete_config(target, ctx.session_info(session))


async def lock(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    ctx.datastore.lock(_datastore_name(op, "target"), session.session_id)


async def unlock(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    ctx.datastore.unlock(_datastore_name(op, "target"), session.session_id)


async def discard_changes(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    await ctx.datastore.discard_changes(ctx.session_info(session))


def confirm_timeout(op: etree._Element) -> int:
    """ietf-netconf confirm-timeout: uint32 seconds, 1..max (RFC 6241 s8.4.5.1); default 600.
    Only decimal digits are a uint32: 'nan', 'inf', '1e12', '-5' and 4294967296 are not."""
    text = _text(op, "confirm-timeout")
    if text is None:
        return 600
    value = int(text) if text.isdigit() and text.isascii() else 0
    if not 1 <= value <= MAX_CONFIRM_TIMEOUT:
        raise RpcError(ErrorTag.INVALID_VALUE,
                       f"confirm-timeout must be a whole number of seconds from 1 to {MAX_CONFIRM_TIMEOUT}, not {text!r}",
                       path="/nc:rpc/nc:commit/nc:confirm-timeout", path_namespaces={"nc": BASE_NS},
                       info=[("bad-element", "confirm-timeout")])
    return value


async def commit(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    timeout = confirm_timeout(op)
    rfc6241_confirmed.check_commit(ctx.datastore.pending, session.session_id, _text(op, "persist-id"))
    await ctx.datastore.commit(ctx.session_info(session), confirmed=_child(op, "confirmed") is not None,
                               timeout=timeout, persist=_text(op, "persist"))


async def cancel_commit(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    rfc6241_confirmed.check_cancel(ctx.datastore.pending, session.session_id, _text(op, "persist-id"))
    await ctx.datastore.cancel_commit(ctx.session_info(session))


async def validate(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    source_el = _child(op, "source")
    config = _config_child(source_el) if source_el is not None else None
    if config is not None:
        def check() -> None:
            tree = parse_content(ctx.schema, config)
            tree.validate(config_only=True)

        await ctx.offload(check, big=session.big_request)
        return
    ctx.datastore.validate_datastore(_datastore_name(op, "source"))


async def close_session(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    session.closing = True  # "Any NETCONF requests received after a <close-session> request will be ignored."
    asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(session.close()))


async def kill_session(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    text = _text(op, "session-id")
    if not text or not text.isdigit():
        raise RpcError(ErrorTag.MISSING_ELEMENT if not text else ErrorTag.INVALID_VALUE,
                       "kill-session needs a numeric <session-id>", info=[("bad-element", "session-id")])
    target = int(text)
    if target == session.session_id:
        raise RpcError(ErrorTag.INVALID_VALUE, "a session cannot kill itself; use close-session")
    victim = ctx.sessions.get(target)
    if victim is None:
        raise RpcError(ErrorTag.INVALID_VALUE, f"no session {target}", info=[("bad-element", "session-id")])
    victim.termination = ("killed", session.session_id)
    await victim.close()


def _text(op: etree._Element, name: str) -> str | None:
    el = _child(op, name)
    return el.text.strip() if el is not None and el.text else (None if el is None else "")


def register(registry: RpcRegistry) -> None:
    """The RFC 6241 operations (and edit semantics of RFC 6243 with-defaults)."""
    for name, handler in (
        ("get-config", get_config), ("get", get), ("edit-config", edit_config), ("copy-config", copy_config),
        ("delete-config", delete_config), ("lock", lock), ("unlock", unlock),
        ("discard-changes", discard_changes), ("commit", commit), ("cancel-commit", cancel_commit),
        ("validate", validate), ("close-session", close_session), ("kill-session", kill_session),
    ):
        registry.add(BASE_NS, name, handler)

