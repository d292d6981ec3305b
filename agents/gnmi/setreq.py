"""SetRequest -> one datastore transaction (gNMI specification 3.4).

Deletes, replaces, union_replaces and updates become `EditOperation`s in that order and go to
`Datastore.edit` as one transaction, so validation, NACM, device prepare/commit and the
journal are the ones NETCONF uses, and a failure anywhere changes nothing. A delete of data
that is not there is not an error (3.4.6): it is a ``remove``. union_replace entries for the
same path are merged before they replace it (gNMI 0.10 union semantics within one origin).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from gnmi_pb import gnmi_pb2
from qstrata.agents.datastore.errors import DatastoreError
from qstrata.bindings.codecs.gnmi import UnsupportedValue, scalar_from_typed_value
from qstrata.bindings.codecs.values import key_json_value
from qstrata.bindings.edit import EditOperation
from qstrata.bindings.schema import Schema
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

from .errors import from_datastore, invalid
from .requests import Pattern, resolve
from .target import GnmiTarget
from .view import select

DELETE, REPLACE, UPDATE, UNION_REPLACE = 1, 2, 3, 4


def data_path(target: GnmiTarget, pattern: Pattern) -> tuple[str, list[tuple[str, str, str, tuple]]]:
    """A concrete data path for a Set path: no wildcards; list entries need all their keys
    except a list named last (Set on a whole list)."""
    if pattern.wildcard:
        raise invalid(f"wildcards are not allowed in Set paths: {pattern.text}")
    steps: list[tuple[str, str, str, tuple]] = []  # (module, name, kind, keys)
    parent = None
    out = ""
    parent_module = None
    for i, elem in enumerate(pattern.elems):
        module = elem.module or parent_module
        node = (target.index.top.get((module, elem.name)) if parent is None
                else parent.children.get((module, elem.name)))
        if node is None:
            raise invalid(f"unknown element {elem.name!r} in {pattern.text}")
        keys = dict(elem.keys)
        if node.kind == "list" and set(keys) != set(node.keys) and (keys or i + 1 < len(pattern.elems)):
            missing = [k for k in node.keys if k not in keys]
            raise invalid(f"list {node.name!r} needs its keys {', '.join(missing)} in {pattern.text}")
        ordered = tuple((k, keys[k]) for k in node.keys if k in keys)
        out += f"/{node.module}:{node.name}" if node.module != parent_module else f"/{node.name}"
        out += "".join(f"[{k}={_quoted(v)}]" for k, v in ordered)
        steps.append((node.module, node.name, node.kind, ordered))
        parent, parent_module = node, node.module
    return out or "/", steps


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def _nest(schema: Schema, steps: list[tuple[str, str, str, tuple]], inner: object) -> dict:
    """The JSON-IETF tree holding `inner` at the node `steps` name (keys put into entries, each
    written as RFC 7951 writes its type: libyang refuses a uint32 key given as ``"13"``)."""
    value = inner
    parent_modules = [None] + [s[0] for s in steps[:-1]]
    members = [f"{module}:{name}" if module != parent else name
               for (module, name, _, _), parent in zip(steps, parent_modules, strict=True)]
    for depth in range(len(steps) - 1, -1, -1):
        _, _, kind, keys = steps[depth]
        member = members[depth]
        if kind == "list" and keys:
            at = "/" + "/".join(members[:depth + 1])
            entry = dict(value) if isinstance(value, dict) else {}
            for k, v in keys:
                entry.setdefault(k, key_json_value(schema, f"{at}/{k}", v))
            value = {member: [entry]}
        else:
            value = {member: value}
    return value if isinstance(value, dict) else {}


def _value_tree(target: GnmiTarget, path: str, steps: list, update: gnmi_pb2.Update) -> DataTree:
    """The tree an update/replace writes: a scalar for a leaf, JSON for anything else."""
    schema = target.datastore.schema
    kind = steps[-1][2] if steps else "container"
    tv = update.val
    which = tv.WhichOneof("value")
    if which is None:
        raise invalid(f"no value for {path}")
    if kind == "leaf" and which not in ("json_val", "json_ietf_val") or which == "leaflist_val":
        tree = DataTree(schema)
        try:
            if which == "leaflist_val":
                for element in tv.leaflist_val.element:
                    tree.set(path, scalar_from_typed_value(element))
            else:
                tree.set(path, scalar_from_typed_value(tv))
        except UnsupportedValue as exc:
            raise invalid(f"{path}: {exc}") from None
        return tree
    if which not in ("json_val", "json_ietf_val"):
        raise invalid(f"{path} is a {kind}: its value must be json_ietf_val or json_val, not {which}")
    raw = getattr(tv, which)
    try:
        decoded = json.loads(raw or b"null")
    except ValueError as exc:
        if kind not in ("leaf", "leaf-list"):
            raise invalid(f"{which} for {path} is not JSON: {exc}") from None
        # pygnmi sends a string leaf's value unquoted: it is unambiguous, so take the text
        decoded = raw.decode("utf-8", "replace")
    if kind in ("leaf", "leaf-list"):
        values = decoded if isinstance(decoded, list) and kind == "leaf-list" else [decoded]
        tree = DataTree(schema)
        for v in values:
            tree.set(path, None if v is None or v == [None] else _scalar_text(v))
        return tree
    if not isinstance(decoded, dict):
        raise invalid(f"{which} for {path} must be a JSON object")
    if not steps:
        return DataTree.from_python(decoded, schema=schema, validate=False)
    module = steps[-1][0]
    # members may name the node's own module; RFC 7951 leaves them unqualified below it
    inner = {(k.split(":", 1)[1] if k.startswith(module + ":") else k): v for k, v in decoded.items()}
    return DataTree.from_python(_nest(schema, steps, inner), schema=schema, validate=False)


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _whole_list_entries(target: GnmiTarget, pattern: Pattern) -> Iterator[str]:
    for path, *_ in select(target.index, target.config_json(), pattern.elems):
        yield path


async def apply_set(target: GnmiTarget, request: gnmi_pb2.SetRequest, principal) -> gnmi_pb2.SetResponse:
    prefix = request.prefix if request.HasField("prefix") else None
    operations: list[EditOperation] = []
    results: list[gnmi_pb2.UpdateResult] = []
    try:
        for path in request.delete:
            pattern = resolve(target.index, prefix, path)
            xpath, steps = data_path(target, pattern)
            if steps and steps[-1][2] == "list" and not steps[-1][3]:
                operations += [EditOperation("remove", p) for p in _whole_list_entries(target, pattern)]
            else:
                operations.append(EditOperation("remove", xpath))
            results.append(gnmi_pb2.UpdateResult(path=path, op=DELETE))
        for update in request.replace:
            operations += _writes(target, prefix, update, "replace")
            results.append(gnmi_pb2.UpdateResult(path=update.path, op=REPLACE))
        unions: dict[str, list] = {}
        for update in request.union_replace:
            pattern = resolve(target.index, prefix, update.path)
            xpath, _ = data_path(target, pattern)
            unions.setdefault(xpath, []).append(update)
            results.append(gnmi_pb2.UpdateResult(path=update.path, op=UNION_REPLACE))
        for updates in unions.values():
            ops = [op for u in updates for op in _writes(target, prefix, u, "replace")]
            merged = ops[0]
            for extra in ops[1:]:
                if extra.value is not None and merged.value is not None:
                    merged.value.merge(extra.value)
            operations.append(merged)
        for update in request.update:
            operations += _writes(target, prefix, update, "merge")
            results.append(gnmi_pb2.UpdateResult(path=update.path, op=UPDATE))
    except InvalidData as exc:
        raise invalid(f"invalid value: {_issue_text(exc)}") from None
    if not operations:  # not an error (specification 3.4.1): nothing to do, nothing done
        return gnmi_pb2.SetResponse(prefix=prefix, response=results, timestamp=time.time_ns())
    try:
        await target.datastore.edit("running", operations, target.session(principal))
    except DatastoreError as exc:
        raise from_datastore(exc) from None
    return gnmi_pb2.SetResponse(prefix=prefix, response=results, timestamp=time.time_ns())


def _writes(target: GnmiTarget, prefix, update: gnmi_pb2.Update, operation: str) -> list[EditOperation]:
    pattern = resolve(target.index, prefix, update.path)
    xpath, steps = data_path(target, pattern)
    if steps and steps[-1][2] == "list" and not steps[-1][3]:
        raise invalid(f"{pattern.text}: give the keys of the list entry to write")
    try:
        value = _value_tree(target, xpath, steps, update)
    except InvalidData as exc:  # named by the keyed path written, not libyang's schema path
        raise invalid(f"invalid value for {xpath}: {_issue_text(exc, with_path=False)}") from None
    if operation == "replace" and steps and steps[-1][2] == "leaf-list":
        return [EditOperation("remove", xpath), EditOperation("merge", xpath, value)]
    return [EditOperation(operation, xpath, value)]


def _issue_text(exc: InvalidData, *, with_path: bool = True) -> str:
    issue = exc.issues[0] if exc.issues else None
    if issue is None:
        return str(exc)
    return f"{issue.path}: {issue.message}" if issue.path and with_path else issue.message

