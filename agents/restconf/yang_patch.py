"""RFC 8072 YANG Patch: a patch body as the core's `EditOperation`s, applied as one transaction,
and the ``yang-patch-status`` answer. Pure apart from the parsing it asks of `codec`.

Each edit's ``target`` is a resource path below the request's target; its ``value`` holds that
node. create/merge/replace/delete/remove map one to one onto the core's operations; ``insert``
is a create placed by ``where``/``point`` (RFC 8072 s2.5), ``move`` places an existing entry of a
user-ordered list there (the core's `EditOperation.insert`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from qstrata.bindings.edit import EditOperation
from qstrata.bindings.schema import Schema
from qstrata.bindings.schema_index import SchemaIndex
from qstrata.bindings.wire.xmlsafe import MalformedMessage, content_xml, parse_message

from . import codec, resource
from .errors import RestconfError, bad_request
from .media import Encoding
from .resource import Target

YP_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-patch"
OPERATIONS = ("create", "delete", "insert", "merge", "move", "replace", "remove")
MAX_EDITS = 10_000


@dataclass
class Edit:
    edit_id: str
    operation: str
    target: Target
    op: EditOperation


@dataclass
class Patch:
    patch_id: str
    edits: list[Edit]


def _edit_target(base: Target, relative: str, index: SchemaIndex) -> Target:
    if not relative.startswith("/"):
        raise bad_request(f"edit target {relative[:80]!r} must start with /")
    prefix = "/".join(_raw_segments(base))
    return resource.parse(index, f"{prefix}/{relative.strip('/')}" if prefix else relative)


def _raw_segments(target: Target) -> list[str]:
    out, previous = [], None
    for step in target.steps:
        name = step.name if step.module == previous else f"{step.module}:{step.name}"
        if step.keys:
            name += "=" + ",".join(quote(v, safe="") for _, v in step.keys)
        out.append(name)
        previous = step.module
    return out


def parse(raw: bytes, encoding: Encoding, base: Target, schema: Schema, index: SchemaIndex) -> Patch:
    if encoding == "xml":
        entries, patch_id = _xml_entries(raw)
    else:
        entries, patch_id = _json_entries(raw)
    if not entries:
        raise bad_request("a YANG Patch needs at least one edit (RFC 8072 s2.2)", tag="missing-element")
    if len(entries) > MAX_EDITS:
        raise bad_request(f"a YANG Patch of {len(entries)} edits; at most {MAX_EDITS} are applied at once",
                          tag="too-big")
    edits = []
    seen: set[str] = set()
    for edit_id, operation, target_text, value, where, point_text in entries:
        if edit_id in seen:
            raise bad_request(f"edit-id {edit_id!r} is used twice")
        seen.add(edit_id)
        if operation not in OPERATIONS:
            raise bad_request(f"edit {edit_id}: operation {operation!r} is not one of {', '.join(OPERATIONS)}")
        target = _edit_target(base, target_text, index)
        insert, point = _place(edit_id, operation, where, point_text, base, index)
        if operation == "move":
            if value is not None:
                raise bad_request(f"edit {edit_id}: move takes no value")
            edits.append(Edit(edit_id, operation, target, EditOperation("merge", target.path, None, insert, point)))
            continue
        if operation in ("delete", "remove"):
            if value is not None:
                raise bad_request(f"edit {edit_id}: {operation} takes no value")
            edits.append(Edit(edit_id, operation, target, EditOperation(operation, target.path)))  # type: ignore[arg-type]
            continue
        if value is None:
            raise bad_request(f"edit {edit_id}: {operation} needs a value", tag="missing-element")
        if target.is_datastore:
            raise bad_request(f"edit {edit_id}: the target must be a data resource")
        body = codec.decode(value, encoding, target, schema, index, child=False)
        core = "create" if operation == "insert" else operation
        edits.append(Edit(edit_id, operation, target, EditOperation(core, target.path, body.tree, insert, point)))  # type: ignore[arg-type]
    return Patch(patch_id, edits)


def _place(edit_id: str, operation: str, where: str | None, point: str | None, base: Target,
           index: SchemaIndex) -> tuple[str | None, str | None]:
    """(insert, point data path) of an insert or move edit (RFC 8072 s2.5: where defaults to
    last; point, relative like target, only with before/after)."""
    if operation not in ("insert", "move"):
        if where is not None or point is not None:
            raise bad_request(f"edit {edit_id}: where and point belong to insert and move edits")
        return None, None
    where = where or "last"
    if where not in ("first", "last", "before", "after"):
        raise bad_request(f"edit {edit_id}: where must be first, last, before or after, not {where[:40]!r}")
    if (point is not None) != (where in ("before", "after")):
        raise bad_request(f"edit {edit_id}: point is given exactly with where before or after",
                          tag="missing-element" if point is None else "invalid-value")
    return where, _edit_target(base, point, index).path if point is not None else None


Entry = tuple[str, str, str, bytes | None, str | None, str | None]
"""edit-id, operation, target, value, where, point"""


def _json_entries(raw: bytes) -> tuple[list[Entry], str]:
    doc = codec.parse_json(raw)
    patch = doc.get("ietf-yang-patch:yang-patch") if isinstance(doc, dict) and len(doc) == 1 else None
    if not isinstance(patch, dict):
        raise bad_request('a YANG Patch body is {"ietf-yang-patch:yang-patch": {"patch-id": ..., "edit": [...]}}',
                          tag="malformed-message", error_type="rpc")
    patch_id = patch.get("patch-id")
    if not isinstance(patch_id, str) or not patch_id:
        raise bad_request("the YANG Patch needs a patch-id", tag="missing-element")
    out = []
    for edit in patch.get("edit") or []:
        if not isinstance(edit, dict):
            raise bad_request("each edit is an object", tag="malformed-message", error_type="rpc")
        edit_id, operation, target = edit.get("edit-id"), edit.get("operation"), edit.get("target")
        if not all(isinstance(v, str) for v in (edit_id, operation, target)):
            raise bad_request("each edit needs edit-id, operation and target (strings)", tag="missing-element")
        value = edit.get("value")
        where, point = edit.get("where"), edit.get("point")
        if not all(v is None or isinstance(v, str) for v in (where, point)):
            raise bad_request("where and point are strings", tag="invalid-value")
        out.append((edit_id, operation, target, json.dumps(value).encode() if value is not None else None, where,
                    point))
    return out, patch_id  # type: ignore[return-value]


def _xml_entries(raw: bytes) -> tuple[list[Entry], str]:
    try:
        root = parse_message(raw)  # the shared safe parser: no DTD, no entities, bounded cost
    except MalformedMessage as exc:
        raise RestconfError("malformed-message", f"the body is not acceptable XML: {exc.message}",
                            error_type="rpc") from None
    if root.tag != f"{{{YP_NS}}}yang-patch":
        raise bad_request(f"a YANG Patch body is <yang-patch xmlns=\"{YP_NS}\">", tag="malformed-message",
                          error_type="rpc")
    patch_id = root.findtext(f"{{{YP_NS}}}patch-id")
    if not patch_id:
        raise bad_request("the YANG Patch needs a patch-id", tag="missing-element")
    out = []
    for edit in root.findall(f"{{{YP_NS}}}edit"):
        edit_id = edit.findtext(f"{{{YP_NS}}}edit-id")
        operation = edit.findtext(f"{{{YP_NS}}}operation")
        target = edit.findtext(f"{{{YP_NS}}}target")
        if not (edit_id and operation and target):
            raise bad_request("each edit needs edit-id, operation and target", tag="missing-element")
        value_el = edit.find(f"{{{YP_NS}}}value")
        value = None
        if value_el is not None:
            value = content_xml(value_el)
        out.append((edit_id, operation, target, value, edit.findtext(f"{{{YP_NS}}}where"),
                    edit.findtext(f"{{{YP_NS}}}point")))
    return out, patch_id


def status_ok(patch_id: str, encoding: Encoding) -> bytes:
    if encoding == "xml":
        return (f'<yang-patch-status xmlns="{YP_NS}"><patch-id>{_x(patch_id)}</patch-id><ok/>'
                "</yang-patch-status>").encode()
    return json.dumps({"ietf-yang-patch:yang-patch-status": {"patch-id": patch_id, "ok": [None]}}).encode()


def status_failed(patch_id: str, error: RestconfError, edit_id: str | None, encoding: Encoding,
                  errors_json: Any, errors_xml: Any) -> bytes:
    """RFC 8072 s2.3: the errors against the edit that failed (or global-errors)."""
    if encoding == "xml":
        inner = errors_xml(error).decode().replace('<errors xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf">',
                                                   "<errors>")
        where = (f"<edit-status><edit><edit-id>{_x(edit_id)}</edit-id>{inner}</edit></edit-status>"
                 if edit_id else f"<global-errors>{inner[len('<errors>'):-len('</errors>')]}</global-errors>")
        return (f'<yang-patch-status xmlns="{YP_NS}" xmlns:rc="urn:ietf:params:xml:ns:yang:ietf-restconf">'
                f"<patch-id>{_x(patch_id)}</patch-id>{where}</yang-patch-status>").encode()
    errors = json.loads(errors_json(error))["ietf-restconf:errors"]
    body: dict[str, Any] = {"patch-id": patch_id}
    if edit_id:
        body["edit-status"] = {"edit": [{"edit-id": edit_id, "errors": errors}]}
    else:
        body["errors"] = errors
    return json.dumps({"ietf-yang-patch:yang-patch-status": body}).encode()


def failing_edit(patch: Patch, path: str | None) -> str | None:
    """The edit an error's data path lies in (the deepest matching target), or None."""
    if not path:
        return None
    best: tuple[int, str] | None = None
    for edit in patch.edits:
        p = edit.target.path
        if path == p or path.startswith(p + "/") or path.startswith(p + "["):
            if best is None or len(p) > best[0]:
                best = (len(p), edit.edit_id)
    return best[1] if best else None


def _x(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
