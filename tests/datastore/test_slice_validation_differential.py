"""Differential test of the write path's slice validation (`Datastore.edit` with
`bindings/locality.py` planning and `DataTree.validate(..., replaced, guards)`).

The datastore validates most edits on a slice of running. The reference here is the slow, obvious
computation: apply the same operations to a whole copy of running and validate the whole copy
with libyang. For every edit the two must agree: the core accepts exactly when the reference
result is valid; an accepted edit leaves running equal to the reference result (libyang's diff:
values, entries, user order) and valid as a restart reads it (parsed afresh); a refused one leaves
running byte-identical and names a path the reference also finds wrong, or one that exists; after
each run, running read back from the journal is the running that was served. Edits are a fixed-seed pseudo-random mix over the modules an agent of
each kind loads (`KIND_MODULES`), seeded with the configuration `qstrata up` gives such agents
(links, interfaces, applications with sessions, KME routes naming links, SAEs, NACM rules;
memories, entanglement links and forwarding entries; switch ports and cross-connects), biased
towards what slices get wrong: deletes of referenced entries, changes of keys, leafrefs to missing
targets, `must`-violating values, `when`-dependent leaves, unique leaves, and multi-operation
edits that move entries. `yang/qstrata-test-slices.yang` adds one construct per rule of
`locality.py` the agents' modules lack (leafrefs in unions, with predicates, in leaf-lists and
nested lists, without require-instance; whens climbing out of a list; choices; min-elements).
A failure prints the seed and step to replay.

The named tests at the end are the disagreements this test found, kept as regressions.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import random
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from qstrata.agents.access.nacm import DEFAULT_NACM
from qstrata.agents.datastore.errors import DatastoreError, ErrorKind
from qstrata.agents.datastore.store import SYSTEM, Datastore
from qstrata.agents.devices.empty import KIND_MODULES
from qstrata.bindings.edit import EditOperation, apply_operation, operation_units
from qstrata.bindings.locality import schema_path_of
from qstrata.bindings.schema import Schema, get_schema
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

QKD = "etsi-qkd-sdn-node:qkd_node"
SS = "qstrata-ss:service-stratum"
QFS = "qstrata-qfs:qfs-node"
TYPES = "etsi-qkd-node-types"
NODE = "00000000-0000-4000-8000-00000000000a"
KME = "d1d1d1d1-0001-4000-8000-00000000000e"
LINKS = f"/{QKD}/qkd_links/qkd_link"
APPS = f"/{QKD}/qkd_applications/qkd_app"
IFACES = f"/{QKD}/qkd_interfaces/qkd_interface"
SESSIONS = f"/{SS}/kme/sessions/session"
ROUTES = f"/{SS}/kme/forwarding-table/route"
SAES = f"/{SS}/kme/saes/sae"
UNITS = f"/{SS}/service-units/service-unit"
MEMORIES = f"/{QFS}/memories/memory"
ELINKS = f"/{QFS}/entanglement-links/link"
FWD = f"/{QFS}/forwarding-table/entry"


def uid(rng: random.Random | int) -> str:
    n = rng if isinstance(rng, int) else rng.randrange(1, 48)
    return str(uuid.UUID(int=(0xC0FFEE << 96) | n))


def nest(path: str, entry: dict[str, Any]) -> dict[str, Any]:
    """JSON-IETF content holding `entry` as the list entry (or container) at schema `path`."""
    steps = path.strip("/").split("/")
    node: Any = [entry] if "[" not in steps[-1] else entry
    inner: Any = {steps[-1]: node}
    for step in reversed(steps[:-1]):
        inner = {step: inner}
    return inner


@dataclass
class Edit:
    """A labelled list of operations (the label is what a failure prints)."""

    label: str
    ops: list[EditOperation]


class Builder:
    """Edits on one schema: values built from JSON-IETF content or from a leaf path."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def value(self, content: dict[str, Any]) -> DataTree:
        return DataTree.from_python(content, schema=self.schema, validate=False)

    def entry(self, op: str, list_path: str, keys: dict[str, Any], entry: dict[str, Any]) -> EditOperation:
        """`op` (create/merge/replace) of the entry of `list_path` with `keys`; `entry` holds them."""
        path = list_path + "".join(f"[{k}='{v}']" for k, v in keys.items())
        return EditOperation(op, path, self.value(nest(list_path, {**keys, **entry})))  # type: ignore[arg-type]

    def leaf(self, op: str, path: str, value: str | None = None) -> EditOperation:
        if op in ("delete", "remove"):
            return EditOperation(op, path)  # type: ignore[arg-type]
        tree = DataTree(self.schema)
        tree.set(path, value)
        return EditOperation(op, path, tree)  # type: ignore[arg-type]

    @staticmethod
    def drop(op: str, path: str) -> EditOperation:
        return EditOperation(op, path)  # type: ignore[arg-type]


def keys_of(tree: DataTree, list_path: str, key: str) -> list[str]:
    return [n.value() for n in tree.find(f"{list_path}/{key}")]


# ---------------------------------------------------------------------- the oracle


@dataclass
class Tally:
    accepted: int = 0
    refused: int = 0
    sliced: int = 0
    edits: int = 0
    reordered: int = 0
    failures: list[str] = field(default_factory=list)


def slices(store: Datastore, ops: list[EditOperation]) -> bool:
    """Would the core validate this edit on a slice (the same test `_transaction` makes)?"""
    units = [u for op in ops for u in operation_units(op)]
    return bool(units) and all(store.locality.plan(schema_path_of(u.path), u.removes) is not None for u in units)


async def check(store: Datastore, edit: Edit, where: str, tally: Tally) -> None:
    """One edit through the core, compared with the whole-copy reference."""
    running = store.get_config("running")
    before = running.print("json")
    candidate = running.copy()
    reference: InvalidData | None = None
    try:
        for op in edit.ops:
            apply_operation(candidate, op)
        candidate.validate(config_only=True, keep_tops=running)
    except InvalidData as exc:
        reference = exc
    sliced = slices(store, edit.ops)
    try:
        await store.edit("running", edit.ops, SYSTEM)
        core: DatastoreError | None = None
    except DatastoreError as exc:
        core = exc
    tally.edits += 1
    tally.sliced += sliced
    after = store.get_config("running")
    what = f"{where} [{edit.label}] ({'slice' if sliced else 'whole'})"
    if core is None:
        tally.accepted += 1
        if reference is not None:
            tally.failures.append(f"{what}: core ACCEPTED, reference refused: {reference}")
            store.trees["running"] = DataTree.parse(before, "json", schema=store.schema, validate=False)  # go on from before
            return
        # libyang's diff: values, entries, and the order of ordered-by user lists (the order of
        # system-ordered lists is the server's: a slice installs an edited entry last)
        moved = candidate.diff(after)
        if moved:
            tally.failures.append(f"{what}: accepted, but running differs from the reference result: {moved}\n"
                                  + difference(after, candidate))
        elif after.print("json") != candidate.print("json"):
            tally.reordered += 1
        try:  # as a restart reads it: parsed afresh, nothing validation could quietly drop
            DataTree.parse(after.print("json"), "json", schema=store.schema, config_only=True)
        except InvalidData as exc:
            tally.failures.append(f"{what}: accepted, running no longer validates whole: {exc}")
        return
    tally.refused += 1
    if after.print("json") != before:
        tally.failures.append(f"{what}: refused ({core.message}), but running changed")
    if reference is None:
        tally.failures.append(f"{what}: core REFUSED ({core.path}: {core.message}), reference accepted")
        return
    if not plausible(core, reference, candidate, running):
        tally.failures.append(f"{what}: refused for an implausible path {core.path!r}: {core.message} "
                              f"(reference: {reference})")


def difference(running: DataTree, reference: DataTree) -> str:
    """The lines that differ between the two trees, pretty-printed."""
    ours = json.dumps(running.to_python(), indent=1, sort_keys=True).splitlines()
    theirs = json.dumps(reference.to_python(), indent=1, sort_keys=True).splitlines()
    lines = difflib.unified_diff(theirs, ours, "reference", "running", n=2, lineterm="")
    return "\n".join(list(lines)[:40])


def plausible(core: DatastoreError, reference: InvalidData, candidate: DataTree, running: DataTree) -> bool:
    """The refusal names a path the reference also names, or a node of the old or new tree."""
    if core.path is None:
        return False
    if core.path in {issue.path for issue in reference.issues}:
        return True
    try:
        return candidate.exists(core.path) or running.exists(core.path)
    except InvalidData:
        return False


def run_sequence(schema: Schema, seed_config: dict[str, Any], generate: Callable[[random.Random, DataTree], Edit],
                 seed: int, steps: int) -> Tally:
    """`steps` edits from `generate`, each checked; then running as a restart reads it back from
    the journal must be running (slices are journaled as their subtrees)."""
    initial = DataTree.from_python({**seed_config, **DEFAULT_NACM}, schema=schema, config_only=True)

    async def go(state: Path) -> Tally:
        store = Datastore(schema, state)
        store.load(initial)
        rng = random.Random(seed)
        tally = Tally()
        for step in range(steps):
            edit = generate(rng, store.get_config("running"))
            await check(store, edit, f"seed={seed} step={step}", tally)
            if len(tally.failures) >= MAX_FAILURES:
                break
        if not tally.failures:
            again = Datastore(schema, state)
            again.load(initial)
            lost = store.get_config("running").diff(again.get_config("running"))
            if lost:
                tally.failures.append(f"seed={seed}: running read back after a restart differs: {lost}")
        return tally

    with tempfile.TemporaryDirectory(prefix="slice-diff-") as state:
        return asyncio.run(go(Path(state)))


# ---------------------------------------------------------------------- QKD agent


def qkd_seed(links: int = 8) -> dict[str, Any]:
    """What `qstrata up` configures on a QKD agent hosting a KME: links to peers on interfaces,
    applications backed by links with token-bucket sessions, routes over links, SAEs."""
    return {
        QKD: {
            "qkdn_id": NODE,
            "qkd_interfaces": {"qkd_interface": [
                {"qkdi_id": i, "qkdi_att_point": {"device": "oxc-1", "port": i}} for i in range(1, 5)]},
            "qkd_links": {"qkd_link": [
                {"qkdl_id": uid(i), "qkdl_enable": True, "qkdl_type": f"{TYPES}:PHYS", "phys_wavelength": "1550",
                 "qkdl_local": {"qkdn_id": NODE, "qkdi_id": 1 + i % 4}, "qkdl_remote": {"qkdn_id": uid(100 + i)}}
                for i in range(1, links + 1)]},
            "qkd_applications": {"qkd_app": [
                {"app_id": uid(200 + i), "server_app_id": f"sae-{i}", "client_app_id": [f"sae-{i + 1}"],
                 "backing_qkdl_id": [uid(i)], "local_qkdn_id": NODE, "qstrata-ss:ss-session-id": uid(300 + i)}
                for i in range(1, 4)]},
        },
        SS: {"kme": {
            "kme-id": KME,
            "saes": {"sae": [{"sae-id": f"sae-{i}", "kme-id": KME if i % 2 else uid(400 + i)} for i in range(1, 5)]},
            "forwarding-table": {"route": [
                {"urn-prefix": f"urn:qkd:kme:{uid(400 + i)}", "next-hop-kme": uid(400 + i), "qkd-link": uid(i)}
                for i in range(1, 5)]},
            "sessions": {"session": [{"session-id": uid(300 + i), "rate": "80000", "burst": "65536"}
                                     for i in range(1, 5)]},
        }},
    }


def nacm_edit(b: Builder, rng: random.Random, tree: DataTree) -> Edit:
    """Every agent's NACM rules: rule-lists and rules are ordered-by user (RFC 8341 evaluates them
    in order), so the order an edit leaves them in is part of its result."""
    lists = keys_of(tree, "/ietf-netconf-acm:nacm/rule-list", "name")
    owner = rng.choice(lists + ["ops"])
    name = rng.choice(["r0", "r1", "permit-all-else", "deny-nacm"])
    path = f"/ietf-netconf-acm:nacm/rule-list[name='{owner}']/rule[name='{name}']"
    if rng.random() < 0.3:
        return Edit(f"delete rule {owner}/{name}", [b.drop(rng.choice(["delete", "remove"]), path)])
    if rng.random() < 0.3:
        return Edit(f"rule {owner}/{name} action", [b.leaf(rng.choice(["merge", "replace"]), path + "/action",
                                                           rng.choice(["permit", "deny"]))])
    rule = {"name": name, "module-name": "*", "access-operations": "*", "action": rng.choice(["permit", "deny"])}
    if rng.random() < 0.15:
        del rule["action"]
    return Edit(f"rule {owner}/{name}", [b.entry(rng.choice(["merge", "replace", "merge"]),
                                                 "/ietf-netconf-acm:nacm/rule-list", {"name": owner},
                                                 {"group": [owner], "rule": [rule]})])


def qkd_edits(schema: Schema) -> Callable[[random.Random, DataTree], Edit]:
    b = Builder(schema)

    def link(i: str, rng: random.Random) -> dict[str, Any]:
        if rng.random() < 0.2:
            return {"qkdl_type": f"{TYPES}:VIRT", "virt_next_hop": [uid(rng)], "virt_bandwidth": 1000}
        out: dict[str, Any] = {"qkdl_type": f"{TYPES}:PHYS", "qkdl_enable": rng.random() < 0.8,
                               "qkdl_local": {"qkdn_id": NODE, "qkdi_id": rng.randrange(1, 6)}}
        if rng.random() < 0.7:
            out["phys_wavelength"] = rng.choice(["1310", "1550"])
        return out

    def one(rng: random.Random, tree: DataTree) -> Edit:
        links = keys_of(tree, LINKS, "qkdl_id")
        sessions = keys_of(tree, SESSIONS, "session-id")
        routes = keys_of(tree, ROUTES, "urn-prefix")
        apps = keys_of(tree, APPS, "app_id")
        saes = keys_of(tree, SAES, "sae-id")
        named = [n.value() for n in tree.find(f"{ROUTES}/qkd-link")]
        used = [n.value() for n in tree.find(f"{APPS}/qstrata-ss:ss-session-id")]

        def pick(pool: list[str]) -> str:
            return rng.choice(pool) if pool and rng.random() < 0.85 else uid(rng)

        kind = rng.randrange(24)
        if kind == 0:
            i = pick(links)
            return Edit(f"create link {i}", [b.entry("create", LINKS, {"qkdl_id": i}, link(i, rng))])
        if kind == 1:
            i = pick(links)
            return Edit(f"merge link {i}", [b.entry("merge", LINKS, {"qkdl_id": i}, link(i, rng))])
        if kind == 2:
            i = pick(links)
            return Edit(f"replace link {i}", [b.entry("replace", LINKS, {"qkdl_id": i}, link(i, rng))])
        if kind in (3, 4):  # deletes of links, most of them named by a route
            i = rng.choice(named) if named and rng.random() < 0.6 else pick(links)
            op = rng.choice(["delete", "remove"])
            return Edit(f"{op} link {i}", [b.drop(op, f"{LINKS}[qkdl_id='{i}']")])
        if kind == 5:  # a link's key changes: the old one goes, a new one comes, a route may follow
            if not links:
                return Edit("empty", [b.drop("remove", f"{LINKS}[qkdl_id='{uid(rng)}']")])
            old, new = rng.choice(links), uid(rng)
            ops = [b.drop("delete", f"{LINKS}[qkdl_id='{old}']"),
                   b.entry("create" if new not in links else "merge", LINKS, {"qkdl_id": new}, link(new, rng))]
            for r in routes:
                if tree.exists(f"{ROUTES}[urn-prefix='{r}']/qkd-link") and rng.random() < 0.7 and \
                        tree.find(f"{ROUTES}[urn-prefix='{r}']/qkd-link")[0].value() == old:
                    ops.append(b.leaf("merge", f"{ROUTES}[urn-prefix='{r}']/qkd-link", new))
            rng.shuffle(ops)
            return Edit(f"rekey link {old}->{new}", ops)
        if kind == 6:
            r = f"urn:qkd:kme:{uid(rng)}"
            hop = KME if rng.random() < 0.15 else uid(rng)
            entry: dict[str, Any] = {"next-hop-kme": hop}
            if rng.random() < 0.8:
                entry["qkd-link"] = pick(links)
            op = rng.choice(["create", "merge", "replace"])
            return Edit(f"{op} route {r} via {entry.get('qkd-link')}", [b.entry(op, ROUTES, {"urn-prefix": r}, entry)])
        if kind == 7 and routes:
            r = rng.choice(routes)
            if rng.random() < 0.5:
                return Edit(f"route {r} qkd-link", [b.leaf(rng.choice(["merge", "replace", "create"]),
                                                           f"{ROUTES}[urn-prefix='{r}']/qkd-link", pick(links))])
            return Edit(f"drop route {r}", [b.drop(rng.choice(["delete", "remove"]),
                                                   f"{ROUTES}[urn-prefix='{r}']" + rng.choice(["", "/qkd-link"]))])
        if kind == 8:
            s = pick(sessions)
            entry = {"rate": str(rng.randrange(0, 100000))}
            if rng.random() < 0.85:
                entry["burst"] = str(rng.randrange(0, 70000))
            op = rng.choice(["create", "merge", "replace"])
            return Edit(f"{op} session {s}", [b.entry(op, SESSIONS, {"session-id": s}, entry)])
        if kind in (9, 10):
            s = rng.choice(used) if used and rng.random() < 0.6 else pick(sessions)
            return Edit(f"delete session {s}", [b.drop(rng.choice(["delete", "remove"]), f"{SESSIONS}[session-id='{s}']")])
        if kind == 11:
            a = pick(apps)
            entry = {"server_app_id": f"sae-{rng.randrange(9)}", "backing_qkdl_id": [pick(links)]}
            if rng.random() < 0.8:
                entry["qstrata-ss:ss-session-id"] = pick(sessions)
            op = rng.choice(["create", "merge", "replace"])
            return Edit(f"{op} app {a} session {entry.get('qstrata-ss:ss-session-id')}",
                        [b.entry(op, APPS, {"app_id": a}, entry)])
        if kind == 12 and apps:
            a = rng.choice(apps)
            leaf = rng.choice(["qstrata-ss:ss-session-id", "app_priority", "app_qos/max_bandwidth"])
            op = rng.choice(["merge", "replace", "create", "delete", "remove"])
            value = pick(sessions) if leaf.endswith("session-id") else str(rng.randrange(1, 100))
            return Edit(f"{op} app {a} {leaf}={value}", [b.leaf(op, f"{APPS}[app_id='{a}']/{leaf}", value)])
        if kind == 13:
            a = pick(apps)
            return Edit(f"delete app {a}", [b.drop(rng.choice(["delete", "remove"]), f"{APPS}[app_id='{a}']")])
        if kind == 14:  # a session and an application naming it in one edit, in either order
            s, a = uid(rng), pick(apps)
            ops = [b.entry("merge", SESSIONS, {"session-id": s}, {"rate": "10", "burst": "256"}),
                   b.entry("merge", APPS, {"app_id": a}, {"qstrata-ss:ss-session-id": s})]
            if rng.random() < 0.3 and sessions:  # ...and the old session goes
                ops.append(b.drop("remove", f"{SESSIONS}[session-id='{rng.choice(sessions)}']"))
            rng.shuffle(ops)
            return Edit(f"session {s} for app {a}", ops)
        if kind == 15:
            s = pick(saes) if rng.random() < 0.5 else f"sae-{rng.randrange(12)}"
            entry = {"kme-id": rng.choice([KME, uid(rng)])} if rng.random() < 0.85 else {"description": "x"}
            op = rng.choice(["create", "merge", "replace", "delete", "remove"])
            if op in ("delete", "remove"):
                return Edit(f"{op} sae {s}", [b.drop(op, f"{SAES}[sae-id='{s}']")])
            return Edit(f"{op} sae {s}", [b.entry(op, SAES, {"sae-id": s}, entry)])
        if kind == 16:  # the KME's own id: routes must not hop to it
            hops = [n.value() for n in tree.find(f"{ROUTES}/next-hop-kme")]
            new = rng.choice(hops) if hops and rng.random() < 0.4 else uid(rng)
            return Edit(f"kme-id {new}", [b.leaf(rng.choice(["merge", "replace"]), f"/{SS}/kme/kme-id", new)])
        if kind == 17:
            leaf = rng.choice(["min-key-size", "max-key-size", "default-key-size"])
            value = str(rng.choice([8, 64, 100, 256, 8192, 16384]))
            op = rng.choice(["merge", "replace", "delete", "remove"])
            return Edit(f"{op} limits/{leaf}={value}", [b.leaf(op, f"/{SS}/kme/limits/{leaf}", value)])
        if kind == 18:  # the node's own uuid, or its mandatory removal
            op = rng.choice(["merge", "replace", "merge", "delete"])
            return Edit(f"{op} qkdn_id", [b.leaf(op, f"/{QKD}/qkdn_id", uid(rng))])
        if kind == 19 and links:  # when-dependent leaves of a link
            i = rng.choice(links)
            leaf, value = rng.choice([("qkdl_type", f"{TYPES}:VIRT"), ("qkdl_type", f"{TYPES}:PHYS"),
                                      ("phys_wavelength", "1310"), ("virt_bandwidth", "5"), ("qkdl_enable", "false")])
            op = rng.choice(["merge", "replace", "create", "delete", "remove"])
            return Edit(f"{op} link {i} {leaf}={value}", [b.leaf(op, f"{LINKS}[qkdl_id='{i}']/{leaf}", value)])
        if kind == 20:
            i = rng.randrange(1, 7)
            op = rng.choice(["create", "merge", "delete", "remove"])
            if op in ("delete", "remove"):
                return Edit(f"{op} interface {i}", [b.drop(op, f"{IFACES}[qkdi_id='{i}']")])
            return Edit(f"{op} interface {i}", [b.entry(op, IFACES, {"qkdi_id": i}, {"qkdi_model": "m"})])
        if kind == 21:
            return nacm_edit(b, rng, tree)
        if kind == 22:  # several unrelated units at once
            ops = []
            for _ in range(rng.randrange(2, 5)):
                ops.extend(one(rng, tree).ops)
            return Edit("multi", ops)
        # a referenced entry goes while its referrer is re-pointed (or not) in the same edit
        if named:
            gone = rng.choice(named)
            ops = [b.drop("delete", f"{LINKS}[qkdl_id='{gone}']")]
            for r in routes:
                path = f"{ROUTES}[urn-prefix='{r}']/qkd-link"
                if tree.exists(path) and tree.find(path)[0].value() == gone and rng.random() < 0.8:
                    ops.append(rng.choice([b.drop("delete", path),
                                           b.leaf("merge", path, rng.choice([x for x in links if x != gone] or [gone]))]))
            rng.shuffle(ops)
            return Edit(f"delete named link {gone} and re-point", ops)
        return Edit("noop", [b.drop("remove", f"{LINKS}[qkdl_id='{uid(rng)}']")])

    return one


# ---------------------------------------------------------------------- memory agent


def memory_seed() -> dict[str, Any]:
    return {
        QFS: {
            "uuid": NODE,
            "memories": {"memory": [
                {"memory-id": f"mem{i}", "technology": "qstrata-qfs:NV-CENTRE", "capacity": 8, "t1": "1000",
                 "t2": "1500"} for i in range(3)]},
            "entanglement-links": {"link": [
                {"link-id": uid(i), "urn": f"urn:qstrata:link:l{i}", "local-memory": f"mem{i % 3}",
                 "remote-node": uid(100 + i), "generation-scheme": "qstrata-qfs:SINGLE-CLICK", "attenuation": "3.00"}
                for i in range(1, 5)]},
            "forwarding-table": {"entry": [
                {"destination": uid(100 + i), "next-hop-node": uid(100 + i), "next-hop-link": uid(i)}
                for i in range(1, 4)]},
        },
        SS: {"service-units": {"service-unit": [
            {"unit-id": uid(500 + i), "source-urn": f"urn:qkd:a:s{i}", "destination-urn": f"urn:qkd:b:d{i}",
             "lifecycle-urn": "urn:qkd:lifecycle?=size=2&valid-until=1795515660&fidelity=0.9",
             "kind": "qstrata-ss:ENTANGLED-STATE"} for i in range(1, 3)]}},
    }


def memory_edits(schema: Schema) -> Callable[[random.Random, DataTree], Edit]:
    b = Builder(schema)

    def one(rng: random.Random, tree: DataTree) -> Edit:
        memories = keys_of(tree, MEMORIES, "memory-id")
        links = keys_of(tree, ELINKS, "link-id")
        entries = keys_of(tree, FWD, "destination")
        units = keys_of(tree, UNITS, "unit-id")

        def pick(pool: list[str], fresh: Callable[[], str]) -> str:
            return rng.choice(pool) if pool and rng.random() < 0.85 else fresh()

        kind = rng.randrange(13)
        if kind == 0:
            m = pick(memories, lambda: f"mem{rng.randrange(6)}")
            op = rng.choice(["create", "merge", "replace", "delete", "remove", "delete"])
            if op in ("delete", "remove"):
                return Edit(f"{op} memory {m}", [b.drop(op, f"{MEMORIES}[memory-id='{m}']")])
            t1 = rng.choice([500, 1000])
            entry = {"technology": "qstrata-qfs:TRAPPED-ION", "capacity": rng.randrange(1, 9), "t1": str(t1),
                     "t2": str(rng.choice([400, 1500, 2500]))}
            return Edit(f"{op} memory {m}", [b.entry(op, MEMORIES, {"memory-id": m}, entry)])
        if kind in (1, 2):
            i = pick(links, lambda: uid(rng))
            op = rng.choice(["create", "merge", "replace", "delete", "remove"])
            if op in ("delete", "remove"):
                return Edit(f"{op} elink {i}", [b.drop(op, f"{ELINKS}[link-id='{i}']")])
            entry = {"urn": f"urn:qstrata:link:l{rng.randrange(1, 8)}",
                     "local-memory": pick(memories, lambda: f"mem{rng.randrange(6)}"),
                     "remote-node": rng.choice([NODE, uid(rng), uid(rng)]), "generation-scheme": "qstrata-qfs:DLCZ"}
            if rng.random() < 0.1:
                del entry["local-memory"]
            return Edit(f"{op} elink {i} {entry['urn']}", [b.entry(op, ELINKS, {"link-id": i}, entry)])
        if kind in (3, 4) and links:  # one leaf of an entanglement link, by its own path
            i = rng.choice(links)
            leaf, value = rng.choice([("urn", f"urn:qstrata:link:l{rng.randrange(1, 8)}"), ("length", "12.500"),
                                      ("attenuation", "4.00"), ("remote-memory", "far"),
                                      ("local-memory", pick(memories, lambda: "nomem")),
                                      ("remote-node", rng.choice([NODE, uid(rng)]))])
            op = rng.choice(["merge", "replace", "create", "delete", "remove"])
            return Edit(f"{op} elink {i} {leaf}={value}", [b.leaf(op, f"{ELINKS}[link-id='{i}']/{leaf}", value)])
        if kind == 5:
            d = pick(entries, lambda: uid(rng))
            op = rng.choice(["create", "merge", "replace", "delete", "remove"])
            if op in ("delete", "remove"):
                return Edit(f"{op} fwd {d}", [b.drop(op, f"{FWD}[destination='{d}']")])
            entry: dict[str, Any] = {}
            if rng.random() < 0.8:
                entry["next-hop-link"] = pick(links, lambda: uid(rng))
            if rng.random() < 0.7:
                entry["next-hop-node"] = uid(rng) if rng.random() < 0.5 else uid(100 + rng.randrange(1, 5))
            return Edit(f"{op} fwd {d}", [b.entry(op, FWD, {"destination": d}, entry)])
        if kind == 6 and memories:  # a memory's T1/T2 (must t2 <= 2 t1)
            m = rng.choice(memories)
            leaf = rng.choice(["t1", "t2", "capacity", "occupancy"])
            op = rng.choice(["merge", "replace", "delete", "remove"])
            return Edit(f"{op} memory {m} {leaf}", [b.leaf(op, f"{MEMORIES}[memory-id='{m}']/{leaf}",
                                                           str(rng.choice([1, 200, 1000, 3000])))])
        if kind == 7:
            u = pick(units, lambda: uid(rng))
            op = rng.choice(["create", "merge", "replace", "delete", "remove"])
            if op in ("delete", "remove"):
                return Edit(f"{op} unit {u}", [b.drop(op, f"{UNITS}[unit-id='{u}']")])
            n = rng.randrange(1, 4)
            entry = {"source-urn": f"urn:qkd:a:s{n}", "destination-urn": rng.choice([f"urn:qkd:b:d{n}", f"urn:qkd:a:s{n}"]),
                     "lifecycle-urn": "urn:qkd:lifecycle?=size=2&valid-until=1795515660" +
                     rng.choice(["&fidelity=0.9", ""]),
                     "kind": "qstrata-ss:ENTANGLED-STATE"}
            return Edit(f"{op} unit {u} s{n}", [b.entry(op, UNITS, {"unit-id": u}, entry)])
        if kind == 8:  # the node's uuid: links must not end at it
            value = rng.choice([uid(100 + rng.randrange(1, 5)), uid(rng), NODE])
            return Edit(f"uuid {value}", [b.leaf(rng.choice(["merge", "replace"]), f"/{QFS}/uuid", value)])
        if kind == 9 and memories and links:  # a memory renamed: the links on it follow, or not
            old, new = rng.choice(memories), f"mem{rng.randrange(6, 9)}"
            ops = [b.drop("delete", f"{MEMORIES}[memory-id='{old}']"),
                   b.entry("merge", MEMORIES, {"memory-id": new}, {"technology": "qstrata-qfs:NV-CENTRE",
                                                                     "capacity": 2})]
            for i in links:
                if tree.find(f"{ELINKS}[link-id='{i}']/local-memory")[0].value() == old and rng.random() < 0.8:
                    ops.append(b.leaf("merge", f"{ELINKS}[link-id='{i}']/local-memory", new))
            rng.shuffle(ops)
            return Edit(f"rename memory {old}->{new}", ops)
        if kind == 11:
            return nacm_edit(b, rng, tree)
        if kind == 10:
            ops = []
            for _ in range(rng.randrange(2, 4)):
                ops.extend(one(rng, tree).ops)
            return Edit("multi", ops)
        return Edit("noop", [b.drop("remove", f"{UNITS}[unit-id='{uid(rng)}']")])

    return one


# ---------------------------------------------------------------------- switch agent


OPSW = "optical-switch"


def switch_seed(ports: int = 8) -> dict[str, Any]:
    """An 8-port switch as `qstrata up` configures one: ports, a cross-connect per QKD path."""
    return {
        f"{OPSW}:port-config": {"port": [{"port-id": i, "label": f"p{i}"} for i in range(1, ports + 1)]},
        f"{OPSW}:cross-connects": {"pair": [{"ingress": i, "egress": i + 1} for i in range(1, ports, 2)]},
        f"{OPSW}:voa": {"port": [{"port-id": 1, "atten-mode": "VOA_MODE_ABSOLUTE", "atten-level": "3.00"}]},
        f"{OPSW}:opm-config": {"port": [{"port-id": i, "wavelength": "1550.00"} for i in range(1, 3)]},
    }


def switch_edits(schema: Schema) -> Callable[[random.Random, DataTree], Edit]:
    b = Builder(schema)
    lists = {"port-config": "label", "opm-config": "wavelength", "opm-alarm-config": "alarm-clear-holdoff"}
    values = {"label": "x", "wavelength": "1310.00", "alarm-clear-holdoff": "5"}

    def one(rng: random.Random, tree: DataTree) -> Edit:
        kind = rng.randrange(8)
        port = rng.randrange(1, 11)
        if kind == 7:
            return nacm_edit(b, rng, tree)
        if kind == 0:
            op = rng.choice(["create", "merge", "replace", "delete", "remove"])
            path = f"/{OPSW}:cross-connects/pair"
            if op in ("delete", "remove"):
                return Edit(f"{op} pair {port}", [b.drop(op, f"{path}[ingress='{port}']")])
            entry = {"egress": rng.randrange(1, 11)} if rng.random() < 0.85 else {}
            return Edit(f"{op} pair {port}", [b.entry(op, path, {"ingress": port}, entry)])
        if kind == 1:  # VOA level only in the modes that have one
            mode = rng.choice(["VOA_MODE_ABSOLUTE", "VOA_MODE_RELATIVE", "VOA_MODE_NONE"]) \
                if rng.random() < 0.9 else None
            entry: dict[str, Any] = {} if mode is None else {"atten-mode": mode}
            if rng.random() < 0.6:
                entry["atten-level"] = "2.50"
            op = rng.choice(["merge", "replace", "create"])
            return Edit(f"{op} voa {port} {entry}", [b.entry(op, f"/{OPSW}:voa/port", {"port-id": port}, entry)])
        if kind == 2:
            leaf = rng.choice(["atten-mode", "atten-level"])
            value = "VOA_MODE_NONE" if leaf == "atten-mode" else "1.00"
            op = rng.choice(["merge", "replace", "delete", "remove"])
            return Edit(f"{op} voa {port} {leaf}", [b.leaf(op, f"/{OPSW}:voa/port[port-id='{port}']/{leaf}", value)])
        if kind == 3:  # an entry moved from one list to another in one edit
            src, dst = rng.sample(sorted(lists), 2)
            ops = [b.drop(rng.choice(["delete", "remove"]), f"/{OPSW}:{src}/port[port-id='{port}']"),
                   b.entry("merge", f"/{OPSW}:{dst}/port", {"port-id": port},
                           {lists[dst]: values[lists[dst]] if dst != "opm-alarm-config" else 5})]
            return Edit(f"move port {port} {src}->{dst}", ops)
        if kind == 4:
            name = f"u{rng.randrange(3)}"
            entry = {"type": rng.choice(["LOCAL_USER", "RADIUS_USER"])} if rng.random() < 0.85 else {}
            if rng.random() < 0.5:
                entry["password"] = "secret"
            op = rng.choice(["create", "merge", "replace", "delete"])
            path = f"/{OPSW}:system-config/user"
            if op == "delete":
                return Edit(f"delete user {name}", [b.drop(op, f"{path}[name='{name}']")])
            return Edit(f"{op} user {name} {entry}", [b.entry(op, path, {"name": name}, entry)])
        if kind == 5:
            op = rng.choice(["merge", "replace", "delete", "remove", "create"])
            lst = rng.choice(sorted(lists))
            return Edit(f"{op} {lst} {port}", [b.leaf(op, f"/{OPSW}:{lst}/port[port-id='{port}']/{lists[lst]}",
                                                      values[lists[lst]])])
        ops = []
        for _ in range(rng.randrange(2, 4)):
            ops.extend(one(rng, tree).ops)
        return Edit("multi", ops)

    return one


# ---------------------------------------------------------------------- every locality rule


CONSTRUCTS = "qstrata-test-slices"
CONSTRUCTS_DIR = Path(__file__).parent / "yang"
TARGETS = f"/{CONSTRUCTS}:targets"
REFS = f"/{CONSTRUCTS}:refs"


def constructs_seed() -> dict[str, Any]:
    m = CONSTRUCTS
    return {
        f"{m}:targets": {
            "target": [{"name": n, "label": f"L-{n}"} for n in ("gate", "gate2", "t1", "t2", "t3")],
            "uniq": [{"id": 1, "tag": "a"}, {"id": 2, "tag": "b"}],
            "outer": [{"o": "o1", "inner": [{"i": "i1"}, {"i": "i2"}]}, {"o": "o2", "inner": [{"i": "i1"}]}],
        },
        f"{m}:limits": {"bounded": [{"id": 1}, {"id": 2}]},
        f"{m}:refs": {
            "by-union": [{"id": 1, "ref": "t1"}, {"id": 2, "ref": "none"}],
            "by-predicate": [{"id": 1, "outer": "o1", "inner": "i2"}],
            "by-list": [{"id": 1, "names": ["t1", "t2"]}],
            "loose": [{"id": 1, "ref": "ghost"}],
            "to-label": [{"id": 1, "ref": "L-t1"}],
            "plain": [{"id": 1, "ref": "t1"}, {"id": 2, "ref": "t3"}],
            "nested": [{"id": 1, "sub": [{"s": 1, "ref": "t2"}]}],
            "to-inner": [{"id": 1, "ref": "i2"}],
        },
        f"{m}:conditions": {"gated": "g", "counted": 3},
        f"{m}:climb": {"climbing": [{"id": 1, "w": "x"}]},
        f"{m}:choices": {"choosy": [{"id": 1, "a1": "a"}, {"id": 2, "b1": "b"}]},
    }


def constructs_edits(schema: Schema) -> Callable[[random.Random, DataTree], Edit]:
    b = Builder(schema)
    names = ["gate", "gate2", "t1", "t2", "t3", "t4", "ghost"]
    refs = {"by-union": "ref", "plain": "ref", "loose": "ref", "to-label": "ref", "to-inner": "ref",
            "by-predicate": "inner", "by-list": "names"}

    def one(rng: random.Random, tree: DataTree) -> Edit:
        kind = rng.randrange(14)
        n = rng.choice(names)
        k = rng.randrange(1, 4)
        if kind in (0, 1):  # targets come and go, and change the label a leafref names
            op = rng.choice(["create", "merge", "replace", "delete", "remove", "delete"])
            if op in ("delete", "remove"):
                return Edit(f"{op} target {n}", [b.drop(op, f"{TARGETS}/target[name='{n}']")])
            return Edit(f"{op} target {n}", [b.entry(op, f"{TARGETS}/target", {"name": n},
                                                     {"label": rng.choice([f"L-{n}", "L-x"])})])
        if kind == 2:
            leaf = f"{TARGETS}/target[name='{n}']/label"
            op = rng.choice(["merge", "replace", "delete", "remove"])
            return Edit(f"{op} label of {n}", [b.leaf(op, leaf, rng.choice(["L-t1", "L-y"]))])
        if kind == 3:  # min-elements 1, max-elements 3
            op = rng.choice(["create", "merge", "delete", "remove"])
            path = f"/{CONSTRUCTS}:limits/bounded[id='{k}']" + ("/id" if rng.random() < 0.1 else "")
            if op in ("delete", "remove"):
                return Edit(f"{op} {path}", [b.drop(op, path)])
            ops = [b.entry(op, f"/{CONSTRUCTS}:limits/bounded", {"id": i}, {}) for i in range(k, k + rng.randrange(1, 3))]
            return Edit(f"{op} bounded {k}..", ops)
        if kind == 4:  # unique tag
            op = rng.choice(["create", "merge", "replace", "delete"])
            if op == "delete":
                return Edit(f"delete uniq {k}", [b.drop(op, f"{TARGETS}/uniq[id='{k}']")])
            if rng.random() < 0.5:
                return Edit(f"{op} uniq {k} tag", [b.leaf(op, f"{TARGETS}/uniq[id='{k}']/tag", rng.choice("abc"))])
            return Edit(f"{op} uniq {k}", [b.entry(op, f"{TARGETS}/uniq", {"id": k}, {"tag": rng.choice("abc")})])
        if kind == 5:  # nested lists a predicate and a path name
            o, i = rng.choice(["o1", "o2", "o3"]), rng.choice(["i1", "i2", "i3"])
            op = rng.choice(["create", "merge", "delete", "remove"])
            path = f"{TARGETS}/outer[o='{o}']" + (f"/inner[i='{i}']" if rng.random() < 0.7 else "")
            if op in ("delete", "remove"):
                return Edit(f"{op} {path}", [b.drop(op, path)])
            return Edit(f"{op} {o}/{i}", [b.entry(op, f"{TARGETS}/outer", {"o": o}, {"inner": [{"i": i}]})])
        if kind in (6, 7, 8):  # the referring lists
            lst = rng.choice(sorted(refs))
            leaf = refs[lst]
            value: Any = rng.choice(names + ["none", "L-t1", "L-x", "i1", "i2", "i3"])
            entry: dict[str, Any] = {leaf: [value] if leaf == "names" else value}
            if lst == "by-predicate":
                entry["outer"] = rng.choice(["o1", "o2", "o3"])
            op = rng.choice(["create", "merge", "replace", "delete", "remove", "merge"])
            if op in ("delete", "remove"):
                return Edit(f"{op} {lst} {k}", [b.drop(op, f"{REFS}/{lst}[id='{k}']")])
            if rng.random() < 0.3 and leaf != "names":
                return Edit(f"{op} {lst} {k} {leaf}={value}", [b.leaf(op, f"{REFS}/{lst}[id='{k}']/{leaf}", value)])
            return Edit(f"{op} {lst} {k} {entry}", [b.entry(op, f"{REFS}/{lst}", {"id": k}, entry)])
        if kind == 9:  # a leafref in a list in a list
            op = rng.choice(["create", "merge", "replace", "delete"])
            path = f"{REFS}/nested[id='{k}']/sub[s='{k}']"
            if op == "delete":
                return Edit(f"delete {path}", [b.drop(op, path)])
            return Edit(f"{op} nested {k} -> {n}", [b.entry(op, f"{REFS}/nested", {"id": k}, {"sub": [{"s": k, "ref": n}]})])
        if kind == 10:  # when and must over the targets
            if rng.random() < 0.5:
                op = rng.choice(["merge", "replace", "delete", "remove"])
                return Edit(f"{op} gated", [b.leaf(op, f"/{CONSTRUCTS}:conditions/gated", "g")])
            op = rng.choice(["merge", "replace", "remove"])
            return Edit(f"{op} counted", [b.leaf(op, f"/{CONSTRUCTS}:conditions/counted", str(rng.randrange(1, 9)))])
        if kind == 11:  # a when climbing out of its list into the targets
            op = rng.choice(["create", "merge", "replace", "delete"])
            if op == "delete":
                return Edit(f"delete climbing {k}", [b.drop(op, f"/{CONSTRUCTS}:climb/climbing[id='{k}']")])
            return Edit(f"{op} climbing {k}", [b.entry(op, f"/{CONSTRUCTS}:climb/climbing", {"id": k}, {"w": "y"})])
        if kind == 12:  # choices: a mandatory choice, a mandatory leaf in a case, a default case
            entry = dict(rng.sample([("a1", "a"), ("a2", "a"), ("b1", "b"), ("f1", "f"), ("p", "q")], rng.randrange(0, 3)))
            if "a1" in entry and "b1" in entry:
                del entry["b1"]
            op = rng.choice(["create", "merge", "replace"])
            if rng.random() < 0.3:
                leaf = rng.choice(["a1", "a2", "b1", "f1", "p"])
                op = rng.choice(["merge", "replace", "delete", "remove"])
                return Edit(f"{op} choosy {k} {leaf}", [b.leaf(op, f"/{CONSTRUCTS}:choices/choosy[id='{k}']/{leaf}", "v")])
            return Edit(f"{op} choosy {k} {entry}", [b.entry(op, f"/{CONSTRUCTS}:choices/choosy", {"id": k}, entry)])
        ops = []
        for _ in range(rng.randrange(2, 4)):
            ops.extend(one(rng, tree).ops)
        return Edit("multi", ops)

    return one


# ---------------------------------------------------------------------- the runs


KINDS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[Schema], Callable[[random.Random, DataTree], Edit]]]] = {
    "qkd": (qkd_seed, qkd_edits),
    "memory": (memory_seed, memory_edits),
    "switch": (switch_seed, switch_edits),
}
SEEDS = (1, 2, 3)
STEPS = 80
MIN_SLICED = {"qkd": STEPS // 2, "switch": STEPS // 2, "memory": 2}
"""Edits each run must validate on a slice. A memory agent's quantum forwarding stratum is all
`must`s and leafrefs that slices cannot check: its edits are validated whole, but for NACM."""
MAX_FAILURES = 5


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("seed", SEEDS)
def test_slice_verdicts_match_whole_tree_validation(kind: str, seed: int) -> None:
    schema = get_schema(KIND_MODULES[kind])
    seed_config, edits = KINDS[kind]
    tally = run_sequence(schema, seed_config(), edits(schema), seed, STEPS)
    assert not tally.failures, f"{kind} seed={seed}: {len(tally.failures)} disagreements:\n" + "\n".join(tally.failures)
    # the run means something only if both verdicts and the slice path were exercised
    assert tally.accepted >= STEPS // 5 and tally.refused >= STEPS // 10, tally
    assert tally.sliced >= MIN_SLICED[kind], tally


# ---------------------------------------------------------------------- disagreements found, kept


def single(schema: Schema, seed_config: dict[str, Any], *edits: Edit) -> tuple[Datastore, Tally]:
    """Run `edits` through the oracle from `seed_config`; the store is returned for more checks."""
    async def go() -> tuple[Datastore, Tally]:
        store = Datastore(schema)
        store.load(DataTree.from_python({**seed_config, **DEFAULT_NACM}, schema=schema, config_only=True))
        tally = Tally()
        for n, edit in enumerate(edits):
            await check(store, edit, f"edit {n}", tally)
        return store, tally
    return asyncio.run(go())


def test_a_leaf_of_an_entry_holding_a_leafref_is_edited_on_its_own() -> None:
    """The slice of a leaf holds its entry's other leaves: a leafref among them (an entanglement
    link's local-memory, an application's session) was validated without its target and a valid
    edit refused."""
    memory = get_schema(KIND_MODULES["memory"])
    b = Builder(memory)
    link = f"{ELINKS}[link-id='{uid(1)}']"
    _, tally = single(memory, memory_seed(), Edit("length", [b.leaf("replace", f"{link}/length", "12.500")]),
                      Edit("remote-memory", [b.leaf("merge", f"{link}/remote-memory", "far")]))
    assert tally.accepted == 2 and not tally.failures, tally.failures
    qkd = get_schema(KIND_MODULES["qkd"])
    b = Builder(qkd)
    _, tally = single(qkd, qkd_seed(), Edit("priority", [b.leaf("replace", f"{APPS}[app_id='{uid(201)}']/app_priority",
                                                                 "3")]))
    assert tally.accepted == 1 and not tally.failures, tally.failures


def test_a_leaf_that_breaks_unique_is_refused_for_that() -> None:
    """A link's urn is `unique` among links: a slice of one link cannot see the others."""
    memory = get_schema(KIND_MODULES["memory"])
    b = Builder(memory)
    edit = Edit("urn", [b.leaf("replace", f"{ELINKS}[link-id='{uid(1)}']/urn", "urn:qstrata:link:l2")])
    store, tally = single(memory, memory_seed(), edit)
    assert tally.refused == 1 and not tally.failures, tally.failures
    with pytest.raises(DatastoreError) as refused:
        asyncio.run(store.edit("running", edit.ops, SYSTEM))
    assert refused.value.kind == ErrorKind.NOT_UNIQUE, refused.value


def test_a_leaf_whose_when_fails_goes_with_the_leaf_it_depends_on() -> None:
    """Removing a VOA port's atten-mode makes its atten-level's `when` false: validation removes
    the level, and running must lose it too (the slice lost it, the install kept it)."""
    switch = get_schema(KIND_MODULES["switch"])
    b = Builder(switch)
    store, tally = single(switch, switch_seed(), Edit("mode", [b.leaf("remove", f"/{OPSW}:voa/port[port-id='1']/atten-mode")]))
    assert not tally.failures, tally.failures
    assert not store.get_config("running").exists(f"/{OPSW}:voa/port[port-id='1']/atten-level")


def test_a_merge_into_a_user_ordered_entry_keeps_its_place() -> None:
    """NACM rule-lists are evaluated in order (RFC 8341 s3.4.5): adding a rule to the first list
    must not move that list behind the others."""
    qkd = get_schema(KIND_MODULES["qkd"])
    b = Builder(qkd)
    rule = {"name": "r0", "module-name": "*", "access-operations": "*", "action": "deny"}
    store, tally = single(qkd, qkd_seed(), Edit("rule", [b.entry("merge", "/ietf-netconf-acm:nacm/rule-list",
                                                                 {"name": "admin"}, {"rule": [rule]})]))
    assert not tally.failures, tally.failures
    order = keys_of(store.get_config("running"), "/ietf-netconf-acm:nacm/rule-list", "name")
    assert order[0] == "admin", order


def test_a_leaf_set_in_another_case_of_a_nacm_rule_replaces_the_old_case() -> None:
    """A rule's rpc-name (case protocol-operation) set on its own on a rule that has a path
    (case data-node): validation removes the old case, but the slice held no case leaves and
    installing it kept both, so running could no longer be read back (a restart failed)."""
    qkd = get_schema(KIND_MODULES["qkd"])
    b = Builder(qkd)
    rule = "/ietf-netconf-acm:nacm/rule-list[name='read-write']/rule[name='deny-nacm']"
    store, tally = single(qkd, qkd_seed(), Edit("rpc-name", [b.leaf("replace", f"{rule}/rpc-name", "get")]))
    assert tally.accepted == 1 and not tally.failures, tally.failures
    assert not store.get_config("running").exists(f"{rule}/path")


@functools.cache
def constructs_schema() -> Schema:
    """The shared schema plus `yang/qstrata-test-slices.yang`: one construct per locality rule."""
    return Schema(CONSTRUCTS_DIR)


@pytest.mark.parametrize("seed", SEEDS)
def test_slice_verdicts_match_for_every_locality_rule(seed: int) -> None:
    schema = constructs_schema()
    tally = run_sequence(schema, constructs_seed(), constructs_edits(schema), seed, 150)
    assert not tally.failures, f"constructs seed={seed}:\n" + "\n".join(tally.failures)
    assert tally.accepted >= 30 and tally.refused >= 30 and tally.sliced >= 20, tally


def test_a_when_climbing_out_of_its_list_validates_whole() -> None:
    """`when "../../../targets/target[name = 'gate2']"` on a leaf of a list entry is relative
    but reads another top-level subtree: on a slice it was false and a valid entry refused."""
    schema = constructs_schema()
    b = Builder(schema)
    edit = Edit("climbing", [b.entry("create", f"/{CONSTRUCTS}:climb/climbing", {"id": 2}, {"w": "y"})])
    _, tally = single(schema, constructs_seed(), edit)
    assert tally.accepted == 1 and not tally.failures, tally.failures


REQUIRED = """module qstrata-test-required {
  yang-version 1.1;
  namespace "urn:qstrata:test:qstrata-test-required";
  prefix rq;
  container needs { list needed { key id; min-elements 1; leaf id { type uint8; } } }
  container items { list item { key id; leaf id { type uint8; } leaf note { type string; } } }
}
"""


def test_min_elements_elsewhere_in_the_module_does_not_refuse_a_slice(tmp_path: Path) -> None:
    """libyang checks min-elements (and mandatory leaves) of every module with data in a tree:
    with a list that needs entries under a non-presence container, every slice of the module
    lacked them and every edit of it was refused."""
    (tmp_path / "qstrata-test-required.yang").write_text(REQUIRED)
    schema = Schema(tmp_path)
    b = Builder(schema)
    seed = {"qstrata-test-required:needs": {"needed": [{"id": 1}]},
            "qstrata-test-required:items": {"item": [{"id": 1}]}}
    edit = Edit("item", [b.entry("merge", "/qstrata-test-required:items/item", {"id": 2}, {"note": "n"})])
    _, tally = single(schema, seed, edit)
    assert tally.accepted == 1 and not tally.failures, tally.failures


def test_a_mandatory_choice_beside_an_edited_leaf_is_not_lost() -> None:
    """The slice of a leaf holds its entry's leaves but no case of a choice: removing an
    optional leaf of an entry whose mandatory choice is set was refused for the choice."""
    schema = constructs_schema()
    b = Builder(schema)
    seed = constructs_seed()
    seed[f"{CONSTRUCTS}:choices"] = {"choosy": [{"id": 1, "a1": "a", "a2": "x"}]}
    edit = Edit("a2", [b.leaf("remove", f"/{CONSTRUCTS}:choices/choosy[id='1']/a2")])
    _, tally = single(schema, seed, edit)
    assert tally.accepted == 1 and not tally.failures, tally.failures


def test_a_union_of_a_leafref_and_an_enum_leaves_other_units_on_slices() -> None:
    """A union's non-leafref member was taken for an instance-identifier that may point
    anywhere: one such leaf in a schema put every edit of every module on the whole tree."""
    locality = Datastore(constructs_schema()).locality
    assert locality.plan(f"{REFS}/plain", False) is not None
    assert locality.plan(f"{REFS}/by-union", False) is None  # the union itself stays whole


def test_a_user_ordered_entry_keeps_its_place_in_the_journal(tmp_path: Path) -> None:
    """An edit validated whole is journaled by the outermost entries it changed; replayed
    alone, a NACM rule-list went last, so after a restart the rule-lists were in another
    order than the running that was served (and RFC 8341 evaluates them in order)."""
    memory = get_schema(KIND_MODULES["memory"])
    b = Builder(memory)
    rule = {"name": "r0", "module-name": "*", "access-operations": "*", "action": "deny"}
    ops = [b.entry("merge", "/ietf-netconf-acm:nacm/rule-list", {"name": "admin"}, {"rule": [rule]}),
           b.leaf("merge", f"{MEMORIES}[memory-id='mem0']/capacity", "6")]  # a unit validated whole
    initial = DataTree.from_python({**memory_seed(), **DEFAULT_NACM}, schema=memory, config_only=True)
    store = Datastore(memory, tmp_path)
    store.load(initial)
    assert not slices(store, ops)
    asyncio.run(store.edit("running", ops, SYSTEM))
    again = Datastore(memory, tmp_path)
    again.load(initial)
    assert keys_of(again.get_config("running"), "/ietf-netconf-acm:nacm/rule-list", "name") == \
        keys_of(store.get_config("running"), "/ietf-netconf-acm:nacm/rule-list", "name")
    assert not store.get_config("running").diff(again.get_config("running"))
