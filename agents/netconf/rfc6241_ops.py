"""RFC 6241 operations (s7, s8) and with-defaults (RFC 6243) on the shared datastore."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from _libyang import ffi, lib
from lxml import etree
from qstrata.agents.datastore.edit import OPERATIONS, insert_copy
from qstrata.agents.datastore.store import DatastoreError, SessionInfo
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

from .dispatch import rpc
from .errors import BASE_NS, ErrorTag, RpcError
from .subtree import apply_subtree_filter

if TYPE_CHECKING:
    from .session import NetconfSession

_B = "{" + BASE_NS + "}"
WD_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
WD_MODES = ("explicit", "trim", "report-all", "report-all-tagged")


def _child(op: etree._Element, name: str, ns: str = BASE_NS) -> etree._Element | None:
    tag = f"{{{ns}}}{name}"
    for child in op:
        if child.tag == tag:
            return child
    return None


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


def _session_info(session: NetconfSession) -> SessionInfo:
    return SessionInfo(session.session_id, session.ctx.username, session.server.authorizer(session))


def parse_content(session: NetconfSession, elements: list[etree._Element], *, config_only: bool = True) -> DataTree:
    """Inline <config> content -> a libyang tree (types and structure checked, not validated)."""
    if not elements:
        return DataTree(session.server.schema)
    text = b"".join(etree.tostring(e) for e in elements)
    try:
        return DataTree.parse(text, "xml", schema=session.server.schema, config_only=config_only, validate=False)
    except InvalidData as exc:
        raise _content_error(exc, elements) from None


def _content_error(exc: InvalidData, elements: list[etree._Element]) -> DatastoreError:
    issue = exc.issues[0]
    msg = issue.message
    m = re.search(r'Node "([^"]+)" not found', msg)
    if m:
        return DatastoreError("unknown-element", msg, issue.path, info={"bad-element": m.group(1)})
    if "No module with namespace" in msg or "namespace" in msg.lower():
        ns = re.search(r'"([^"]+)"', msg)
        # the element in the unknown namespace, wherever it is in the content
        bad = next((etree.QName(e).localname for top in elements for e in top.iter()
                    if isinstance(e.tag, str) and ns and etree.QName(e).namespace == ns.group(1)),
                   etree.QName(elements[0]).localname if elements else "")
        return DatastoreError("unknown-namespace", msg, issue.path,
                              info={"bad-element": bad, "bad-namespace": ns.group(1) if ns else ""})
    if "missing its key" in msg:
        key = re.search(r'key "([^"]+)"', msg)
        return DatastoreError("missing-element", msg, issue.path, info={"bad-element": key.group(1) if key else ""})
    if "Invalid enumeration value" in msg and "operation" in (issue.path or "") or "operation" in msg:
        return DatastoreError("bad-attribute", msg, issue.path, info={"bad-attribute": "operation"})
    return DatastoreError("invalid-value", msg, issue.path)


def _with_defaults(op: etree._Element) -> str | None:
    wd = _child(op, "with-defaults", WD_NS)
    if wd is None:
        return None
    mode = (wd.text or "").strip()
    if mode not in WD_MODES:
        raise RpcError(ErrorTag.INVALID_VALUE, f"with-defaults must be one of {', '.join(WD_MODES)}",
                       path="/nc:rpc/ncwd:with-defaults", path_namespaces={"nc": BASE_NS, "ncwd": WD_NS})
    return mode


def render(session: NetconfSession, tree: DataTree, op: etree._Element, *, config_only: bool) -> etree._Element | bytes:
    """<data> for get/get-config: with-defaults applied, then the filter. Without a subtree filter
    the content goes out as libyang printed it (bytes), never re-parsed."""
    mode = _with_defaults(op)
    if mode in ("report-all", "report-all-tagged"):
        tree = tree.copy()
        flags = lib.LYD_IMPLICIT_NO_STATE if config_only else 0
        lib.lyd_new_implicit_all(tree._root, session.server.schema.ctx.cdata, flags, ffi.NULL)  # noqa: SLF001
    flt = _child(op, "filter")
    if flt is not None and (flt.get("type") or "subtree") == "xpath":
        tree = _xpath_select(session, tree, flt)
    text = tree.print("xml", with_defaults=mode).encode()
    if mode == "report-all-tagged":
        # RFC 6243 s6: the XML attribute is wd:default in urn:ietf:params:xml:ns:netconf:default:1.0;
        # libyang tags with the YANG module's namespace (the RFC 8040 form).
        text = text.replace(b'xmlns:ncwd="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"',
                            b'xmlns:wd="urn:ietf:params:xml:ns:netconf:default:1.0"').replace(b" ncwd:default=", b" wd:default=")
    if flt is None or (flt.get("type") or "subtree") != "subtree":
        return b"<data xmlns='%s'>%s</data>" % (BASE_NS.encode(), text)
    data = etree.fromstring(b"<data xmlns='%s'>%s</data>" % (BASE_NS.encode(), text))
    return apply_subtree_filter(data, list(flt))


def _xpath_select(session: NetconfSession, tree: DataTree, flt: etree._Element) -> DataTree:
    select = flt.get("select")
    if not select:
        raise RpcError(ErrorTag.MISSING_ATTRIBUTE, "an xpath filter needs a select attribute",
                       info=[("bad-attribute", "select"), ("bad-element", "filter")])
    schema = session.server.schema
    for prefix, ns in (flt.nsmap or {}).items():
        if prefix is None:
            continue
        module = session.server.module_of_namespace(ns)
        if module:
            select = re.sub(rf"(?<![\w.-]){re.escape(prefix)}:", f"{module}:", select)
    try:
        nodes = tree.find(select)
    except InvalidData as exc:
        raise RpcError(ErrorTag.INVALID_VALUE, f"invalid XPath: {exc.issues[0].message}") from None
    out = DataTree(schema)
    for node in nodes:
        insert_copy(out, node.cdata)
    return out


@rpc(BASE_NS, "get-config")
async def get_config(session: NetconfSession, op: etree._Element) -> etree._Element | bytes:
    name = _datastore_name(op, "source")
    datastore = session.server.datastore
    if name != "running" or _child(op, "filter") is not None:
        return render(session, datastore.get_config(name), op, config_only=True)
    # Unfiltered running is what controllers poll: print each committed version once.
    key = (datastore.versions.get("running", 0), _with_defaults(op))
    cache = session.server.running_text_cache
    body = cache.get(key)
    if body is None:
        body = render(session, datastore.get_config(name), op, config_only=True)
        cache.clear()
        cache[key] = body
    return body


@rpc(BASE_NS, "get")
async def get(session: NetconfSession, op: etree._Element) -> etree._Element | bytes:
    return render(session, session.server.operational(), op, config_only=False)


@rpc(BASE_NS, "edit-config")
async def edit_config(session: NetconfSession, op: etree._Element) -> None:
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
    config = _child(op, "config")
    if config is None:
        if _child(op, "url") is not None:
            raise RpcError(ErrorTag.OPERATION_NOT_SUPPORTED, "the :url capability is not supported")
        raise RpcError(ErrorTag.MISSING_ELEMENT, "<config> is missing", info=[("bad-element", "config")])
    for el in config.iter():
        value = el.get(f"{{{BASE_NS}}}operation")
        if value is not None and value not in OPERATIONS:
            raise RpcError(ErrorTag.BAD_ATTRIBUTE, f"operation {value!r} is not one of {', '.join(OPERATIONS)}",
                           info=[("bad-attribute", "operation"), ("bad-element", etree.QName(el).localname)])
    removals = _valueless_removals(session, config)
    edit = parse_content(session, [c for c in config if isinstance(c.tag, str)])
    await session.server.datastore.edit(target, edit, _session_info(session), default_operation=default_op,
                                        test_option=test_option, error_option=error_option, removals=removals)


def _valueless_removals(session: NetconfSession, config: etree._Element) -> list[tuple[str, str]]:
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
        path = _data_path(session, element, config)
        if path is None:
            continue  # not a leaf of ours: leave it to the parser's error
        found.append((path, op))
        element.getparent().remove(element)
    return found


def _data_path(session: NetconfSession, element: etree._Element, config: etree._Element) -> str | None:
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
        module = session.server.module_of_namespace(qname.namespace or "")
        if module is None:
            return None
        name = qname.localname if module == parent_module else f"{module}:{qname.localname}"
        schema_parts.append(name)
        try:
            snodes = list(session.server.schema.ctx.find_path("/" + "/".join(schema_parts)))
        except Exception:
            return None
        if len(snodes) != 1:
            return None
        snode = snodes[0]
        predicate = ""
        if el is element:
            if snode.nodetype() != snode.LEAF:
                return None
        elif snode.nodetype() == snode.LIST:
            for key in snode.keys():
                value = el.findtext(f"{{{qname.namespace}}}{key.name()}")
                if value is None or "'" in value:
                    return None
                predicate += f"[{key.name()}='{value.strip()}']"
        parts.append(name + predicate)
        parent_module = module
    return "/" + "/".join(parts)


@rpc(BASE_NS, "copy-config")
async def copy_config(session: NetconfSession, op: etree._Element) -> None:
    target = _datastore_name(op, "target")
    source_el = _child(op, "source")
    config = source_el.find(_B + "config") if source_el is not None else None
    if config is not None:
        tree = parse_content(session, [c for c in config if isinstance(c.tag, str)])
    else:
        tree = session.server.datastore.get_config(_datastore_name(op, "source"))
    await session.server.datastore.replace(target, tree, _session_info(session))


@rpc(BASE_NS, "delete-config")
async def delete_config(session: NetconfSession, op: etree._Element) -> None:
    target = _datastore_name(op, "target")
    await session.server.datastore.delete_config(target, _session_info(session))


@rpc(BASE_NS, "lock")
async def lock(session: NetconfSession, op: etree._Element) -> None:
    session.server.datastore.lock(_datastore_name(op, "target"), session.session_id)


@rpc(BASE_NS, "unlock")
async def unlock(session: NetconfSession, op: etree._Element) -> None:
    session.server.datastore.unlock(_datastore_name(op, "target"), session.session_id)


@rpc(BASE_NS, "discard-changes")
async def discard_changes(session: NetconfSession, op: etree._Element) -> None:
    session.server.datastore.discard_changes()


@rpc(BASE_NS, "commit")
async def commit(session: NetconfSession, op: etree._Element) -> None:
    timeout_text = _text(op, "confirm-timeout")
    try:
        timeout = float(timeout_text) if timeout_text else 600.0
        if timeout <= 0:
            raise ValueError
    except ValueError:
        raise RpcError(ErrorTag.INVALID_VALUE, "confirm-timeout must be a positive number of seconds",
                       info=[("bad-element", "confirm-timeout")]) from None
    await session.server.datastore.commit(
        _session_info(session), confirmed=_child(op, "confirmed") is not None, timeout=timeout,
        persist=_text(op, "persist"), persist_id=_text(op, "persist-id"))


@rpc(BASE_NS, "cancel-commit")
async def cancel_commit(session: NetconfSession, op: etree._Element) -> None:
    await session.server.datastore.cancel_commit(_session_info(session), _text(op, "persist-id"))


@rpc(BASE_NS, "validate")
async def validate(session: NetconfSession, op: etree._Element) -> None:
    source_el = _child(op, "source")
    config = source_el.find(_B + "config") if source_el is not None else None
    if config is not None:
        tree = parse_content(session, [c for c in config if isinstance(c.tag, str)])
        try:
            tree.validate(config_only=True)
        except InvalidData as exc:
            raise exc from None
        return
    session.server.datastore.validate_datastore(_datastore_name(op, "source"))


@rpc(BASE_NS, "close-session")
async def close_session(session: NetconfSession, op: etree._Element) -> None:
    session.server.loop_later(session.close)


@rpc(BASE_NS, "kill-session")
async def kill_session(session: NetconfSession, op: etree._Element) -> None:
    text = _text(op, "session-id")
    if not text or not text.isdigit():
        raise RpcError(ErrorTag.MISSING_ELEMENT if not text else ErrorTag.INVALID_VALUE,
                       "kill-session needs a numeric <session-id>", info=[("bad-element", "session-id")])
    target = int(text)
    if target == session.session_id:
        raise RpcError(ErrorTag.INVALID_VALUE, "a session cannot kill itself; use close-session")
    victim = session.server.sessions.get(target)
    if victim is None:
        raise RpcError(ErrorTag.INVALID_VALUE, f"no session {target}", info=[("bad-element", "session-id")])
    await victim.close()


def _text(op: etree._Element, name: str) -> str | None:
    el = _child(op, name)
    return el.text.strip() if el is not None and el.text else (None if el is None else "")
