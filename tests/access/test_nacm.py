"""The RFC 8341 evaluator (agents/access/nacm.py), table-driven, without any protocol.

Most cases use the test-only modules in tests/access/yang: `qstrata-test-nacm` (a default-deny-all
container, a default-deny-write leaf, a keyed list with a default-deny-all leaf deep inside, an rpc and
a notification marked default-deny-all) and `qstrata-test-nacm-aug` (an augment, for module-name rules).
Every policy a test builds is first validated against ietf-netconf-acm, so the configurations are ones
a client could really write. The default policy is checked against the real agent schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qstrata.agents.access.nacm import DEFAULT_NACM, NacmCounters, NacmPolicy, UserAccess
from qstrata.bindings.diff import Change
from qstrata.bindings.schema import Schema, get_schema
from qstrata.bindings.schema_index import schema_index
from qstrata.bindings.tree import DataTree

YANG = Path(__file__).resolve().parent / "yang"
TN = "qstrata-test-nacm"
AUG = "qstrata-test-nacm-aug"
NACM = "ietf-netconf-acm:nacm"


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema(YANG)


def policy(schema: Schema, *rule_lists: tuple[list[str], list[dict]], groups: dict[str, list[str]] | None = None,
           validate: bool = True, **settings: Any) -> NacmPolicy:
    """A policy from rule-lists given as (groups, rules); rule names are generated. ``validate=False``
    skips libyang, for input running can never hold (libyang normalizes and checks rule paths)."""
    body: dict[str, Any] = {key.replace("_", "-"): value for key, value in settings.items()}
    if groups:
        body["groups"] = {"group": [{"name": g, "user-name": users} for g, users in groups.items()]}
    if rule_lists:
        body["rule-list"] = [
            {"name": f"list-{i}", "group": list_groups,
             "rule": [{"name": f"rule-{i}-{j}", **rule} for j, rule in enumerate(rules)]}
            for i, (list_groups, rules) in enumerate(rule_lists)
        ]
    config = {NACM: body}
    if validate:
        DataTree.from_python(config, schema=schema, config_only=True)  # a configuration a client could send
    return NacmPolicy.from_config(config, schema)


def permit(**rule: str) -> dict:
    return _rule("permit", rule)


def deny(**rule: str) -> dict:
    return _rule("deny", rule)


def _rule(action: str, rule: dict[str, str]) -> dict:
    out = {key.replace("_", "-"): value for key, value in rule.items()}
    out.setdefault("access-operations", "*")
    out["action"] = action
    return out


def item(key: str, leaf: str = "") -> str:
    return f"/{TN}:settings/item[id='{key}']" + (f"/{leaf}" if leaf else "")


# ---------------------------------------------------------------------------- protocol operations


EXEC_CASES = [
    # (description, policy kwargs, groups of the user, (module, rpc), expected)
    ("no rules: exec-default permit", {}, ["ops"], (TN, "ping"), True),
    ("exec-default deny", {"exec_default": "deny", "write_default": "permit"}, ["ops"], (TN, "ping"), False),
    ("default-deny-all rpc without a rule", {}, ["ops"], (TN, "reboot"), False),
    ("kill-session is denied by default", {}, ["ops"], ("ietf-netconf", "kill-session"), False),
    ("delete-config is denied by default", {}, ["ops"], ("ietf-netconf", "delete-config"), False),
    ("close-session even against a deny-all rule",
     {"rules": (["ops"], [deny(rpc_name="*", access_operations="exec")])}, ["ops"],
     ("ietf-netconf", "close-session"), True),
    ("a rule permits a default-deny-all rpc",
     {"rules": (["ops"], [permit(module_name=TN, rpc_name="reboot", access_operations="exec")])}, ["ops"],
     (TN, "reboot"), True),
    ("rpc-name * of the module",
     {"rules": (["ops"], [deny(module_name=TN, rpc_name="*", access_operations="exec")])}, ["ops"],
     (TN, "ping"), False),
    ("module-name of another module does not match",
     {"rules": (["ops"], [deny(module_name="ietf-netconf", rpc_name="*", access_operations="exec")])}, ["ops"],
     (TN, "ping"), True),
    ("a rule without exec does not match",
     {"rules": (["ops"], [deny(rpc_name="ping", access_operations="read update")])}, ["ops"], (TN, "ping"), True),
    ("a rule with no rule-type matches every operation",
     {"rules": (["ops"], [deny(access_operations="exec")])}, ["ops"], (TN, "ping"), False),
    ("a data-node rule never matches an operation",
     {"rules": (["ops"], [deny(path=f"/{TN}:settings")])}, ["ops"], (TN, "ping"), True),
    ("a notification rule never matches an operation",
     {"rules": (["ops"], [deny(notification_name="*")])}, ["ops"], (TN, "ping"), True),
    ("first matching rule wins (permit first)",
     {"rules": (["ops"], [permit(rpc_name="ping", access_operations="exec"), deny(access_operations="exec")])},
     ["ops"], (TN, "ping"), True),
    ("first matching rule wins (deny first)",
     {"rules": (["ops"], [deny(access_operations="exec"), permit(rpc_name="ping", access_operations="exec")])},
     ["ops"], (TN, "ping"), False),
    ("a rule-list of other groups does not apply",
     {"rules": (["admins"], [deny(access_operations="exec")])}, ["ops"], (TN, "ping"), True),
    ("group * applies to every user in some group",
     {"rules": (["*"], [deny(access_operations="exec")])}, ["ops"], (TN, "ping"), False),
    ("group * does not apply to a user in no group (RFC 8341 s3.4.4 step 5)",
     {"rules": (["*"], [deny(access_operations="exec")])}, [], (TN, "ping"), True),
    ("enable-nacm false permits even default-deny-all",
     {"enable_nacm": False}, ["ops"], (TN, "reboot"), True),
]


@pytest.mark.parametrize("description,settings,groups,target,expected", EXEC_CASES,
                         ids=[c[0] for c in EXEC_CASES])
def test_may_exec(schema, description, settings, groups, target, expected) -> None:
    settings = dict(settings)
    rules = settings.pop("rules", None)
    access = policy(schema, *([rules] if rules else []), **settings).for_user("u", groups)
    assert access.may_exec(*target) is expected


def test_rule_lists_apply_in_order(schema) -> None:
    p = policy(schema,
               (["ops"], [deny(rpc_name="ping", access_operations="exec")]),
               (["dev"], [permit(rpc_name="ping", access_operations="exec")]))
    assert p.for_user("u", ["ops", "dev"]).may_exec(TN, "ping") is False
    assert p.for_user("u", ["dev"]).may_exec(TN, "ping") is True
    reordered = policy(schema,
                       (["dev"], [permit(rpc_name="ping", access_operations="exec")]),
                       (["ops"], [deny(rpc_name="ping", access_operations="exec")]))
    assert reordered.for_user("u", ["ops", "dev"]).may_exec(TN, "ping") is True


@pytest.mark.parametrize("external,configured,expected", [
    (True, {"ops": ["alice"]}, {"ops", "from-users-json"}),
    (False, {"ops": ["alice"]}, {"ops"}),
    (True, {"ops": ["bob"]}, {"from-users-json"}),
    (False, {}, set()),
])
def test_groups_of_a_user(schema, external, configured, expected) -> None:
    p = policy(schema, groups=configured, enable_external_groups=external)
    assert p.user_groups("alice", ["from-users-json"]) == expected
    assert p.for_user("alice", ["from-users-json"]).groups == expected


def test_configured_groups_select_rule_lists(schema) -> None:
    p = policy(schema, (["ops"], [deny(rpc_name="ping", access_operations="exec")]),
               groups={"ops": ["alice"]}, enable_external_groups=False)
    assert p.for_user("alice", []).may_exec(TN, "ping") is False
    assert p.for_user("alice", ["ops"]).may_exec(TN, "ping") is False
    assert p.for_user("bob", ["ops"]).may_exec(TN, "ping") is True  # external groups are off


def test_for_user_is_cached_per_user_and_groups(schema) -> None:
    p = policy(schema)
    assert p.for_user("u", ["a", "b"]) is p.for_user("u", ["b", "a"])
    assert p.for_user("u", ["a"]) is not p.for_user("u", ["b"])


# ---------------------------------------------------------------------------- data nodes


DATA_CASES = [
    # (description, rules, settings, operation, path, expected)
    ("write-default deny", [], {}, "update", f"/{TN}:settings/name", False),
    ("write-default permit", [], {"write_default": "permit"}, "update", f"/{TN}:settings/name", True),
    ("read-default permit", [], {}, "read", f"/{TN}:settings/name", True),
    ("read-default deny", [], {"read_default": "deny"}, "read", f"/{TN}:settings/name", False),
    ("default-deny-write: write denied although write-default permits",
     [], {"write_default": "permit"}, "update", f"/{TN}:settings/admin-only", False),
    ("default-deny-write: read allowed", [], {}, "read", f"/{TN}:settings/admin-only", True),
    ("default-deny-write: an explicit rule permits",
     [permit(path=f"/{TN}:settings/admin-only", access_operations="update")], {}, "update",
     f"/{TN}:settings/admin-only", True),
    ("default-deny-all: read denied", [], {}, "read", f"/{TN}:secrets", False),
    ("default-deny-all: inherited by descendants", [], {"write_default": "permit"}, "create",
     f"/{TN}:secrets/key", False),
    ("default-deny-all deep in a list entry", [], {}, "read", item("a", "detail/hidden"), False),
    ("default-deny-all: an explicit rule permits", [permit(path=f"/{TN}:secrets")], {}, "read",
     f"/{TN}:secrets/key", True),
    ("path rule covers descendants", [deny(path=f"/{TN}:settings", access_operations="read")], {}, "read",
     item("a", "value"), False),
    ("path rule with a key matches that entry", [deny(path=item("a"), access_operations="update")],
     {"write_default": "permit"}, "update", item("a", "value"), False),
    ("path rule with a key does not match another entry", [deny(path=item("a"), access_operations="update")],
     {"write_default": "permit"}, "update", item("b", "value"), True),
    ("path rule without keys matches every entry",
     [permit(path=f"/{TN}:settings/item/value", access_operations="update")], {}, "update", item("z", "value"), True),
    ("path rule on a sibling does not match", [permit(path=f"/{TN}:settings/name", access_operations="*")], {},
     "update", item("a", "value"), False),
    ("path rule with every element prefixed (hand-built config)",
     [permit(path=f"/{TN}:settings/{TN}:item/{TN}:value", access_operations="update")], {"validate": False},
     "update", item("a", "value"), True),
    ("path rule written with YANG prefixes (hand-built config)",
     [permit(path="/tn:settings/tn:item", access_operations="update")], {"validate": False}, "update",
     item("a", "value"), True),
    ("path / matches everything", [permit(path="/", access_operations="create")], {}, "create",
     item("a", "value"), True),
    ("leaf-list value predicate", [deny(path=f"/{TN}:settings/item/tag[.='t2']", access_operations="delete")],
     {"write_default": "permit"}, "delete", item("a", "tag[.='t2']"), False),
    ("leaf-list other value", [deny(path=f"/{TN}:settings/item/tag[.='t2']", access_operations="delete")],
     {"write_default": "permit"}, "delete", item("a", "tag[.='t1']"), True),
    ("access-operations: only the listed ones", [permit(path=f"/{TN}:settings", access_operations="create")],
     {}, "delete", f"/{TN}:settings/name", False),
    ("module-name must be the node's module", [permit(module_name=AUG, access_operations="update")], {},
     "update", item("a", "value"), False),
    ("module-name of an augment matches its nodes", [permit(module_name=AUG, access_operations="update")], {},
     "update", item("a", f"{AUG}:extra"), True),
    ("rpc rules never match data", [permit(rpc_name="*")], {}, "update", f"/{TN}:settings/name", False),
    ("notification rules never match data", [deny(notification_name="*")], {}, "read", f"/{TN}:settings/name",
     True),
    ("enable-nacm false", [], {"enable_nacm": False}, "create", f"/{TN}:secrets/key", True),
]


@pytest.mark.parametrize("description,rules,settings,operation,path,expected", DATA_CASES,
                         ids=[c[0] for c in DATA_CASES])
def test_data_node_access(schema, description, rules, settings, operation, path, expected) -> None:
    access = policy(schema, *([(["ops"], rules)] if rules else []), **settings).for_user("u", ["ops"])
    if operation == "read":
        assert access.may_read(path) is expected
    else:
        assert access.may_write(operation, path) is expected


ITEM_A = {"id": "a", "value": 1, "tag": ["t1", "t2"], "detail": {"note": "n"}}


@pytest.mark.parametrize("description,rules,change,denied_path", [
    ("a permitted create", [permit(path=f"/{TN}:settings", access_operations="create")],
     Change("create", item("a"), None, ITEM_A), None),
    ("modify needs update", [deny(path=f"/{TN}:settings", access_operations="update")],
     Change("modify", item("a", "value"), "1", "2"), item("a", "value")),
    ("modify does not need create", [deny(path=f"/{TN}:settings", access_operations="create delete")],
     Change("modify", item("a", "value"), "1", "2"), None),
    ("delete needs delete", [deny(path=f"/{TN}:settings", access_operations="delete")],
     Change("delete", item("a", "value"), "1", None), item("a", "value")),
    ("create needs create", [deny(path=f"/{TN}:settings", access_operations="create")],
     Change("create", item("a", "value"), None, "1"), item("a", "value")),
    ("a created subtree needs create on every node",
     [deny(path=f"/{TN}:settings/item/detail/note", access_operations="create"),
      permit(path=f"/{TN}:settings", access_operations="create")],
     Change("create", item("a"), None, ITEM_A), item("a", "detail/note")),
    ("a deleted subtree needs delete on every node",
     [deny(path=f"/{TN}:settings/item/tag[.='t2']", access_operations="delete"),
      permit(path=f"/{TN}:settings", access_operations="delete")],
     Change("delete", item("a"), ITEM_A, None), item("a", "tag[.='t2']")),
    ("default-deny-all below a created entry",
     [permit(path=f"/{TN}:settings/item/id", access_operations="create")],
     Change("create", item("a"), None, {**ITEM_A, "detail": {"hidden": "h"}}), item("a", "detail/hidden")),
    ("an explicit rule overrides default-deny-all below",
     [permit(path=f"/{TN}:settings", access_operations="create")],
     Change("create", item("a"), None, {**ITEM_A, "detail": {"hidden": "h"}}), None),
    ("an augment's leaf inside a created entry",
     [deny(module_name=AUG, access_operations="create"), permit(access_operations="create")],
     Change("create", item("a"), None, {**ITEM_A, f"{AUG}:extra": "e"}), item("a", f"{AUG}:extra")),
    ("the same entry without the augment's leaf",
     [deny(module_name=AUG, access_operations="create"), permit(access_operations="create")],
     Change("create", item("a"), None, ITEM_A), None),
    ("a created container holding a list",
     [deny(path=item("b", "value"), access_operations="create"), permit(access_operations="create")],
     Change("create", f"/{TN}:settings", None, {"name": "x", "item": [ITEM_A, {"id": "b", "value": 2}]}),
     item("b", "value")),
])
def test_first_denied_write(schema, description, rules, change, denied_path) -> None:
    access = policy(schema, (["ops"], rules), write_default="permit").for_user("u", ["ops"])
    unrelated = Change("modify", f"/{TN}:settings/name", "x", "y")
    denied = access.first_denied_write([change])
    if denied_path is None:
        assert denied is None
        return
    assert denied is not None and denied.path == denied_path
    assert denied.op == change.op
    assert access.first_denied_write([change, unrelated]).path == denied_path  # the first one is reported


def test_first_denied_write_reports_the_first_change(schema) -> None:
    access = policy(schema, (["ops"], [permit(path=f"/{TN}:settings/name", access_operations="update")])
                    ).for_user("u", ["ops"])
    ok = Change("modify", f"/{TN}:settings/name", "x", "y")
    bad = Change("modify", item("a", "value"), "1", "2")
    assert access.first_denied_write([ok]) is None
    assert access.first_denied_write([ok, bad, ok]) is bad
    assert access.first_denied_write([]) is None


# ---------------------------------------------------------------------------- reading a real tree


TREE = {
    f"{TN}:settings": {
        "name": "s", "admin-only": "x",
        "item": [
            {"id": "a", "value": 1, "tag": ["t1", "t2"], "detail": {"note": "n", "hidden": "h"}, f"{AUG}:extra": "e"},
            {"id": "b", "value": 2},
        ],
    },
    f"{TN}:secrets": {"key": "k"},
}


@pytest.fixture(scope="module")
def tree(schema) -> DataTree:
    return DataTree.from_python(TREE, schema=schema)


READ_CASES = [
    ("defaults: default-deny-all nodes go", [], {}, {
        f"{TN}:settings": {"name": "s", "admin-only": "x", "item": [
            {"id": "a", "value": 1, "tag": ["t1", "t2"], "detail": {"note": "n"}, f"{AUG}:extra": "e"},
            {"id": "b", "value": 2}]}}),
    ("one entry denied by key", [deny(path=item("b"), access_operations="read")], {}, {
        f"{TN}:settings": {"name": "s", "admin-only": "x", "item": [
            {"id": "a", "value": 1, "tag": ["t1", "t2"], "detail": {"note": "n"}, f"{AUG}:extra": "e"}]}}),
    ("read-default deny: permitted leaves keep their ancestors and keys",
     [permit(path=f"/{TN}:settings/item/value", access_operations="read")], {"read_default": "deny"}, {
         f"{TN}:settings": {"item": [{"id": "a", "value": 1}, {"id": "b", "value": 2}]}}),
    ("one leaf-list value denied", [deny(path=f"/{TN}:settings/item/tag[.='t1']", access_operations="read")], {}, {
        f"{TN}:settings": {"name": "s", "admin-only": "x", "item": [
            {"id": "a", "value": 1, "tag": ["t2"], "detail": {"note": "n"}, f"{AUG}:extra": "e"},
            {"id": "b", "value": 2}]}}),
    ("an augment's nodes denied by module-name", [deny(module_name=AUG, access_operations="read")], {}, {
        f"{TN}:settings": {"name": "s", "admin-only": "x", "item": [
            {"id": "a", "value": 1, "tag": ["t1", "t2"], "detail": {"note": "n"}},
            {"id": "b", "value": 2}]}}),
    ("a default-deny-all node permitted by a rule", [permit(path=f"/{TN}:secrets", access_operations="read")],
     {"read_default": "deny"}, {f"{TN}:secrets": {"key": "k"}}),
    ("nothing readable", [deny(access_operations="read")], {}, {}),
    ("enable-nacm false shows everything", [], {"enable_nacm": False}, TREE),
]


@pytest.mark.parametrize("description,rules,settings,expected", READ_CASES, ids=[c[0] for c in READ_CASES])
def test_filter_read(schema, tree, monkeypatch, description, rules, settings, expected) -> None:
    access = policy(schema, *([(["ops"], rules)] if rules else []), **settings).for_user("u", ["ops"])
    before = tree.print("json")
    assert access.filter_read(tree).to_python() == expected
    assert tree.print("json") == before  # the input is left alone
    # The shortcut (whole subtrees kept or dropped at once) gives what a node-by-node walk gives.
    monkeypatch.setattr(UserAccess, "_uniform_below", lambda self, op, node, steps: False)
    assert access.filter_read(tree).to_python() == expected


# ---------------------------------------------------------------------------- notifications


@pytest.mark.parametrize("rules,settings,notification,expected", [
    ([], {}, "alarm", True),
    ([], {"read_default": "deny"}, "alarm", False),
    ([], {}, "audit", False),  # default-deny-all
    ([permit(notification_name="audit", access_operations="read")], {}, "audit", True),
    ([deny(module_name=TN, notification_name="*", access_operations="read")], {}, "alarm", False),
    ([deny(notification_name="alarm", access_operations="exec")], {}, "alarm", True),  # needs the read bit
    ([deny(access_operations="read")], {}, "alarm", False),  # no rule-type: matches notifications too
    ([deny(path=f"/{TN}:settings")], {}, "alarm", True),
    ([], {"enable_nacm": False}, "audit", True),
])
def test_may_notify(schema, rules, settings, notification, expected) -> None:
    access = policy(schema, *([(["ops"], rules)] if rules else []), **settings).for_user("u", ["ops"])
    assert access.may_notify(TN, notification) is expected


# ---------------------------------------------------------------------------- configuration input


def test_paths_from_xml_prefixes_survive_libyang(schema) -> None:
    """A client writes the rule path with its own XML prefix; running holds module names (JSON)."""
    xml = ('<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><rule-list><name>l</name><group>ops</group>'
           '<rule><name>r</name><path xmlns:x="urn:qstrata:test:nacm">/x:settings/x:item[x:id="b"]</path>'
           "<access-operations>read</access-operations><action>deny</action></rule></rule-list></nacm>")
    running = DataTree.parse(xml, "xml", schema=schema, config_only=True)
    config = running.to_python()
    assert config[NACM]["rule-list"][0]["rule"][0]["path"].startswith(f"/{TN}:settings/")
    access = NacmPolicy.from_tree(running).for_user("u", ["ops"])
    assert access.may_read(item("b", "value")) is False
    assert access.may_read(item("a", "value")) is True


def test_a_path_naming_no_node_is_reported_and_never_matches(schema) -> None:
    p = policy(schema, (["ops"], [deny(path=f"/{TN}:settings/nothing-here"), deny(path="/unknown:x")]),
               write_default="permit", validate=False)  # libyang refuses such paths in running
    assert len(p.problems) == 2 and "nothing-here" in p.problems[0]
    assert p.for_user("u", ["ops"]).may_write("update", f"/{TN}:settings/name") is True


# ---------------------------------------------------------------------------- the default policy


def test_default_policy_is_valid_configuration() -> None:
    schema = get_schema()
    tree = DataTree.from_python(DEFAULT_NACM, schema=schema, config_only=True)
    assert tree.to_python() == DEFAULT_NACM
    assert NacmPolicy.from_config(DEFAULT_NACM, schema).problems == ()


@pytest.mark.parametrize("config", [None, {}, {NACM: {}}, "implicit-defaults"])
def test_no_configured_nacm_means_the_default_policy(config) -> None:
    schema = get_schema()
    if config == "implicit-defaults":  # what an old running datastore gives: libyang's defaults only
        running = DataTree.from_python({"etsi-qkd-sdn-node:qkd_node": {"qkdn_id": "00000000-0000-0000-0000-00000000000a"}},
                                       schema=schema, config_only=True)
        policy_ = NacmPolicy.from_tree(running)
    else:
        policy_ = NacmPolicy.from_config(config, schema)
    reference = NacmPolicy.from_config(DEFAULT_NACM, schema)
    assert [rl.name for rl in policy_.rule_lists] == ["admin", "read-write", "read-only"]
    assert policy_.rule_lists == reference.rule_lists


# the built-in group rules qstrata had before RFC 8341 rule-lists (agents/datastore/nacm.py)
LEGACY_WRITE_GROUPS = frozenset({"admin", "read-write"})
LEGACY_READ_ONLY_RPCS = frozenset({
    "get", "get-config", "get-schema", "create-subscription", "close-session", "lock", "unlock",
    "discard-changes", "validate",
})


def _legacy_may_exec(group: str, rpc: str) -> bool:
    return group in LEGACY_WRITE_GROUPS or rpc in LEGACY_READ_ONLY_RPCS


def _every_rpc() -> list[tuple[str, str]]:
    return sorted(schema_index(get_schema()).rpcs)


@pytest.mark.parametrize("group", ["admin", "read-write", "read-only", "no-such-group"])
def test_default_policy_keeps_todays_behaviour(group) -> None:
    """The three groups behave as the built-in group rules did, except that read-write loses the
    operations RFC 8341 denies by default (kill-session, delete-config); a user in an unknown group
    gets RFC 8341's defaults (read, run operations, never write)."""
    schema = get_schema()
    access = NacmPolicy.from_config(None, schema).for_user("someone", [group])
    for module, rpc in _every_rpc():
        if group == "read-write" and (module, rpc) in {("ietf-netconf", "kill-session"),
                                                       ("ietf-netconf", "delete-config")}:
            expected = False
        elif group == "read-only" and (module, rpc) == ("ietf-netconf-nmda", "get-data"):
            expected = True  # a read operation; not served yet, so nobody could run it before
        elif group == "no-such-group":
            expected = (module, rpc) not in {("ietf-netconf", "kill-session"), ("ietf-netconf", "delete-config")}
        else:
            expected = _legacy_may_exec(group, rpc)
        assert access.may_exec(module, rpc) is expected, (group, module, rpc)
    writer = group in LEGACY_WRITE_GROUPS
    link = "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='0badc0de-0000-4000-8000-000000000001']"
    change = Change("create", link, None, {"qkdl_id": "0badc0de-0000-4000-8000-000000000001", "qkdl_enable": True})
    assert (access.first_denied_write([change]) is None) is writer
    assert access.may_read(link + "/qkdl_enable") is True
    assert access.may_read("/ietf-netconf-acm:nacm/enable-nacm") is (group == "admin")
    nacm_change = Change("modify", "/ietf-netconf-acm:nacm/read-default", "permit", "deny")
    assert (access.first_denied_write([nacm_change]) is None) is (group == "admin")


def test_default_policy_denies_every_default_deny_all_rpc_to_read_write() -> None:
    """If a module with a default-deny-all rpc is added, DEFAULT_NACM's read-write list must name it."""
    schema = get_schema()
    access = NacmPolicy.from_config(None, schema).for_user("someone", ["read-write"])
    marked = [key for key, node in schema_index(schema).rpcs.items() if node.nacm == "default-deny-all"]
    assert all(not access.may_exec(*key) for key in marked)


def test_admin_is_unrestricted_and_filter_is_a_copy() -> None:
    schema = get_schema()
    access = NacmPolicy.from_config(None, schema).for_user("admin", ["admin"])
    assert access.unrestricted
    tree = DataTree.from_python(DEFAULT_NACM, schema=schema, config_only=True)
    filtered = access.filter_read(tree)
    assert filtered is not tree and filtered.to_python() == DEFAULT_NACM
    read_only = NacmPolicy.from_config(None, schema).for_user("viewer", ["read-only"])
    assert not read_only.unrestricted
    assert read_only.filter_read(tree).to_python() == {}


# ---------------------------------------------------------------------------- counters


def test_counters_are_valid_nacm_state_and_wrap() -> None:
    counters = NacmCounters()
    counters.operation_denied()
    counters.data_write_denied()
    counters.data_write_denied()
    counters.notification_denied()
    state = counters.state()
    assert state == {NACM: {"denied-operations": 1, "denied-data-writes": 2, "denied-notifications": 1}}
    assert DataTree.from_python(state, schema=get_schema()).to_python() == state
    counters.denied_operations = 2**32 - 1
    counters.operation_denied()
    assert counters.denied_operations == 0
