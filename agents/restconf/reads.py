"""GET and HEAD of data resources: which tree, which part of it, what the user may see, and how
it is written (RFC 8040 s4.3, s4.8.1-3, s4.8.9).

The operational read is `operational` here, the one place it is taken (running merged with the
device's and the agent's state, as NETCONF's <get> reads it) so the core's shared operational
read replaces one line when it lands.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.nacm import UserAccess
from qstrata.agents.datastore.store import Datastore
from qstrata.bindings.paths import PathStep
from qstrata.bindings.schema_index import SchemaIndex
from qstrata.bindings.tree import DataTree, Visit

from . import codec, dialect
from .errors import not_found
from .media import Encoding
from .query import Query
from .resource import Target


def operational(datastore: Datastore, access: AccessControl, extra: dict) -> DataTree:
    """Running merged with what the devices and the agent report (and `extra`: yang-library)."""
    tree = datastore.operational()
    tree.merge(DataTree.from_python({**access.state(), **extra}, schema=datastore.schema, validate=False))
    return tree


@dataclass
class Answer:
    body: bytes
    found: bool = True


def _combine(verdicts: list[Visit]) -> Visit:
    if Visit.DROP in verdicts:
        return Visit.DROP
    if Visit.THROUGH in verdicts:
        return Visit.THROUGH
    if Visit.OPEN in verdicts:
        return Visit.OPEN
    return Visit.KEEP


def visitor(query: Query, base: int, index: SchemaIndex, *, config_source: bool = False
            ) -> Callable[[tuple[PathStep, ...], tuple], Visit] | None:
    """The `DataTree.pruned` visitor for content, depth and fields below a target `base` steps
    deep (0: the datastore, whose ``data`` container counts as depth 1). `config_source`: the
    tree read holds configuration only (running), so content=config takes nothing from it."""
    checks: list[Callable[[tuple[PathStep, ...], tuple], Visit]] = []
    if query.content != "all" and not (query.content == "config" and config_source):
        want_config = query.content == "config"
        config_of: dict[int, bool] = {}

        def content(steps: tuple[PathStep, ...], schema_path: tuple) -> Visit:
            config = config_of.get(id(schema_path))
            if config is None:
                node = index.node(schema_path)
                config = config_of[id(schema_path)] = node is None or node.config
            if want_config:
                return Visit.OPEN if config else Visit.DROP
            return Visit.THROUGH if config else Visit.KEEP
        checks.append(content)
    if query.depth is not None:
        limit = query.depth + (1 if base == 0 else 0)

        def depth(steps: tuple[PathStep, ...], schema_path: tuple) -> Visit:
            level = len(steps) - base + 1 if base else len(steps) + 1
            return Visit.DROP if level > limit else Visit.OPEN
        checks.append(depth)
    if query.fields:
        wanted = query.fields

        def fields(steps: tuple[PathStep, ...], schema_path: tuple) -> Visit:
            rel = schema_path[base:]
            if not rel:
                return Visit.OPEN
            through = False
            for field in wanted:
                if _matches(field, rel, schema_path[base - 1][0] if base else None):
                    if len(field) <= len(rel):
                        return Visit.OPEN
                    if len(field) == len(rel) + 1 and _is_key(index, schema_path, field[-1][1]):
                        return Visit.OPEN  # keys are never visited: a field naming one opens its entry
                    through = True
            return Visit.THROUGH if through else Visit.DROP
        checks.append(fields)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda steps, schema_path: _combine([check(steps, schema_path) for check in checks])


def _is_key(index: SchemaIndex, schema_path: tuple, name: str) -> bool:
    node = index.node(schema_path)
    return node is not None and node.kind == "list" and name in node.keys


def _matches(field: tuple[tuple[str | None, str], ...], rel: tuple, parent_module: str | None) -> bool:
    """Does `rel` (schema steps below the target) start with `field` or lie on its way?"""
    module = parent_module
    for (want_module, want_name), (have_module, have_name) in zip(field, rel, strict=False):
        module = want_module or module
        if want_name != have_name or (module is not None and module != have_module):
            return False
        module = have_module
    return True


def select(source: DataTree, target: Target, access: UserAccess, control: AccessControl, query: Query,
           index: SchemaIndex, *, config_source: bool = False) -> DataTree | None:
    """The target with its ancestors, as the user may see it, pruned by the query; None when the
    target does not exist. When nothing is to be taken away (a user NACM does not restrict, no
    query that prunes or adds defaults) that is `source` itself: the target is printed in place,
    not copied first. `config_source`: see `visitor`."""
    visit = visitor(query, len(target.steps), index, config_source=config_source)
    if target.is_datastore:
        tree = source
    else:
        if source.get(target.path) is None:
            return None
        untouched = access.unrestricted and visit is None and query.with_defaults not in ("report-all",
                                                                                        "report-all-tagged")
        tree = source if untouched else source.select(target.path)
    if not access.unrestricted:
        tree = control.filter_read(access, tree)
        if not target.is_datastore and tree.get(target.path) is None:
            return None  # RFC 8341 s3.2.4: what may not be read does not exist for the reader
    if visit is not None:
        tree = tree.pruned(visit)
    if query.with_defaults in ("report-all", "report-all-tagged"):
        tree = tree.copy() if tree is source else tree
        tree.add_implicit(config_only=query.content == "config")
    return tree


def render(tree: DataTree, target: Target, encoding: Encoding, query: Query, modules: frozenset[str],
           schema_namespace: Callable[[str], str]) -> Answer:
    if target.is_datastore:
        return Answer(codec.encode_datastore(tree, encoding, modules, with_defaults=query.with_defaults,
                                             keep_empty=query.depth is not None))
    node = tree.get(target.path)
    if node is None:
        # filtered away entirely (content=, fields=): the target as an empty container
        step = target.steps[-1]
        if encoding == "xml":
            return Answer(f'<{step.name} xmlns="{schema_namespace(step.module)}"/>'.encode())
        doc: dict = {f"{step.module}:{step.name}": {}}
        if encoding == "plain":
            doc = dialect.answer(doc, modules, codec.schema_path(target.steps[:-1]))
        return Answer(json.dumps(doc).encode())
    with_defaults = query.with_defaults
    if with_defaults is None and target.node is not None and target.node.kind == "leaf":
        with_defaults = "report-all"  # RFC 8040 s3.5.4: a leaf at its default answers the default in use
    return Answer(codec.encode_node(node.cdata, encoding, modules, with_defaults=with_defaults,
                                    keep_empty=query.depth is not None, parent=codec.schema_path(target.steps[:-1])))


def read(source: DataTree, target: Target, encoding: Encoding, query: Query, access: UserAccess,
         control: AccessControl, index: SchemaIndex, modules: frozenset[str],
         schema_namespace: Callable[[str], str], *, config_source: bool = False) -> Answer:
    """Pure CPU work (may run in a worker thread)."""
    tree = select(source, target, access, control, query, index, config_source=config_source)
    if tree is None:
        raise not_found(f"no data at {target.path}", target.path)
    return render(tree, target, encoding, query, modules, schema_namespace)


def entity_tag(running: DataTree, path: str) -> str | None:
    """A strong entity-tag of the configuration at `path` (None when there is none): a digest of
    its RFC 7951 text, so it changes exactly when the resource does (RFC 8040 s3.4.1.2)."""
    if path == "/":
        text = running.print("json")
    else:
        node = running.get(path)
        if node is None:
            return None
        text = codec.print_node(node.cdata, "json")
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:24] + '"'
