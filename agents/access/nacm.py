"""RFC 8341 Network Configuration Access Control (NACM), as a pure evaluator.

Built from the ``/ietf-netconf-acm:nacm`` configuration (a JSON-IETF dict, as it sits in
running) and the schema, a `NacmPolicy` answers, for one user, whether a protocol operation may
run (s3.4.4), whether data nodes may be created, updated, deleted or read (s3.4.5) and whether a
notification may be delivered (s3.4.6). It does no I/O and knows no protocol: NETCONF, gNMI and
RESTCONF ask the same questions and translate the answer into their own errors.

How a front end uses it (NETCONF shown; the names are RFC 8341's)::

    policy = NacmPolicy.from_config(running_nacm_json, schema)   # again whenever /nacm changes
    access = policy.for_user(session.username, session.groups)   # cached per (user, groups)
    access.may_exec("ietf-netconf", "edit-config")               # before running an rpc
    access.first_denied_write(changes)                           # on the computed diff
    access.filter_read(reply_tree)                               # before printing <data>
    access.may_notify("etsi-qkd-sdn-node", "sdqkdn_link_down")   # before sending one

Decisions, in RFC order: ``enable-nacm`` false permits everything; the user's groups are the
``/nacm/groups`` naming it plus, when ``enable-external-groups`` (default true), the groups the
transport reports (``users.json``); rule-lists apply in order when their ``group`` holds one of
the user's groups or ``*``; within them rules apply in order and the first rule that matches
the module, the rule type (none, ``rpc-name``, ``notification-name`` or ``path``) and the access
operation decides. With no match: ``nacm:default-deny-all`` (and, for writes,
``nacm:default-deny-write``) in the schema denies, ``<kill-session>`` and ``<delete-config>``
are denied, ``<close-session>`` is always permitted, and otherwise ``read-default``,
``write-default`` and ``exec-default`` decide.

Choices where RFC 8341 leaves room (the same as netopeer2/sysrepo):

* A write of a subtree (create or delete of a container or list entry) needs the access on
  every node of it; `UserAccess.first_denied_write` names the first node that lacks it.
* A read of a node that is denied but has readable descendants keeps the node as structure
  (with its list keys) so those descendants can be shown; list keys follow their entry.
* ``path`` ``/`` matches every data node (RFC 8341 gives no way to say so otherwise).
* A ``/nacm`` with nothing configured (an old state dir, or libyang's implicit defaults only)
  means `DEFAULT_NACM`. Without that, RFC 8341's defaults with no rules would let nobody write
  anything, not even the ``/nacm`` that could fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qstrata.bindings.diff import Change
from qstrata.bindings.paths import PathStep, PathSyntaxError, format_data_path, parse_data_path
from qstrata.bindings.schema import Schema
from qstrata.bindings.schema_index import DENY_ALL, SchemaIndex, SchemaNode, schema_index
from qstrata.bindings.tree import DataTree, Visit, node_value

__all__ = [
    "ACCESS_OPERATIONS",
    "DEFAULT_NACM",
    "NACM_MODULE",
    "NacmCounters",
    "NacmPolicy",
    "Rule",
    "RuleList",
    "UserAccess",
]

log = logging.getLogger("qstrata.access")

NACM_MODULE = "ietf-netconf-acm"
NACM_TOP = f"{NACM_MODULE}:nacm"
ACCESS_OPERATIONS = ("create", "read", "update", "delete", "exec")
AccessOperation = Literal["create", "read", "update", "delete", "exec"]
_CHANGE_OPERATION: dict[str, AccessOperation] = {"create": "create", "modify": "update", "delete": "delete"}
_WRITES = frozenset({"create", "update", "delete"})

_ALWAYS_PERMITTED_RPCS = frozenset({("ietf-netconf", "close-session")})
_DENIED_BY_DEFAULT_RPCS = frozenset({("ietf-netconf", "kill-session"), ("ietf-netconf", "delete-config")})
_ALWAYS_PERMITTED_NOTIFICATIONS = frozenset(
    {("nc-notifications", "replayComplete"), ("nc-notifications", "notificationComplete")}
)

_READ_OPERATIONS = (
    ("ietf-netconf", "get"),
    ("ietf-netconf", "get-config"),
    ("ietf-netconf", "lock"),
    ("ietf-netconf", "unlock"),
    ("ietf-netconf", "validate"),
    ("ietf-netconf", "discard-changes"),
    ("ietf-netconf", "close-session"),
    ("ietf-netconf-monitoring", "get-schema"),
    ("ietf-netconf-nmda", "get-data"),
    ("notifications", "create-subscription"),
)


def _rule(name: str, *, module: str = "*", access: str = "*", action: str = "permit", **rule_type: str) -> dict:
    out = {"name": name, "module-name": module, "access-operations": access, "action": action}
    out.update({key.replace("_", "-"): value for key, value in rule_type.items()})
    return out


_DENY_NACM = _rule("deny-nacm", module=NACM_MODULE, path=f"/{NACM_TOP}", action="deny")

DEFAULT_NACM: dict[str, Any] = {
    NACM_TOP: {
        "enable-nacm": True,
        "read-default": "permit",
        "write-default": "deny",
        "exec-default": "permit",
        "enable-external-groups": True,
        "rule-list": [
            {
                "name": "admin",
                "group": ["admin"],
                "rule": [_rule("permit-all")],
            },
            {
                "name": "read-write",
                "group": ["read-write"],
                "rule": [
                    _DENY_NACM,
                    _rule("deny-kill-session", module="ietf-netconf", rpc_name="kill-session",
                          access="exec", action="deny"),
                    _rule("deny-delete-config", module="ietf-netconf", rpc_name="delete-config",
                          access="exec", action="deny"),
                    _rule("permit-all-else"),
                ],
            },
            {
                "name": "read-only",
                "group": ["read-only"],
                "rule": [
                    _DENY_NACM,
                    *(_rule(f"permit-{rpc}", module=module, rpc_name=rpc, access="exec")
                      for module, rpc in _READ_OPERATIONS),
                    _rule("deny-other-operations", rpc_name="*", access="exec", action="deny"),
                    _rule("deny-writes", access="create update delete", action="deny"),
                ],
            },
        ],
    }
}
"""The ``/nacm`` an agent seeds on first start (and the policy when ``/nacm`` is empty).

Groups come from ``users.json`` (external groups). ``admin`` may do everything, ``/nacm``
included. ``read-write`` may read and write all data and run every operation, except ``/nacm``
(admin-only) and ``<kill-session>``/``<delete-config>``. ``read-only`` may read everything but
``/nacm`` and run only operations that read, lock or manage its own session. Users in no group
get RFC 8341's defaults: read, run operations, never write."""


# -- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One ``rule-list/rule``. ``kind`` is the RFC 8341 rule-type (``any`` when none is set);
    ``target`` the rpc-name or notification-name (``*`` allowed); ``path`` the resolved steps
    of a data-node rule (``()`` for ``/``; None for a path that cannot match anything)."""

    name: str
    module: str
    kind: Literal["any", "rpc", "notification", "path"]
    operations: frozenset[str]
    permit: bool
    target: str | None = None
    path: tuple[PathStep, ...] | None = None

    def matches_module(self, module: str) -> bool:
        return self.module == "*" or self.module == module

    def matches_node(self, steps: Sequence[PathStep]) -> bool:
        """RFC 8341: the node is the one the path names or one of its descendants."""
        if self.kind == "any":
            return True
        if self.kind != "path" or self.path is None or len(self.path) > len(steps):
            return False
        for want, have in zip(self.path, steps, strict=False):
            if want.name != have.name or want.module != have.module:
                return False
            if want.keys:
                have_keys = dict(have.keys)
                if any(have_keys.get(k) != v for k, v in want.keys):
                    return False
        return True

    def reaches_below(self, schema_steps: Sequence[tuple[str, str]]) -> bool:
        """True when the rule's path names a node strictly below this schema position
        (ignoring key predicates): nodes below may then be decided differently."""
        if self.kind != "path" or self.path is None or len(self.path) <= len(schema_steps):
            return False
        return all((w.module, w.name) == s for w, s in zip(self.path, schema_steps, strict=False))


@dataclass(frozen=True)
class RuleList:
    name: str
    groups: frozenset[str]
    rules: tuple[Rule, ...]

    def applies_to(self, groups: frozenset[str]) -> bool:
        return bool(groups) and ("*" in self.groups or not self.groups.isdisjoint(groups))


def _operations(value: Any) -> frozenset[str]:
    if value is None or value == "*":
        return frozenset(ACCESS_OPERATIONS)
    return frozenset(str(value).split()) & frozenset(ACCESS_OPERATIONS)


# -- the policy ------------------------------------------------------------------------------


class NacmPolicy:
    """One version of ``/nacm``, compiled. Immutable: build a new one when ``/nacm`` changes.

    ``problems`` lists rules that can never match (a path that names no node of the schema),
    for the agent to log once."""

    def __init__(
        self,
        index: SchemaIndex,
        *,
        enabled: bool = True,
        read_default: bool = True,
        write_default: bool = False,
        exec_default: bool = True,
        external_groups: bool = True,
        groups: Mapping[str, frozenset[str]] | None = None,
        rule_lists: Sequence[RuleList] = (),
        problems: Sequence[str] = (),
    ) -> None:
        self.index = index
        self.enabled = enabled
        self.read_default = read_default
        self.write_default = write_default
        self.exec_default = exec_default
        self.external_groups = external_groups
        self.groups: Mapping[str, frozenset[str]] = dict(groups or {})
        self.rule_lists = tuple(rule_lists)
        self.problems = tuple(problems)
        self._users: dict[tuple[str, tuple[str, ...]], UserAccess] = {}

    @classmethod
    def from_config(cls, nacm: Mapping[str, Any] | None, schema: Schema) -> NacmPolicy:
        """Compile ``/nacm`` given as JSON-IETF: ``{"ietf-netconf-acm:nacm": {...}}`` or the
        container's content. None, or a ``/nacm`` with no configuration in it, means
        `DEFAULT_NACM`. Config false leaves (the counters) are ignored."""
        body = _nacm_body(nacm)
        if not body:
            body = DEFAULT_NACM[NACM_TOP]
        index = schema_index(schema)
        problems: list[str] = []
        groups: dict[str, set[str]] = {}
        for group in (body.get("groups") or {}).get("group") or ():
            groups.setdefault(str(group["name"]), set()).update(str(u) for u in group.get("user-name") or ())
        rule_lists = []
        for rule_list in body.get("rule-list") or ():
            rules = tuple(_compile_rule(rule_list.get("name", "?"), rule, index, problems)
                          for rule in rule_list.get("rule") or ())
            rule_lists.append(RuleList(str(rule_list.get("name", "")),
                                       frozenset(str(g) for g in rule_list.get("group") or ()), rules))
        return cls(
            index,
            enabled=body.get("enable-nacm", True) is not False,
            read_default=body.get("read-default", "permit") == "permit",
            write_default=body.get("write-default", "deny") == "permit",
            exec_default=body.get("exec-default", "permit") == "permit",
            external_groups=body.get("enable-external-groups", True) is not False,
            groups={name: frozenset(users) for name, users in groups.items()},
            rule_lists=rule_lists,
            problems=problems,
        )

    @classmethod
    def from_tree(cls, running: DataTree) -> NacmPolicy:
        """Compile the ``/nacm`` of a data tree (e.g. running)."""
        node = running.get(f"/{NACM_TOP}")
        return cls.from_config(node_value(node) if node is not None else None, running.schema)

    def user_groups(self, username: str, external_groups: Iterable[str] = ()) -> frozenset[str]:
        """RFC 8341 s3.4.5 step 3: ``/nacm/groups`` naming the user, plus the transport's
        groups when ``enable-external-groups`` is true."""
        groups = {name for name, users in self.groups.items() if username in users}
        if self.external_groups:
            groups.update(external_groups)
        return frozenset(groups)

    def for_user(self, username: str, external_groups: Sequence[str] = ()) -> UserAccess:
        """What ``username`` may do (cached per user and group set)."""
        key = (username, tuple(sorted(set(external_groups))))
        access = self._users.get(key)
        if access is None:
            if len(self._users) >= 1024:  # bounded: users come and go over an agent's life
                self._users.clear()
            access = self._users[key] = UserAccess(self, username, self.user_groups(username, external_groups))
        return access


def _nacm_body(nacm: Mapping[str, Any] | None) -> dict[str, Any]:
    if not nacm:
        return {}
    body = nacm.get(NACM_TOP, nacm) if isinstance(nacm, Mapping) else {}
    body = dict(body or {})
    for state_leaf in ("denied-operations", "denied-data-writes", "denied-notifications"):
        body.pop(state_leaf, None)
    return body


def _compile_rule(list_name: str, rule: Mapping[str, Any], index: SchemaIndex, problems: list[str]) -> Rule:
    name = str(rule.get("name", ""))
    operations = _operations(rule.get("access-operations", "*"))
    permit = rule.get("action") == "permit"
    module = str(rule.get("module-name", "*"))
    if "rpc-name" in rule:
        return Rule(name, module, "rpc", operations, permit, target=str(rule["rpc-name"]))
    if "notification-name" in rule:
        return Rule(name, module, "notification", operations, permit, target=str(rule["notification-name"]))
    if "path" in rule:
        path = _resolve_path(str(rule["path"]), index)
        if path is None:
            problems.append(f"rule-list {list_name!r} rule {name!r}: path {rule['path']!r} names no data node")
        return Rule(name, module, "path", operations, permit, path=path)
    return Rule(name, module, "any", operations, permit)


def _resolve_path(text: str, index: SchemaIndex) -> tuple[PathStep, ...] | None:
    """Steps with every module filled in (prefixes may be module names or YANG prefixes), or
    None when the path does not name a node of the schema."""
    try:
        raw = parse_data_path(text)
    except PathSyntaxError:
        return None
    steps: list[PathStep] = []
    node: SchemaNode | None = None
    for i, step in enumerate(raw):
        module = index.module_name(step.module) if step.module else (steps[-1].module if steps else None)
        if module is None:
            return None
        node = index.top.get((module, step.name)) if i == 0 else node.child(module, step.name) if node else None
        if node is None:
            return None
        steps.append(PathStep(module, step.name, step.keys))
    return tuple(steps)


# -- one user --------------------------------------------------------------------------------


class UserAccess:
    """What one user (with one set of groups) may do under one `NacmPolicy`. Decisions are
    cached; instances are cheap to keep per session."""

    def __init__(self, policy: NacmPolicy, username: str, groups: frozenset[str]) -> None:
        self.policy = policy
        self.username = username
        self.groups = groups
        rules = [rule for rule_list in policy.rule_lists if rule_list.applies_to(groups) for rule in rule_list.rules]
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._by_operation = {op: tuple(r for r in rules if op in r.operations) for op in ACCESS_OPERATIONS}
        self._exec: dict[tuple[str, str], bool] = {}
        self._notify: dict[tuple[str, str], bool] = {}
        self._uniform: dict[tuple[str, int], bool] = {}
        self._nodes: dict[tuple[tuple[str, str], ...], SchemaNode | None] = {}
        self.unrestricted = not policy.enabled or self._first_rule_is_permit_all()
        """True when every access is permitted (an ``admin``): callers may skip the checks."""

    def _first_rule_is_permit_all(self) -> bool:
        return bool(self.rules) and (
            self.rules[0].kind == "any" and self.rules[0].module == "*" and self.rules[0].permit
            and self.rules[0].operations == frozenset(ACCESS_OPERATIONS)
        )

    # ---------------------------------------------------------------- operations (s3.4.4)
    def may_exec(self, module: str, rpc: str) -> bool:
        """May the user invoke protocol operation ``rpc`` of ``module``?"""
        key = (module, rpc)
        decision = self._exec.get(key)
        if decision is None:
            decision = self._exec[key] = self._decide_exec(module, rpc)
        return decision

    def _decide_exec(self, module: str, rpc: str) -> bool:
        if not self.policy.enabled or (module, rpc) in _ALWAYS_PERMITTED_RPCS:
            return True
        rule = self._named_rule("exec", "rpc", module, rpc)
        if rule is not None:
            return rule.permit
        node = self.policy.index.rpcs.get((module, rpc))
        if (node is not None and node.nacm == DENY_ALL) or (module, rpc) in _DENIED_BY_DEFAULT_RPCS:
            return False
        return self.policy.exec_default

    def _named_rule(self, operation: str, kind: str, module: str, name: str) -> Rule | None:
        """The first rule for `operation` that names the ``kind`` (rpc or notification) ``name``
        of ``module``, or any: s3.4.4 and s3.4.6 step 6 match rules the same way."""
        for rule in self._by_operation[operation]:
            if rule.kind in ("any", kind) and rule.matches_module(module) and (
                rule.kind == "any" or rule.target in ("*", name)
            ):
                return rule
        return None

    # ---------------------------------------------------------------- notifications (s3.4.6)
    def may_notify(self, module: str, notification: str) -> bool:
        """May the user receive ``notification`` of ``module``?"""
        key = (module, notification)
        decision = self._notify.get(key)
        if decision is None:
            decision = self._notify[key] = self._decide_notify(module, notification)
        return decision

    def _decide_notify(self, module: str, notification: str) -> bool:
        if not self.policy.enabled or (module, notification) in _ALWAYS_PERMITTED_NOTIFICATIONS:
            return True
        rule = self._named_rule("read", "notification", module, notification)
        if rule is not None:
            return rule.permit
        node = self.policy.index.notifications.get((module, notification))
        if node is not None and node.nacm == DENY_ALL:
            return False
        return self.policy.read_default

    # ---------------------------------------------------------------- data nodes (s3.4.5)
    def may_read(self, data_path: str) -> bool:
        """May the user read the node at ``data_path`` (a data path with module-qualified top
        node, as libyang prints it)?"""
        return self.allows("read", _steps(data_path, self.policy.index))

    def may_write(self, operation: AccessOperation, data_path: str) -> bool:
        """May the user ``create``, ``update`` or ``delete`` the node at ``data_path`` itself
        (its descendants are not looked at: see `first_denied_write`)?"""
        return self.allows(operation, _steps(data_path, self.policy.index))

    def may_exec_action(self, data_path: str) -> bool:
        """May the user invoke the YANG action at ``data_path``?"""
        return self.allows("exec", _steps(data_path, self.policy.index))

    def allows(self, operation: AccessOperation, steps: Sequence[PathStep], node: SchemaNode | None = None) -> bool:
        """The RFC 8341 s3.4.5 decision for one node given as resolved steps (``node``: its
        schema node, when the caller has it already)."""
        if not self.policy.enabled:
            return True
        module = steps[-1].module if steps else None
        for rule in self._by_operation[operation]:
            if rule.kind in ("any", "path") and (module is None or rule.matches_module(module)) \
                    and rule.matches_node(steps):
                return rule.permit
        if node is None:
            node = self._schema_node(steps)
        if node is not None and node.nacm is not None:
            if node.nacm == DENY_ALL or operation in _WRITES:
                return False
        if operation == "read":
            return self.policy.read_default
        if operation == "exec":
            return self.policy.exec_default
        return self.policy.write_default

    def first_denied_write(self, changes: Sequence[Change]) -> Change | None:
        """The first change the user may not make, or None when all are permitted.

        ``create``/``modify``/``delete`` need create/update/delete access. A created or deleted
        subtree needs that access on each of its nodes: the result is then a `Change` for the
        first node that lacks it (its ``path`` is the node to report in error-path)."""
        if self.unrestricted:
            return None
        index = self.policy.index
        for change in changes:
            operation = _CHANGE_OPERATION[change.op]
            steps = _steps(change.path, index)
            if not self.allows(operation, steps):
                return change
            if operation == "update":
                continue
            value = change.new if operation == "create" else change.old
            node = self._schema_node(steps)
            if node is None or not isinstance(value, dict) or self._uniform_below(operation, node, steps):
                continue
            for sub_steps, sub_value in _descendants(node, steps, value):
                if not self.allows(operation, sub_steps):
                    path = format_data_path(sub_steps)
                    return Change(change.op, path, None if operation == "create" else sub_value,
                                  sub_value if operation == "create" else None)
        return None

    def filter_read(self, tree: DataTree) -> DataTree:
        """A copy of ``tree`` without the nodes the user may not read (RFC 8341 s3.2.4:
        "silently omitted"). Denied nodes with readable descendants stay as structure."""
        if self.unrestricted:
            return tree.copy()
        nodes: dict[int, SchemaNode | None] = {}  # by identity of the walker's schema path tuples

        def visit(steps: tuple[PathStep, ...], schema_path: tuple[tuple[str, str], ...]) -> Visit:
            key = id(schema_path)
            if key in nodes:
                node = nodes[key]
            else:
                node = nodes[key] = self.policy.index.node(schema_path)
            permitted = self.allows("read", steps, node)
            if node is not None and self._uniform_below("read", node, steps):
                return Visit.KEEP if permitted else Visit.DROP
            return Visit.OPEN if permitted else Visit.THROUGH

        return tree.pruned(visit)

    # ---------------------------------------------------------------- helpers
    def _schema_node(self, steps: Sequence[PathStep]) -> SchemaNode | None:
        key = tuple((s.module or "", s.name) for s in steps)
        if key not in self._nodes:
            if len(self._nodes) > 65536:
                self._nodes.clear()
            self._nodes[key] = self.policy.index.node(key)
        return self._nodes[key]

    def _uniform_below(self, operation: AccessOperation, node: SchemaNode, steps: Sequence[PathStep]) -> bool:
        """True when every descendant of ``node`` is decided like ``node`` for ``operation``
        (so a read filter or a subtree write check need not look below it): no rule path
        reaches below it, no module-specific rule can tell its augments apart, and no
        descendant carries a stricter NACM extension."""
        key = (operation, id(node))
        uniform = self._uniform.get(key)
        if uniform is None:
            uniform = self._uniform[key] = self._compute_uniform(operation, node, steps)
        return uniform

    def _compute_uniform(self, operation: AccessOperation, node: SchemaNode, steps: Sequence[PathStep]) -> bool:
        if not self.policy.enabled:
            return True
        stricter = node.stricter_below if operation in _WRITES else node.stricter_below & {DENY_ALL}
        if stricter:
            return False
        schema_steps = tuple((s.module or "", s.name) for s in steps)
        rules = self._by_operation[operation]
        if any(rule.reaches_below(schema_steps) for rule in rules):
            return False
        other_modules = node.modules_below - {node.module}
        if other_modules:
            named = other_modules | {node.module}
            if any(rule.module in named for rule in rules):
                return False
        return True




def _steps(data_path: str, index: SchemaIndex) -> tuple[PathStep, ...]:
    """A data path as steps with every module filled in (inherited from the parent)."""
    steps: list[PathStep] = []
    for step in parse_data_path(data_path):
        module = step.module or (steps[-1].module if steps else None)
        steps.append(PathStep(module, step.name, step.keys))
    return tuple(steps)


def _descendants(node: SchemaNode, steps: tuple[PathStep, ...], value: Mapping[str, Any]
                 ) -> Iterator[tuple[tuple[PathStep, ...], Any]]:
    """Every node below a container or list entry given as JSON-IETF (``value``), parents
    before children: (steps, JSON value). List keys are not listed: they follow their entry."""
    for member, child_value in value.items():
        if member.startswith("@"):
            continue  # metadata
        module, _, name = member.rpartition(":")
        child = node.child(module or node.module, name)
        if child is None or child.is_key:
            continue
        if child.kind == "list" and isinstance(child_value, list):
            for entry in child_value:
                if not isinstance(entry, dict):
                    continue
                keys = tuple((k, _json_text(entry.get(k))) for k in child.keys)
                entry_steps = (*steps, PathStep(child.module, child.name, keys))
                yield entry_steps, entry
                yield from _descendants(child, entry_steps, entry)
        elif child.kind == "leaf-list" and isinstance(child_value, list):
            for item in child_value:
                yield (*steps, PathStep(child.module, child.name, ((".", _json_text(item)),))), item
        else:
            child_steps = (*steps, PathStep(child.module, child.name))
            yield child_steps, child_value
            if child.kind == "container" and isinstance(child_value, dict):
                yield from _descendants(child, child_steps, child_value)


def _json_text(value: Any) -> str:
    """A JSON-IETF scalar as the canonical text a data path predicate holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == [None]:
        return ""
    return str(value)


# -- counters --------------------------------------------------------------------------------


@dataclass
class NacmCounters:
    """The ``/nacm`` state leaves (RFC 8341 s3.1.3, Counter32): the front ends bump them, the agent reports
    them. One instance per agent, shared by its front ends. Counter32: they wrap at 2^32."""

    denied_operations: int = 0
    denied_data_writes: int = 0
    denied_notifications: int = 0

    def operation_denied(self) -> None:
        self.denied_operations = (self.denied_operations + 1) & 0xFFFFFFFF

    def data_write_denied(self) -> None:
        self.denied_data_writes = (self.denied_data_writes + 1) & 0xFFFFFFFF

    def notification_denied(self) -> None:
        self.denied_notifications = (self.denied_notifications + 1) & 0xFFFFFFFF

    def state(self) -> dict[str, Any]:
        """The counters as JSON-IETF, to merge into the operational ``/nacm``."""
        return {NACM_TOP: {
            "denied-operations": self.denied_operations,
            "denied-data-writes": self.denied_data_writes,
            "denied-notifications": self.denied_notifications,
        }}
