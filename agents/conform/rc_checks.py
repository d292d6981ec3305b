"""RESTCONF checks (RFC 8040, with RFC 7951 JSON, RFC 8072 YANG Patch, RFC 8525 yang-library) as
data: each a request as it goes on the wire and what the RFC says must come back (`RcExpect`),
with set-up, follow-ups and clean-up in the same form (see `rc_runner`).

They address the profile's test entries (the same identifiers as the NETCONF checks, so a run
removes what an interrupted run left) under the profile's module, found from `RC_PROFILES`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .model import ALL_PROFILES, Check, RcExpect, register
from .profiles import ETSI_TYPES, PROFILES, test_id

JSON = "application/yang-data+json"
XML = "application/yang-data+xml"
PATCH_JSON = "application/yang-patch+json"
ACCEPT_JSON = f"\nAccept: {JSON}"
SEND_JSON = f"\nContent-Type: {JSON}"
CAPABILITY = "urn:ietf:params:restconf:capability:"


@dataclass(frozen=True)
class RcProfile:
    """A profile's model as RESTCONF addresses it: module-qualified names, JSON bodies (RFC 7951)."""

    module: str
    child: str
    """A child of the root every device has (depth and fields checks)."""
    entry: dict[str, Any]
    """Non-key members of a valid test entry, as RFC 7951 JSON."""
    key_is_number: bool = False
    state_leaf: str | None = None
    """A config false child of the root (content checks); None: the profile has none for sure."""
    identity: tuple[str, str] | None = None
    """A leaf of the test entry holding an identity, and its RFC 7951 value (module:name)."""
    default_leaf: str | None = None
    """A path below the root to a leaf with a YANG default (with-defaults)."""
    fields: tuple[str, str] | None = None
    """The fields check: what it asks for below the root and a sibling that must then be left out
    (default: the child and the list's container; a switch's port list is its only child)."""
    missing_key: str | None = None
    """A key no entry of the device has (default: test entry 3's): a switch reports every port
    it has, and refuses configuration for a port it does not have."""

    def values(self, name: str, restconf_root: str) -> dict[str, str]:
        """The `$names` RESTCONF check templates use (see `rc_runner`)."""
        p = PROFILES[name]
        data = restconf_root + "/data"
        node = f"{self.module}:{p.root}"
        container = f"{data}/{node}" + (f"/{p.container}" if p.container else "")
        v = {"module": self.module, "root": p.root, "root_member": node, "node": f"{data}/{node}",
             "container": container, "list": p.list_name, "list_member": f"{self.module}:{p.list_name}",
             "key": p.key, "child": self.child, "MOD": p.mod_leaf, "state_leaf": self.state_leaf or "",
             "identity_leaf": self.identity[0] if self.identity else "",
             "identity_value": self.identity[1] if self.identity else "", "default_leaf": self.default_leaf or "",
             "container_name": p.container or p.list_name}
        v["fields"], v["fields_left_out"] = self.fields or (self.child, v["container_name"])
        missing = self.missing_key or p.keys[2]
        v["missing"] = f"{container}/{p.list_name}={quote(missing, safe='')}"
        mod_value = self.entry.get(p.mod_leaf)
        modded = type(mod_value)(p.mod_value) if isinstance(mod_value, int | float) else p.mod_value
        v["MODVAL"] = str(modded)
        for n, k in zip((1, 2, 3), p.keys, strict=True):
            key = int(k) if self.key_is_number else k
            obj = {p.key: key, **self.entry}
            v[f"K{n}"] = k
            v[f"entry{n}"] = f"{container}/{p.list_name}={quote(k, safe='')}"
            v[f"entry{n}_rel"] = f"/{p.list_name}={quote(k, safe='')}"
            v[f"E{n}"] = json.dumps({v["list_member"]: [obj]})
            v[f"E{n}_obj"] = json.dumps(obj)
            v[f"E{n}_mod"] = json.dumps({v["list_member"]: [{p.key: key, p.mod_leaf: modded}]})
            v[f"E{n}_bad"] = json.dumps({v["list_member"]: [{p.key: key, p.bad_leaf: p.bad_value}]})
            v[f"E{n}_xml"] = (f'<{p.list_name} xmlns="{p.namespace}"><{p.key}>{k}</{p.key}>{p.body}'
                              f"</{p.list_name}>")
            v[f"entry{n}_pct"] = f"{container}/{p.list_name}=" + "".join(f"%{b:02X}" for b in k.encode())
        return v


RC_PROFILES: dict[str, RcProfile] = {
    "etsi-qkd-015": RcProfile(
        module="etsi-qkd-sdn-node", child="qkdn_id",
        entry={"qkdl_enable": False, "qkdl_remote": {"qkdn_id": test_id(99)},
               "qkdl_type": "etsi-qkd-node-types:VIRT", "virt_bandwidth": 1000},
        state_leaf="qkdn_status", identity=("qkdl_type", "etsi-qkd-node-types:VIRT"),
        default_leaf="qkdn_capabilities/link_stats_support"),
    "qfs": RcProfile(module="qstrata-qfs", child="uuid",
                     entry={"next-hop-node": test_id(98), "min-fidelity": "0.5"}),
    "optical-switch": RcProfile(module="optical-switch", child="port", entry={"label": "conform"},
                                key_is_number=True, fields=("port/port-id", "port/status"), missing_key="65535"),
}
assert ETSI_TYPES  # the identity above is that module's (RFC 7951 6.8: module name, not namespace)

ENTRIES = ("DELETE $entry1", "DELETE $entry2", "DELETE $entry3")
"""Clean-up: whichever test entries exist go (errors for the others do not matter)."""
PUT1 = f"PUT $entry1{SEND_JSON}\n\n$E1"
GONE = RcExpect((404,), tags=("invalid-value", "data-missing"))


def no_config(n: int) -> tuple[str, RcExpect]:
    """The follow-up of a check that must write nothing: no configuration of test entry n. Read
    with content=config: a switch reports the read-only status of every port it has, configured
    or not (RFC 8040 4.8.1)."""
    return (f"GET $entry{n}?content=config{ACCEPT_JSON}", GONE)

STILL_SERVING = (f"GET $node{ACCEPT_JSON}", RcExpect(present=("$root_member",)))


def rc(id: str, clause: str, title: str, send: str, expect: RcExpect, *, setup: tuple[str, ...] = (),
       then: tuple[tuple[str, RcExpect], ...] = (), cleanup: tuple[str, ...] = (), step: str | None = None,
       hostile: bool = False, **params: Any) -> Check:
    return Check(id=id, clause=clause, title=title, protocol="restconf", send=send, expect=expect, setup=setup,
                 then=then, cleanup=cleanup, step=step, hostile=hostile, profiles=ALL_PROFILES,
                 params=tuple(params.items()))


def _patch(*edits: tuple[str, str, str]) -> str:
    """A YANG Patch (RFC 8072 2.1) of the test entries: (edit-id, operation, entry number)."""
    return ("PATCH $container\nContent-Type: " + PATCH_JSON + ACCEPT_JSON + "\n\n"
            + '{"ietf-yang-patch:yang-patch": {"patch-id": "qstrata-conform", "edit": ['
            + ", ".join(f'{{"edit-id": "{eid}", "operation": "{op}", "target": "$entry{n}_rel"'
                        + (f', "value": $E{n}' if op in ("create", "merge", "replace") else "") + "}"
                        for eid, op, n in edits)
            + "]}}")


CHECKS = [
    # ---------------------------------------------------------------- discovery (RFC 8040 3)
    rc("RC-ROOT-001", "RFC 8040 3.1", "host-meta names the RESTCONF root", "GET /.well-known/host-meta",
       RcExpect(media="application/xrd+xml"), step="host_meta"),
    rc("RC-ROOT-002", "RFC 8040 3.3", "the API root: data, operations, yang-library-version",
       f"GET $restconf{ACCEPT_JSON}",
       RcExpect(media=JSON, present=("ietf-restconf:restconf/data", "ietf-restconf:restconf/operations",
                                     "ietf-restconf:restconf/yang-library-version"))),
    rc("RC-ROOT-003", "RFC 8040 3.3.3", "yang-library-version names the YANG library revision",
       f"GET $restconf/yang-library-version{ACCEPT_JSON}",
       RcExpect(media=JSON, present=("ietf-restconf:yang-library-version",))),
    rc("RC-ROOT-004", "RFC 8040 3.3, 5.2", "the API root in XML", f"GET $restconf\nAccept: {XML}",
       RcExpect(media=XML, present=("restconf/data", "restconf/operations"))),
    rc("RC-LIB-001", "RFC 8040 10.1, RFC 8525 3", "ietf-yang-library lists the profile's module",
       f"GET $data/ietf-yang-library:yang-library{ACCEPT_JSON}",
       RcExpect(present=("ietf-yang-library:yang-library/module-set/module[name=$module]",))),
    rc("RC-MON-001", "RFC 8040 9.1.1", "capabilities list the query parameters supported",
       f"GET $data/ietf-restconf-monitoring:restconf-state/capabilities{ACCEPT_JSON}",
       RcExpect(present=tuple(f"ietf-restconf-monitoring:capabilities/capability={CAPABILITY}{c}:1.0"
                              for c in ("depth", "fields", "with-defaults", "filter", "replay")))),
    rc("RC-MON-002", "RFC 8040 9.2, 6.2", "the NETCONF stream and where to read it",
       f"GET $data/ietf-restconf-monitoring:restconf-state/streams{ACCEPT_JSON}",
       RcExpect(present=("ietf-restconf-monitoring:streams/stream[name=NETCONF]/access/location",))),
    rc("RC-OPS-001", "RFC 8040 3.3.2", "the operations resource", f"GET $operations{ACCEPT_JSON}",
       RcExpect(media=JSON, present=("ietf-restconf:operations",))),
    # ---------------------------------------------------------------- reading (RFC 8040 4.2, 4.3; RFC 7951)
    rc("RC-GET-001", "RFC 8040 4.3, RFC 7951 4", "GET in JSON: the top-level member module-qualified",
       f"GET $node{ACCEPT_JSON}", RcExpect(media=JSON, present=("$root_member/$child",), absent=("$root",))),
    rc("RC-GET-002", "RFC 8040 4.3, 5.2", "GET in XML, in the module's namespace", f"GET $node\nAccept: {XML}",
       RcExpect(media=XML, present=("$root/$child",))),
    rc("RC-GET-003", "RFC 8040 4.2", "HEAD: the GET's headers, no body", f"HEAD $node{ACCEPT_JSON}",
       RcExpect(media=JSON, headers=("etag",), no_body=True)),
    rc("RC-GET-004", "RFC 8040 3.4.1.2, 3.4.1.3", "the datastore has an ETag and a Last-Modified",
       f"GET $data{ACCEPT_JSON}", RcExpect(headers=("etag", "last-modified"))),
    rc("RC-GET-005", "RFC 8040 4.3, 7", "GET of an entry that does not exist: 404", f"GET $missing{ACCEPT_JSON}",
       GONE),
    rc("RC-GET-006", "RFC 8040 3.5.3, RFC 7951 4", "a list entry: qualified member, its key as sent",
       f"GET $entry1{ACCEPT_JSON}",
       RcExpect(media=JSON, present=("$list_member[$key=$K1]",), absent=("$list",)), setup=(PUT1,),
       cleanup=ENTRIES),
    rc("RC-URI-001", "RFC 8040 3.5.3.1", "a key percent-encoded character by character is the same key",
       f"GET $entry1_pct{ACCEPT_JSON}", RcExpect(present=("$list_member[$key=$K1]",)), setup=(PUT1,),
       cleanup=ENTRIES),
    rc("RC-URI-002", "RFC 8040 3.5.3.1, 7", "a key with an encoded '/' and ',' is a key value, not a path",
       f"GET $container/$list=conform%2Fno%2Csuch{ACCEPT_JSON}",
       RcExpect((400, 404), tags=("invalid-value", "data-missing"))),
    rc("RC-URI-003", "RFC 8040 3.5.3, 7", "an unknown module prefix in the path: 400/404",
       f"GET $data/qstrata-no-such-module:thing{ACCEPT_JSON}",
       RcExpect((400, 404), tags=("invalid-value", "unknown-element", "unknown-namespace"))),
    rc("RC-URI-004", "RFC 8040 3.5.3", "a list entry addressed without its key: refused, nothing written",
       f"PUT $container/$list{SEND_JSON}\n\n$E1", RcExpect((400, 405)),
       then=(no_config(1),), cleanup=ENTRIES),
    # ---------------------------------------------------------------- query parameters (RFC 8040 4.8)
    rc("RC-QP-001", "RFC 8040 4.8.2", "depth=1: the target without its children", f"GET $node?depth=1{ACCEPT_JSON}",
       RcExpect(present=("$root_member",), absent=("$root_member/$child",))),
    rc("RC-QP-002", "RFC 8040 4.8.2", "depth=2: children, not grandchildren", f"GET $node?depth=2{ACCEPT_JSON}",
       RcExpect(present=("$root_member/$child",), absent=("$root_member/$container_name/$list",)),
       setup=(PUT1,), cleanup=ENTRIES),
    rc("RC-QP-003", "RFC 8040 4.8.2", "depth=unbounded: everything", f"GET $node?depth=unbounded{ACCEPT_JSON}",
       RcExpect(present=("$root_member/$child",))),
    rc("RC-QP-004", "RFC 8040 4.8.2, 7", "depth=0: 400 invalid-value", f"GET $node?depth=0{ACCEPT_JSON}",
       RcExpect((400,), tags=("invalid-value",))),
    rc("RC-QP-005", "RFC 8040 4.8.2, 7", "depth=abc: 400 invalid-value", f"GET $node?depth=abc{ACCEPT_JSON}",
       RcExpect((400,), tags=("invalid-value",))),
    rc("RC-QP-006", "RFC 8040 4.8.1", "content=config: no config false node", f"GET $node?content=config{ACCEPT_JSON}",
       RcExpect(present=("$root_member/$child",), absent=("$root_member/$state_leaf",)), needs="state_leaf"),
    rc("RC-QP-007", "RFC 8040 4.8.1", "content=nonconfig: state, no configuration",
       f"GET $node?content=nonconfig{ACCEPT_JSON}",
       RcExpect(present=("$root_member/$state_leaf",), absent=("$root_member/$child",)), needs="state_leaf"),
    rc("RC-QP-008", "RFC 8040 4.8.1, 7", "content=everything: 400 invalid-value",
       f"GET $node?content=everything{ACCEPT_JSON}", RcExpect((400,), tags=("invalid-value",))),
    rc("RC-QP-009", "RFC 8040 4.8.3", "fields: only the fields asked", f"GET $node?fields=$fields{ACCEPT_JSON}",
       RcExpect(present=("$root_member/$fields",), absent=("$root_member/$fields_left_out",)),
       setup=(PUT1,), cleanup=ENTRIES),
    rc("RC-QP-010", "RFC 8040 4.8.9, RFC 6243 3.1", "with-defaults=report-all shows defaults",
       f"GET $node?with-defaults=report-all{ACCEPT_JSON}", RcExpect(present=("$root_member/$default_leaf",)),
       needs="default_leaf"),
    rc("RC-QP-011", "RFC 8040 4.8.9, 7", "with-defaults=sometimes: 400 invalid-value",
       f"GET $node?with-defaults=sometimes{ACCEPT_JSON}", RcExpect((400,), tags=("invalid-value",))),
    # ---------------------------------------------------------------- editing (RFC 8040 4.4-4.7)
    rc("RC-POST-001", "RFC 8040 4.4.1", "POST creates a child: 201 with Location, readable there",
       f"POST $container{SEND_JSON}\n\n$E1", RcExpect((201,), headers=("location",)),
       then=((f"GET $location{ACCEPT_JSON}", RcExpect(present=("$list_member[$key=$K1]",))),),
       cleanup=ENTRIES),
    rc("RC-POST-002", "RFC 8040 4.4.1, 7", "POST of an entry that exists: 409 data-exists",
       f"POST $container{SEND_JSON}\n\n$E1", RcExpect((409,), tags=("data-exists",)), setup=(PUT1,),
       cleanup=ENTRIES),
    rc("RC-PUT-001", "RFC 8040 4.5", "PUT creates (201), PUT again replaces (204)", PUT1, RcExpect((201,)),
       then=((PUT1, RcExpect((204,), no_body=True)),
             (f"GET $entry1{ACCEPT_JSON}", RcExpect(present=("$list_member[$key=$K1]",)))),
       cleanup=ENTRIES),
    rc("RC-PUT-002", "RFC 8040 4.5, 7", "PUT whose body key differs from the URI's: 400, nothing written",
       f"PUT $entry1{SEND_JSON}\n\n$E2", RcExpect((400,), tags=("invalid-value", "bad-element", "unknown-element")),
       then=(no_config(1), no_config(2)), cleanup=ENTRIES),
    rc("RC-PATCH-001", "RFC 8040 4.6.1", "plain PATCH merges into the entry",
       f"PATCH $entry1{SEND_JSON}\n\n$E1_mod", RcExpect((200, 204)), setup=(PUT1,),
       then=((f"GET $entry1{ACCEPT_JSON}", RcExpect(present=("$list_member[$key=$K1]/$MOD=$MODVAL",))),),
       cleanup=ENTRIES),
    rc("RC-PATCH-002", "RFC 8040 4.6.1, 7", "plain PATCH of a missing entry: 404, nothing created",
       f"PATCH $entry3{SEND_JSON}\n\n$E3_mod", RcExpect((404, 409), tags=("invalid-value", "data-missing")),
       then=(no_config(3),), cleanup=ENTRIES),
    rc("RC-DELETE-001", "RFC 8040 4.7", "DELETE removes the entry: 204, then 404", f"DELETE $entry1{ACCEPT_JSON}",
       RcExpect((204,), no_body=True), setup=(PUT1,), then=(no_config(1),),
       cleanup=ENTRIES),
    rc("RC-DELETE-002", "RFC 8040 4.7, 7", "DELETE of a missing entry: 404", f"DELETE $entry3{ACCEPT_JSON}",
       RcExpect((404, 409), tags=("invalid-value", "data-missing"))),
    rc("RC-OPTIONS-001", "RFC 8040 4.1, 4.6, RFC 8072 2.2", "OPTIONS: Allow and Accept-Patch", "OPTIONS $node",
       RcExpect((200, 204), headers=("allow", "accept-patch")),
       header_has=(("allow", ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS")),
                   ("accept-patch", (JSON, XML, PATCH_JSON)))),
    # ---------------------------------------------------------------- YANG Patch (RFC 8072)
    rc("RC-YPATCH-001", "RFC 8072 2, 2.3", "a YANG Patch of two creates: ok, both written",
       _patch(("e1", "create", "1"), ("e2", "create", "2")),
       RcExpect(present=("ietf-yang-patch:yang-patch-status/ok",)),
       then=((f"GET $entry1{ACCEPT_JSON}", RcExpect()), (f"GET $entry2{ACCEPT_JSON}", RcExpect())),
       cleanup=ENTRIES),
    rc("RC-YPATCH-002", "RFC 8072 2.3, 3", "a YANG Patch with one failing edit: per-edit error, none applied",
       _patch(("e1", "create", "2"), ("e2", "create", "1")),
       RcExpect((409,), tags=("data-exists",), yang_patch=True,
                present=("ietf-yang-patch:yang-patch-status/edit-status/edit[edit-id=e2]/errors",)),
       setup=(PUT1,), then=(no_config(2),), cleanup=ENTRIES),
    rc("RC-YPATCH-003", "RFC 8072 2.1", "a YANG Patch with an unknown operation: 400, nothing applied",
       _patch(("e1", "create", "1"), ("e2", "evaporate", "2")),
       RcExpect((400,), tags=("invalid-value", "malformed-message", "bad-element")),
       then=(no_config(1),), cleanup=ENTRIES),
    # ---------------------------------------------------------------- media types (RFC 8040 5.2) and JSON
    rc("RC-MEDIA-001", "RFC 8040 5.2", "an XML body creates the same entry", f"PUT $entry1\nContent-Type: {XML}\n\n$E1_xml",
       RcExpect((201,)), then=((f"GET $entry1{ACCEPT_JSON}", RcExpect(present=("$list_member[$key=$K1]",))),),
       cleanup=ENTRIES),
    rc("RC-MEDIA-002", "RFC 8040 5.2, RFC 7231 6.5.13", "a body in text/plain: 415, nothing written",
       "PUT $entry1\nContent-Type: text/plain\n\n$E1", RcExpect((415,)),
       then=(no_config(1),), cleanup=ENTRIES),
    rc("RC-MEDIA-003", "RFC 8040 5.2, RFC 7231 6.5.6", "Accept: text/html only: 406", "GET $node\nAccept: text/html",
       RcExpect((406,))),
    rc("RC-JSON-001", "RFC 7951 6.8", "identities as module:name", f"GET $entry1{ACCEPT_JSON}",
       RcExpect(present=("$list_member[$key=$K1]/$identity_leaf=$identity_value",)), setup=(PUT1,),
       cleanup=ENTRIES, needs="identity_leaf"),
    rc("RC-ERR-001", "RFC 8040 7.1, 7", "a value its type refuses: 400 invalid-value, nothing written",
       f"PUT $entry1{SEND_JSON}\n\n$E1_bad", RcExpect((400,), tags=("invalid-value", "bad-element")),
       then=(no_config(1),), cleanup=ENTRIES),
    # ---------------------------------------------------------------- entity tags (RFC 8040 3.4.1, 3.5.2; RFC 7232)
    rc("RC-ETAG-001", "RFC 8040 3.5.2, RFC 7232 3.2", "If-None-Match with the ETag: 304",
       f"GET $entry1{ACCEPT_JSON}", RcExpect(headers=("etag",)), setup=(PUT1,),
       then=((f"GET $entry1{ACCEPT_JSON}\nIf-None-Match: $etag", RcExpect((304,), no_body=True)),),
       cleanup=ENTRIES),
    rc("RC-ETAG-002", "RFC 8040 3.5.2, RFC 7232 3.1", "If-Match with the current ETag: the edit goes through",
       f"PATCH $entry1{SEND_JSON}\nIf-Match: $etag\n\n$E1_mod", RcExpect((200, 204)),
       setup=(PUT1, f"GET $entry1{ACCEPT_JSON}"), cleanup=ENTRIES),
    rc("RC-ETAG-003", "RFC 8040 3.5.2, RFC 7232 3.1", "If-Match with another ETag: 412, nothing changed",
       f'PATCH $entry1{SEND_JSON}\nIf-Match: "qstrata-conform-stale"\n\n$E1_mod', RcExpect((412,)), setup=(PUT1,),
       then=((f"GET $entry1{ACCEPT_JSON}", RcExpect(absent=("$list_member[$key=$K1]/$MOD=$MODVAL",))),),
       cleanup=ENTRIES),
    rc("RC-ETAG-004", "RFC 8040 3.4.1.3, RFC 7232 3.4", "If-Unmodified-Since long ago: 412, nothing changed",
       f"PATCH $entry1{SEND_JSON}\nIf-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT\n\n$E1_mod",
       RcExpect((412,)), setup=(PUT1,),
       then=((f"GET $entry1{ACCEPT_JSON}", RcExpect(absent=("$list_member[$key=$K1]/$MOD=$MODVAL",))),),
       cleanup=ENTRIES),
    rc("RC-ETAG-005", "RFC 8040 3.4.1.3, RFC 7232 3.3", "If-Modified-Since its Last-Modified: 304",
       f"GET $entry1{ACCEPT_JSON}", RcExpect(headers=("last-modified",)), setup=(PUT1,),
       then=((f"GET $entry1{ACCEPT_JSON}\nIf-Modified-Since: $last_modified", RcExpect((304,), no_body=True)),),
       cleanup=ENTRIES),
    # ---------------------------------------------------------------- access (RFC 8040 2.5)
    rc("RC-AUTH-001", "RFC 8040 2.5, RFC 7617", "no credentials: 401 with WWW-Authenticate",
       f"GET $node{ACCEPT_JSON}", RcExpect((401,), headers=("www-authenticate",)), step="unauthenticated"),
    rc("RC-AUTH-002", "RFC 8040 2.5, RFC 7617", "a wrong password: 401", f"GET $node{ACCEPT_JSON}",
       RcExpect((401,)), step="unauthenticated", password="qstrata-conform-wrong"),
    # ---------------------------------------------------------------- event streams (RFC 8040 6)
    rc("RC-STREAM-001", "RFC 8040 6.3, 6.4, RFC 6470 2.2", "the NETCONF stream announces an edit "
       "(netconf-config-change)", "GET <the NETCONF stream's location>", RcExpect(), step="stream",
       setup=(PUT1,), cleanup=ENTRIES),
    # ---------------------------------------------------------------- hostile input (--hostile)
    rc("RC-HOST-001", "RFC 8040 7, RFC 7231 6.5.11", "a body over the size cap: 413, still serving",
       "PUT $entry1" + SEND_JSON + '\n\n{"x": "$big"}', RcExpect((413, 400)),
       then=(STILL_SERVING, no_config(1)), cleanup=ENTRIES, hostile=True,
       big=65 * 1024 * 1024),
    rc("RC-HOST-002", "RFC 8040 7, RFC 8259 9", "JSON nested 100,000 deep: 400, still serving",
       "PUT $entry1" + SEND_JSON + "\n\n" + "[" * 100_000 + "]" * 100_000, RcExpect((400, 413)),
       then=(STILL_SERVING, no_config(1)), cleanup=ENTRIES, hostile=True),
    rc("RC-HOST-003", "RFC 8040 7, RFC 7951 4, RFC 8259 4", "duplicate JSON member names: 400, nothing written",
       "PUT $entry1" + SEND_JSON + "\n\n" + '{"$list_member": [$E1_obj], "$list_member": [$E2_obj]}',
       RcExpect((400,)), then=(STILL_SERVING, no_config(1),
                               no_config(2)), cleanup=ENTRIES, hostile=True),
    rc("RC-HOST-004", "RFC 8040 3.5.3.1, 7", "a key with %00: 400/404, still serving",
       f"GET $container/$list=conform%00{ACCEPT_JSON}", RcExpect((400, 404)), then=(STILL_SERVING,),
       hostile=True),
]
register(CHECKS)
