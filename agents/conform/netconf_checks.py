"""NETCONF checks (RFC 6241, 6242, 5277, 6470, 6022, 6243) as data, and the named steps a few need.

Placeholders in braces are the profile's (`profiles.Profile.values`): `{R0}`/`{R1}` open and close
the profile's root down to its list, `{E1_create}` is test entry 1 with operation create, `{FILTER}`
selects the list, `{SID}` is the id of the session the check runs on (the main one, or its own
with `fresh_session`: a lock's holder). Every edit is removed again by the clean-up.
"""

from __future__ import annotations

import asyncio

from lxml import etree
from qstrata.bindings.schema import module_files, published_module_text
from qstrata.bindings.schema_compare import SchemaCompareError, compare_module
from qstrata.bindings.wire.netconf_client import BASE_10, NOTIFICATION_NS, SessionClosed, hello

from .model import Check, Data, Error, Evidence, Ok, Outcome, Verdict, register
from .netconf_runner import (
    CLEAN_ENTRIES,
    NetconfContext,
    clean_entries,
    clip,
    describe_errors,
    evaluate,
    step,
    wait_for,
)

C = "urn:ietf:params:netconf:capability:"
WR = C + "writable-running:1.0"
RUN = "<target><running/></target>"


def edit(body: str, target: str = RUN, options: str = "") -> str:
    return f"<edit-config>{target}{options}<config>{{R0}}{body}{{R1}}</config></edit-config>"


GET_LIST = "<get-config><source><running/></source>{FILTER}</get-config>"
CLEAN = CLEAN_ENTRIES
"""Delete whichever test entries exist (not `remove` of absent ones: see NC-EDIT-012)."""
HAS_E1 = "{LIST}[{KEY}={K1}]"


def nc(id: str, clause: str, title: str, **kw) -> Check:
    return Check(id=id, clause=clause, title=title, protocol="netconf", **kw)


CHECKS = [
    # ---------------------------------------------------------------- hello, framing, messages
    nc("NC-HELLO-001", "RFC 6241 8.1", "server hello advertises base:1.0 and a session-id", step="server_hello", send='(client connects)', expect='a well-formed <hello> with base:1.0 and a non-zero session-id'),
    nc("NC-HELLO-002", "RFC 6242 4.1", "base:1.1 on both sides: chunked framing carries the rpcs",
       step="chunked", send='hello with base:1.0 and base:1.1, then get-config in chunked framing', expect='the session is chunked and the reply has <data>', requires=("urn:ietf:params:netconf:base:1.1",)),
    nc("NC-HELLO-003", "RFC 6242 4.1", "client offering only base:1.0 is answered in end-of-message framing",
       step="eom_only", send='hello with base:1.0 only, then get-config framed with ]]>]]>', expect='a reply framed with ]]>]]> that has <data>'),
    nc("NC-HELLO-004", "RFC 6241 8.1", "a client hello carrying a session-id ends the session", step="hello_session_id", send='hello with <session-id>4242</session-id>, then get-config', expect='the server ends the session (no reply)'),
    nc("NC-RPC-001", "RFC 6241 4.2", "rpc-reply echoes message-id and every other rpc attribute",
       step="echo_attributes", send='<rpc message-id="conform-101" cf:tag="x1"> with get-config', expect='well-formed rpc-reply with message-id="conform-101" and cf:tag="x1"'),
    nc("NC-RPC-002", "RFC 6241 4.1", "rpc without message-id: rpc-error missing-attribute",
       send="<get-config><source><running/></source>{FILTER}</get-config>", params=(("attributes", ""),),
       expect=Error(("missing-attribute",), info="bad-attribute=message-id")),
    nc("NC-RPC-003", "RFC 6241 Appendix A", "an unknown operation: operation-not-supported or unknown-element",
       send='<conform-no-such-op xmlns="urn:example:conform"/>',
       expect=Error(("operation-not-supported", "unknown-element", "unknown-namespace", "bad-element"))),
    nc("NC-RPC-004", "RFC 6241 7.1", "get-config without <source>: missing-element",
       send="<get-config/>", expect=Error(("missing-element",), info="bad-element=source")),
    # ---------------------------------------------------------------- capabilities versus behaviour
    nc("NC-CAP-001", "RFC 6241 8.3", ":candidate advertised: get-config of the candidate works",
       send="<get-config><source><candidate/></source>{FILTER}</get-config>", expect=Data(),
       requires=(C + "candidate:1.0",)),
    nc("NC-CAP-002", "RFC 6241 8.7", ":startup advertised: get-config of startup works",
       send="<get-config><source><startup/></source>{FILTER}</get-config>", expect=Data(),
       requires=(C + "startup:1.0",)),
    nc("NC-CAP-003", "RFC 6241 8.6", ":validate advertised: validate of running is ok",
       send="<validate><source><running/></source></validate>", expect=Ok(), requires=(C + "validate:1.",)),
    nc("NC-CAP-005", "RFC 6241 8.2", "no :writable-running: edit-config of running refused",
       send=edit("{E1}"), expect=Error(("operation-not-supported",)), requires_absent=(WR,), cleanup=(CLEAN,)),
    nc("NC-CAP-006", "RFC 6243 3", ":with-defaults advertised: get-config with report-all",
       send="<get-config><source><running/></source>{FILTER_ROOT}"
            '<with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">report-all</with-defaults>'
            "</get-config>", expect=Data(), requires=(C + "with-defaults:1.0",)),
    nc("NC-MON-001", "RFC 6022 2.1.3", "netconf-state/schemas lists the profile's modules",
       step="monitoring_schemas", send='get of /netconf-state/schemas', expect="an identifier for each of the profile's modules"),
    nc("NC-SCHEMA-001", "RFC 6022 3.1; the profile's modules (ETSI GS QKD 015 V2.1.1)", "get-schema: each module compared node by node with ours",
       step="get_schema", send="get-schema of each of the profile's modules (format yang)", expect='<data> with the module text; every schema node identical to ours'),
    nc("NC-SCHEMA-002", "RFC 6022 3.1", "get-schema of an unknown module: invalid-value",
       send='<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">'
            "<identifier>conform-no-such-module</identifier></get-schema>",
       expect=Error(("invalid-value",))),
    nc("NC-CAP-004", "RFC 6241 8.9", ":xpath advertised: an xpath filter selects the profile's root",
       send='<get-config><source><running/></source><filter type="xpath" xmlns:t="{NS}" select="/t:{ROOT}"/></get-config>',
       setup=(edit("{E1}"),), expect=Data(present=(HAS_E1,)), cleanup=(CLEAN,), requires=(C + "xpath:1.0", WR)),
    # ---------------------------------------------------------------- edit-config semantics
    nc("NC-EDIT-001", "RFC 6241 7.2", "operation create of a new entry; get-config shows it",
       send=edit("{E1_create}"), expect=Ok(), then=((GET_LIST, Data(present=(HAS_E1,))),),
       cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-EDIT-002", "RFC 6241 7.2", "create of an existing entry: data-exists with error-path",
       setup=(edit("{E1}"),), send=edit("{E1_create}"), expect=Error(("data-exists",), path="{LIST}"),
       cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-EDIT-003", "RFC 6241 7.2", "merge changes one leaf and keeps the others",
       setup=(edit("{E1}"),), send=edit("{E1_mod}"), expect=Ok(),
       then=((GET_LIST, Data(present=(HAS_E1 + "/{MODLEAF}={MODVAL}",))),), cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-EDIT-004", "RFC 6241 7.2", "delete of an existing entry removes it",
       setup=(edit("{E1}"),), send=edit("{E1_delete}"), expect=Ok(),
       then=((GET_LIST, Data(absent=(HAS_E1,))),), cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-EDIT-005", "RFC 6241 7.2", "delete of an absent entry: data-missing with error-path",
       setup=(CLEAN,), send=edit("{E1_delete}"), expect=Error(("data-missing",), path="{LIST}"), requires=(WR,)),
    nc("NC-EDIT-006", "RFC 6241 7.2", "remove of an absent entry is ok",
       setup=(CLEAN,), send=edit("{E3_remove}"), expect=Ok(), requires=(WR,)),
    nc("NC-EDIT-007", "RFC 6241 7.2", "replace of an entry leaves only what was sent",
       setup=(edit("{E1}"),), send=edit("{E1_replace}"), expect=Ok(),
       then=((GET_LIST, Data(present=(HAS_E1 + "/{MODLEAF}={MODVAL}",))),), cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-EDIT-008", "RFC 6241 7.2", "default-operation none: an absent entry without operation is data-missing",
       setup=(CLEAN,), send=edit("{E1_mod}", options="<default-operation>none</default-operation>"),
       expect=Error(("data-missing",), path="{LIST}"), then=((GET_LIST, Data(absent=(HAS_E1,))),), requires=(WR,)),
    nc("NC-EDIT-013", "RFC 6241 7.2", "default-operation none: a delete below existing levels deletes only that",
       setup=(edit("{E1}"), edit("{E2}")), send=edit("{E1_delete}", options="<default-operation>none</default-operation>"),
       expect=Ok(), then=((GET_LIST, Data(present=("{LIST}[{KEY}={K2}]",), absent=(HAS_E1,))),), cleanup=(CLEAN,),
       requires=(WR,)),
    nc("NC-EDIT-009", "RFC 6241 7.2, 8.6", "test-option test-only validates and changes nothing",
       setup=(CLEAN,), send=edit("{E1}", options="<test-option>test-only</test-option>"), expect=Ok(),
       then=((GET_LIST, Data(absent=(HAS_E1,))),), cleanup=(CLEAN,), requires=(WR, C + "validate:1.1")),
    nc("NC-EDIT-010", "RFC 6241 7.2, 8.5", "error-option rollback-on-error: nothing of a failed edit is applied",
       setup=(CLEAN,), send=edit("{E2}{E1_badvalue}", options="<error-option>rollback-on-error</error-option>"),
       expect=Error(("invalid-value", "bad-element"), about="{LIST}/{BADLEAF}"),
       then=((GET_LIST, Data(absent=("{LIST}[{KEY}={K2}]",))),),
       cleanup=(CLEAN,), requires=(WR, C + "rollback-on-error:1.0")),
    nc("NC-EDIT-011", "RFC 6241 7.2", "error-option stop-on-error is accepted",
       setup=(CLEAN,), send=edit("{E1}", options="<error-option>stop-on-error</error-option>"), expect=Ok(),
       cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-ERR-001", "RFC 6241 4.3, Appendix A", "a value of the wrong type: invalid-value (or bad-element) with error-path",
       setup=(edit("{E1}"),), send=edit("{E1_badvalue}"), expect=Error(("invalid-value", "bad-element"),
                                                                        path="{LIST}/{BADLEAF}"),
       cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-ERR-002", "RFC 6241 Appendix A", "an element not in the schema: unknown-element with error-path",
       setup=(edit("{E1}"),), send=edit("{E1_unknown}"), expect=Error(("unknown-element",), path="{LIST}",
                                                                       info="bad-element=no-such-conform-leaf"),
       cleanup=(CLEAN,), requires=(WR,)),
    nc("NC-ERR-003", "RFC 6241 Appendix A", "an element in an unknown namespace: unknown-namespace",
       send=edit("{E_unknown_ns}"), expect=Error(("unknown-namespace", "unknown-element"), about="{LIST}"),
       requires=(WR,)),
    nc("NC-ERR-004", "RFC 6241 7.2, Appendix A", "an operation attribute with a bad value: bad-attribute",
       send=edit("{E1_badop}"), expect=Error(("bad-attribute", "invalid-value"), info="bad-attribute=operation"),
       requires=(WR,)),
    nc("NC-ERR-005", "RFC 6241 Appendix A; RFC 7950 7.8.2", "a list entry without its key: missing-element",
       send=edit("{E_nokey}"), expect=Error(("missing-element", "data-missing", "invalid-value"), about="{LIST}"),
       requires=(WR,)),
    nc("NC-ERR-006", "RFC 6241 7.9", "kill-session of one's own session: invalid-value",
       send="<kill-session><session-id>{SID}</session-id></kill-session>", expect=Error(("invalid-value",))),
    # ---------------------------------------------------------------- candidate and confirmed commit
    nc("NC-CAND-001", "RFC 6241 8.3.4.2", "discard-changes reverts the candidate to running",
       setup=("<discard-changes/>", edit("{E1}", "<target><candidate/></target>")), send="<discard-changes/>", expect=Ok(),
       then=(("<get-config><source><candidate/></source>{FILTER}</get-config>", Data(absent=(HAS_E1,))),),
       cleanup=("<discard-changes/>",), requires=(C + "candidate:1.0",)),
    nc("NC-CAND-002", "RFC 6241 8.3.4.1", "commit copies the candidate to running",
       setup=("<discard-changes/>", edit("{E1}", "<target><candidate/></target>")), send="<commit/>", expect=Ok(),
       then=((GET_LIST, Data(present=(HAS_E1,))),), cleanup=("<discard-changes/>", CLEAN, "<discard-changes/>"),
       requires=(C + "candidate:1.0",)),
    nc("NC-CONF-001", "RFC 6241 8.4.5.1", "confirmed commit not confirmed: running rolls back after confirm-timeout",
       step="confirmed_timeout", send='edit candidate; commit confirmed, confirm-timeout 2; wait 3 s', expect='running has the change, then no longer has it', requires=(C + "candidate:1.0", C + "confirmed-commit:1.")),
    nc("NC-CONF-002", "RFC 6241 8.4.5.1", "a confirming commit makes a confirmed commit stay",
       step="confirmed_confirm", send='edit candidate; commit confirmed, confirm-timeout 2; commit; wait 3 s', expect='running keeps the change', requires=(C + "candidate:1.0", C + "confirmed-commit:1.")),
    nc("NC-CONF-003", "RFC 6241 8.4.4.1", "cancel-commit reverts a confirmed commit at once",
       step="confirmed_cancel", send='edit candidate; commit confirmed; cancel-commit', expect='running no longer has the change', requires=(C + "candidate:1.0", C + "confirmed-commit:1.1")),
    # ---------------------------------------------------------------- locks
    nc("NC-LOCK-001", "RFC 6241 7.5, 7.6", "lock and unlock of running", send="<lock>" + RUN + "</lock>",
       expect=Ok(), then=(("<unlock>" + RUN + "</unlock>", Ok()),), fresh_session=True),
    nc("NC-LOCK-002", "RFC 6241 7.5", "lock held by another session: lock-denied with its session-id",
       setup=("<lock>" + RUN + "</lock>",), send="<lock>" + RUN + "</lock>", params=(("on", "other"),),
       expect=Error(("lock-denied",), info="session-id={SID}"), cleanup=("<unlock>" + RUN + "</unlock>",),
       fresh_session=True),
    nc("NC-LOCK-003", "RFC 6241 7.5", "edit-config of running locked by another session: in-use",
       setup=("<lock>" + RUN + "</lock>",), send=edit("{E1}"), params=(("on", "other"),),
       expect=Error(("in-use", "lock-denied")), cleanup=("<unlock>" + RUN + "</unlock>", CLEAN),
       fresh_session=True, requires=(WR,)),
    nc("NC-LOCK-004", "RFC 6241 7.6", "unlock of a lock not held: operation-failed",
       send="<unlock>" + RUN + "</unlock>", expect=Error(("operation-failed", "lock-denied")), fresh_session=True),
    nc("NC-LOCK-005", "RFC 6241 7.5", "a lock ends with the session that held it", step="lock_released", send='lock running on session A; close-session A; lock on session B', expect='B gets the lock within 3 s'),
    # ---------------------------------------------------------------- notifications and close
    nc("NC-NOTIF-001", "RFC 5277 2.1.1; RFC 6470 2", "create-subscription, then an edit: netconf-config-change",
       step="config_change", send='create-subscription on session A; edit-config on session B', expect='A receives netconf-config-change within 5 s', requires=(C + "notification:1.0", WR)),
    nc("NC-NOTIF-002", "RFC 5277 2.1.1", "create-subscription with stopTime but no startTime: rpc-error",
       send='<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">'
            "<stopTime>2000-01-01T00:00:00Z</stopTime></create-subscription>",
       expect=Error(("missing-element", "bad-element", "invalid-value", "operation-failed")),
       requires=(C + "notification:1.0",), fresh_session=True),
    nc("NC-CLOSE-001", "RFC 6241 7.8", "close-session: ok, then the session ends", step="close_session", send='close-session, then get-config on the same session', expect='<ok/>, then no reply: the session is closed'),
    # last of the NETCONF checks: a server that breaks here takes nothing else down with it
    nc("NC-EDIT-012", "RFC 6241 7.2", "remove of an absent entry, then create of that entry",
       setup=(CLEAN, edit("{E3_remove}")), send=edit("{E3_create}"), expect=Ok(),
       then=((GET_LIST, Data(present=("{LIST}[{KEY}={K3}]",))),), cleanup=(CLEAN,), requires=(WR,)),
]


# ------------------------------------------------------------------ steps


@step("server_hello")
async def server_hello(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = ctx.session
    ev.add("(client connects)", clip(s.server_hello.text()))
    if s.server_hello.root is None:
        return Outcome(Verdict.FAIL, f"server hello is not XML: {s.server_hello.parse_error}")
    if BASE_10 not in s.capabilities:
        return Outcome(Verdict.FAIL, "base:1.0 not advertised")
    sid = s.session_id or ""
    if not sid.isdigit() or int(sid) == 0:
        return Outcome(Verdict.FAIL, f"session-id {sid!r} is not a non-zero session-id-type")
    return Outcome(Verdict.PASS)


@step("chunked")
async def chunked(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = await ctx.fresh()
    reply = await s.rpc(ctx.fill("<get-config><source><running/></source>{FILTER}</get-config>"))
    ev.add(*map(clip, s.transcript[-1]))
    ev.note(f"framing in use: {s.framer.framing.value}")
    if not s.framer.chunked:
        return Outcome(Verdict.FAIL, "both sides offered base:1.1 but the session is not chunked")
    return evaluate(Data(), reply)


@step("eom_only")
async def eom_only(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = await ctx.fresh(client_hello=hello((BASE_10,)))
    try:
        reply = await s.rpc(ctx.fill("<get-config><source><running/></source>{FILTER}</get-config>"), timeout=10)
    except (SessionClosed, TimeoutError) as exc:
        return Outcome(Verdict.FAIL, f"no end-of-message framed reply: {exc or type(exc).__name__}")
    ev.add(*map(clip, s.transcript[-1]))
    return evaluate(Data(), reply)


@step("hello_session_id")
async def hello_session_id(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    bad = hello(extra="<session-id>4242</session-id>")
    s = await ctx.fresh(client_hello=bad)
    ev.add(bad.decode(), "")
    try:
        await asyncio.sleep(0.2)
        reply = await s.rpc(ctx.fill("<get-config><source><running/></source>{FILTER}</get-config>"), timeout=5)
    except (SessionClosed, TimeoutError, OSError) as exc:
        ev.add("<rpc>get-config</rpc>", f"(session ended: {exc or type(exc).__name__})")
        return Outcome(Verdict.PASS)
    ev.add(*map(clip, s.transcript[-1]))
    return Outcome(Verdict.FAIL, "the server kept the session and answered: " + (
        "rpc-error " + describe_errors(reply.errors) if reply.errors else "a reply"))


@step("echo_attributes")
async def echo_attributes(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = ctx.session
    attrs = ' message-id="conform-101" xmlns:cf="urn:example:conform" cf:tag="x1"'
    reply = await s.rpc(ctx.fill("<get-config><source><running/></source>{FILTER}</get-config>"), attributes=attrs)
    ev.add(*map(clip, s.transcript[-1]))
    if reply.root is None:
        return Outcome(Verdict.FAIL, "reply is not XML")
    got = dict(reply.root.attrib)
    missing = [k for k, v in (("message-id", "conform-101"), ("{urn:example:conform}tag", "x1")) if got.get(k) != v]
    return Outcome(Verdict.FAIL, f"attributes not echoed: {', '.join(missing)}") if missing else Outcome(Verdict.PASS)


@step("monitoring_schemas")
async def monitoring_schemas(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = ctx.session
    reply = await s.rpc('<get><filter type="subtree"><netconf-state xmlns="urn:ietf:params:xml:ns:yang:'
                        'ietf-netconf-monitoring"><schemas/></netconf-state></filter></get>')
    ev.add(*map(clip, s.transcript[-1]))
    if reply.data is None:
        return Outcome(Verdict.FAIL, "no data: " + describe_errors(reply.errors))
    listed = {(e.text or "").strip() for e in reply.data.iter("{urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring}identifier")}
    missing = [m for m in ctx.profile.modules if m not in listed]
    return Outcome(Verdict.FAIL, f"not listed: {', '.join(missing)}") if missing else Outcome(Verdict.PASS)


@step("get_schema")
async def get_schema_step(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = ctx.session
    theirs: dict[str, str] = {}
    for module in ctx.profile.modules:
        reply = await s.rpc('<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">'
                            f"<identifier>{module}</identifier><format>yang</format></get-schema>")
        sent, received = s.transcript[-1]
        ev.add(sent, clip(received, 600))
        data = None if reply.root is None else next(
            (c for c in reply.root if isinstance(c.tag, str) and etree.QName(c).localname == "data"), None)
        if reply.errors or data is None:
            return Outcome(Verdict.FAIL, f"get-schema {module}: " + (describe_errors(reply.errors) or "no data"))
        if etree.QName(data).namespace != "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring":
            ev.note(f"get-schema {module}: <data> in namespace {etree.QName(data).namespace}, RFC 6022 3.1 "
                    "puts it in ietf-netconf-monitoring's")
        theirs[module] = "".join(data.itertext())
    ours = {m: published_module_text(m) for m in module_files()}  # imports resolve to ours
    problems: list[str] = []
    for module in ctx.profile.modules:
        try:
            diffs = compare_module(ours, {**ours, **theirs}, module)
        except SchemaCompareError as exc:
            problems.append(str(exc))
            continue
        ev.note(f"{module}: {len(diffs)} differing node(s)")
        problems += [str(d) for d in diffs]
    for p in problems[:40]:
        ev.note(p)
    if problems:
        return Outcome(Verdict.FAIL, f"{len(problems)} schema difference(s); first: {problems[0]}")
    return Outcome(Verdict.PASS)


async def _confirmed(ctx: NetconfContext, ev: Evidence, then: str) -> Outcome:
    s = await ctx.fresh()
    start = len(s.transcript)
    timeout = 2
    try:
        for body in ("<discard-changes/>", edit("{E1}", "<target><candidate/></target>")):
            reply = await s.rpc(ctx.fill(body))
            if reply.errors:
                return Outcome(Verdict.ERROR, "set-up failed: " + describe_errors(reply.errors))
        reply = await s.rpc(f"<commit><confirmed/><confirm-timeout>{timeout}</confirm-timeout></commit>")
        o = evaluate(Ok(), reply)
        if o.verdict is not Verdict.PASS:
            return o
        o = evaluate(Data(present=(HAS_E1,)), await s.rpc(ctx.fill(GET_LIST)), ctx.values)
        if o.verdict is not Verdict.PASS:
            return Outcome(Verdict.FAIL, "running does not have the confirmed change: " + o.reason)
        if then == "timeout":
            await asyncio.sleep(timeout + 1.0)
            o = evaluate(Data(absent=(HAS_E1,)), await s.rpc(ctx.fill(GET_LIST)), ctx.values)
            if o.verdict is not Verdict.PASS:
                return Outcome(Verdict.FAIL, f"{timeout + 1} s after a {timeout} s confirm-timeout: {o.reason}")
            return o
        if then == "confirm":
            o = evaluate(Ok(), await s.rpc("<commit/>"))
            if o.verdict is not Verdict.PASS:
                return o
            await asyncio.sleep(timeout + 1.0)
            return evaluate(Data(present=(HAS_E1,)), await s.rpc(ctx.fill(GET_LIST)), ctx.values)
        o = evaluate(Ok(), await s.rpc("<cancel-commit/>"))
        if o.verdict is not Verdict.PASS:
            return o
        return evaluate(Data(absent=(HAS_E1,)), await s.rpc(ctx.fill(GET_LIST)), ctx.values)
    finally:
        for body in ("<discard-changes/>", CLEAN, "<discard-changes/>"):
            try:
                if body == CLEAN:
                    await clean_entries(ctx, s)
                else:
                    await s.rpc(ctx.fill(body), timeout=10)
            except (SessionClosed, TimeoutError):
                break
        for sent, received in s.transcript[start:]:
            ev.add(clip(sent), clip(received))


@step("confirmed_timeout")
async def confirmed_timeout(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    return await _confirmed(ctx, ev, "timeout")


@step("confirmed_confirm")
async def confirmed_confirm(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    return await _confirmed(ctx, ev, "confirm")


@step("confirmed_cancel")
async def confirmed_cancel(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    return await _confirmed(ctx, ev, "cancel")


@step("lock_released")
async def lock_released(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    a = await ctx.fresh()
    reply = await a.rpc("<lock>" + RUN + "</lock>")
    ev.add(*map(clip, a.transcript[-1]))
    if reply.errors:
        return Outcome(Verdict.ERROR, "could not take the lock: " + describe_errors(reply.errors))
    await a.close()
    ev.note("the locking session sent close-session")
    b = await ctx.fresh()

    async def free() -> bool:
        r = await b.rpc("<lock>" + RUN + "</lock>")
        return r.ok

    ok = await wait_for(free, 3.0, 0.2)
    ev.add(*map(clip, b.transcript[-1]))
    if ok:
        await b.rpc("<unlock>" + RUN + "</unlock>")
        return Outcome(Verdict.PASS)
    return Outcome(Verdict.FAIL, "the lock outlived its session by 3 s")


@step("config_change")
async def config_change(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    listener = await ctx.fresh()
    reply = await listener.rpc(f'<create-subscription xmlns="{NOTIFICATION_NS}"/>')
    ev.add(*map(clip, listener.transcript[-1]))
    o = evaluate(Ok(), reply)
    if o.verdict is not Verdict.PASS:
        return o
    s = ctx.session
    start = len(s.transcript)
    try:
        reply = await s.rpc(ctx.fill(edit("{E1}")))
        if reply.errors:
            return Outcome(Verdict.ERROR, "the edit failed: " + describe_errors(reply.errors))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while loop.time() < deadline:
            try:
                n = await listener.notification(max(0.05, deadline - loop.time()))
            except TimeoutError:
                break
            ev.add("(notification)", clip(n.text()))
            if n.root is not None and any(etree.QName(e).localname == "netconf-config-change" for e in n.root):
                return Outcome(Verdict.PASS)
        return Outcome(Verdict.FAIL, "no netconf-config-change notification within 5 s of the edit")
    finally:
        await clean_entries(ctx, s)
        for sent, received in s.transcript[start:]:
            ev.add(clip(sent), clip(received))


@step("close_session")
async def close_session(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = await ctx.fresh()
    o = evaluate(Ok(), await s.rpc("<close-session/>"))
    ev.add(*map(clip, s.transcript[-1]))
    if o.verdict is not Verdict.PASS:
        return o
    try:
        reply = await s.rpc("<get-config><source><running/></source></get-config>", timeout=3)
    except (SessionClosed, TimeoutError, OSError):
        return Outcome(Verdict.PASS)
    except Exception as exc:  # noqa: BLE001 - any transport error means the session is gone
        ev.note(f"after close-session: {type(exc).__name__}")
        return Outcome(Verdict.PASS)
    return Outcome(Verdict.FAIL, "the session still answered after close-session: " + clip(reply.text(), 200))


register(CHECKS)
