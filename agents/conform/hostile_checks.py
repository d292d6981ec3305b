"""Hostile-input cases (opt-in with --hostile; never against production): broken framing, XML
bombs, huge and deep messages, locks left behind, absurd confirm-timeouts, many sessions.

Each case passes when the server refuses the input cleanly (an rpc-error, or closing that one
session) AND still answers a new session afterwards; evidence shows what was sent (abridged) and
what came back."""

from __future__ import annotations

import asyncio

from qstrata.bindings.wire.netconf_client import Reply, SessionClosed

from .model import Check, Data, Error, Evidence, Outcome, Verdict, register
from .netconf_checks import GET_LIST, HAS_E1, edit
from .netconf_runner import (
    NetconfContext,
    NetconfSession,
    clean_entries,
    clip,
    describe_errors,
    evaluate,
    step,
)

C = "urn:ietf:params:netconf:capability:"


def hx(id: str, clause: str, title: str, step: str, send: str, expect: str, **kw) -> Check:
    return Check(id=id, clause=clause, title=title, protocol="hostile", step=step, send=send, expect=expect,
                 hostile=True, **kw)


MALFORMED = ("malformed-message",)
"""RFC 6241 Appendix A: a message that cannot be parsed (framing, XML) is malformed-message; a
reply of any other tag (missing-attribute, say) means the server read something it should not
have."""
TOO_BIG = ("too-big", "resource-denied", "malformed-message")
"""Too much to take (a huge message, a 4 GB chunk claim, an entity bomb): refused as too big, for
want of resources, or as a message the server will not parse."""


def refused(tags: tuple[str, ...]) -> str:
    return f"an rpc-error {' or '.join(tags)}, or the session closed; a new session is then answered"

BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                   for i in range(1, 10))
        + b']><rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><get-config><source><running/>'
          b"</source><filter>&lol9;</filter></get-config></rpc>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><get-config><source><running/></source>'
       b"<filter>&x;</filter></get-config></rpc>")

CHECKS = [
    hx("HX-FRAME-001", "RFC 6242 4.2", "a chunk header that is not a number", "raw",
       "\\n#abc\\n after the hello", refused(MALFORMED),
       params=(("payload", b"\n#abc\n<rpc/>\n##\n"), ("framed", False), ("tags", MALFORMED))),
    hx("HX-FRAME-002", "RFC 6242 4.2", "a chunk-size above 4294967295", "raw", "\\n#4294967296\\n", refused(MALFORMED),
       params=(("payload", b"\n#4294967296\n<rpc/>"), ("framed", False), ("tags", MALFORMED))),
    hx("HX-FRAME-003", "RFC 6242 4.2", "a chunk claiming 4 GB followed by 1 MiB and silence", "raw",
       "\\n#4294967295\\n then 1 MiB of 'x'", "the server neither waits for 4 GB nor buffers it: refused, or the "
       "session kept without harm; a new session is then answered",
       params=(("payload", b"\n#4294967295\n" + b"x" * (1 << 20)), ("framed", False), ("silence_ok", True),
               ("tags", TOO_BIG))),
    hx("HX-SIZE-001", "RFC 6241 4.3 (too-big)", "a 20 MiB rpc", "raw", "<rpc> with a 20 MiB filter", refused(TOO_BIG),
       params=(("payload", b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><get-config>'
                            b"<source><running/></source><filter>" + b"<a/>" * (5 << 20) + b"</filter></get-config></rpc>"),
               ("tags", TOO_BIG))),
    hx("HX-XML-001", "RFC 6241 3 (XML); billion laughs", "an entity bomb (10^9 expansions) is not expanded", "raw",
       "<!DOCTYPE> with nested entities", refused(TOO_BIG) + "; the reply is small",
       params=(("payload", BOMB), ("max_reply", 65536), ("tags", TOO_BIG))),
    hx("HX-XML-002", "RFC 6241 3 (XML); XXE", "an external entity (file:///etc/passwd) is not loaded", "raw",
       "<!ENTITY x SYSTEM 'file:///etc/passwd'>", "no file content in the reply (refused, or the DTD ignored); "
       "a new session is then answered", params=(("payload", XXE), ("forbidden", "root:x:0:0"), ("answer_ok", True))),
    hx("HX-XML-003", "RFC 6241 3 (XML)", "100,000 nested elements", "raw", "<a><a>... 100,000 deep",
       "refused or answered, without harm: a new session is then answered", params=(("answer_ok", True),("payload", b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><get-config><source>'
                            b"<running/></source><filter>" + b"<a>" * 100_000 + b"</a>" * 100_000
                            + b"</filter></get-config></rpc>"),)),
    hx("HX-XML-004", "RFC 6241 3 (XML)", "a message that is not well-formed XML", "raw", "<rpc><get-config></rpc>",
       refused(MALFORMED), params=(("payload", b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1">'
                                    b"<get-config></rpc>"), ("tags", MALFORMED))),
    hx("HX-LOCK-001", "RFC 6241 7.5", "a lock held by a session whose connection drops (no close-session) is released",
       "lock_dropped", "lock, then drop the TCP connection", "another session gets the lock within 5 s"),
    hx("HX-LOCK-002", "RFC 6241 7.9", "kill-session of the lock holder releases its lock", "lock_killed",
       "lock on session A; kill-session A from session B", "B gets the lock at once"),
    hx("HX-CONF-001", "RFC 6241 8.4.5.1", "confirm-timeout nan: invalid-value, nothing committed", "confirm_timeout",
       "commit confirmed, confirm-timeout nan", "rpc-error invalid-value (or bad-element); running unchanged",
       params=(("value", "nan"),), requires=(C + "candidate:1.0", C + "confirmed-commit:1.")),
    hx("HX-CONF-002", "RFC 6241 8.4.5.1", "confirm-timeout 4294967296 (beyond uint32): invalid-value", "confirm_timeout",
       "commit confirmed, confirm-timeout 4294967296", "rpc-error invalid-value (or bad-element); running unchanged",
       params=(("value", "4294967296"),), requires=(C + "candidate:1.0", C + "confirmed-commit:1.")),
    hx("HX-RES-001", "RFC 6241 (resources)", "20 sessions opened at once", "many_sessions", "20 SSH sessions",
       "each gets a hello or a clean refusal; a new session is then answered", params=(("sessions", 20),)),
    hx("HX-RES-002", "RFC 6241 4.1 (resources)", "2,000 rpcs pipelined without reading", "pipelined",
       "2,000 get-config in one write", "2,000 replies in order, message-ids 1..2000", params=(("count", 2000),)),
]


async def _alive(ctx: NetconfContext, ev: Evidence) -> Outcome | None:
    """None when a new session is answered, else the failure."""
    try:
        s = await ctx.fresh()
        reply = await s.rpc(ctx.fill("<get-config><source><running/></source>{FILTER_ROOT}</get-config>"), timeout=15)
    except Exception as exc:  # noqa: BLE001 - anything here means the server is not answering
        return Outcome(Verdict.FAIL, f"afterwards the server no longer answers a new session ({type(exc).__name__}: {exc})")
    if reply.data is None:
        return Outcome(Verdict.FAIL, "afterwards a new session's get-config fails: " + describe_errors(reply.errors))
    ev.note("afterwards a new session was answered")
    return None


def judge_answer(check: Check, reply: Reply) -> Outcome:
    """A hostile message the server answered rather than closing the session: refused with an
    rpc-error of one of the check's `tags` (any tag where it names none), or, where `answer_ok`,
    answered at all. (pure)"""
    tags = check.param("tags")
    if reply.errors and tags and not check.param("answer_ok"):
        outcome = evaluate(Error(tags), reply)
        outcome.reason = "rpc-error: " + describe_errors(reply.errors) + (
            "" if outcome.verdict is Verdict.PASS else f"; expected {' or '.join(tags)}")
        return outcome
    if reply.errors:
        return Outcome(Verdict.PASS, "rpc-error: " + describe_errors(reply.errors))
    if check.param("answer_ok"):
        return Outcome(Verdict.PASS, "answered without rpc-error, and without harm")
    return Outcome(Verdict.FAIL, "the server answered without rpc-error")


@step("raw")
async def raw(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    payload: bytes = check.param("payload")
    s = await ctx.fresh()
    ev_sent = clip(payload[:400].decode(errors="replace"), 400) + (f" ... ({len(payload):,} bytes)" if len(payload) > 400 else "")
    try:
        s.write(payload, framed=check.param("framed", True))
        reply = await s.read(timeout=20)
        received = reply.text()
        outcome = judge_answer(check, reply)
    except (SessionClosed, OSError, ConnectionError) as exc:
        received = f"(session ended: {exc or type(exc).__name__})"
        outcome = Outcome(Verdict.PASS, "the server closed the session")
    except TimeoutError:
        received = "(no reply within 20 s)"
        outcome = (Outcome(Verdict.PASS, "the server kept waiting for the rest, without harm")
                   if check.param("silence_ok") else Outcome(Verdict.FAIL, "no reply and no close within 20 s"))
    ev.add(ev_sent, clip(received))
    s.abort()
    if check.param("max_reply") and len(received) > check.param("max_reply"):
        return Outcome(Verdict.FAIL, f"a {len(received):,}-byte reply: the entities were expanded")
    if check.param("forbidden") and check.param("forbidden") in received:
        return Outcome(Verdict.FAIL, "the reply contains the external file's content")
    return await _alive(ctx, ev) or outcome


async def _lock_free(ctx: NetconfContext, ev: Evidence, within: float) -> bool:
    b = await ctx.fresh()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        reply = await b.rpc("<lock><target><running/></target></lock>")
        if reply.ok:
            ev.add(*map(clip, b.transcript[-1]))
            await b.rpc("<unlock><target><running/></target></unlock>")
            return True
        if loop.time() > deadline:
            ev.add(*map(clip, b.transcript[-1]))
            return False
        await asyncio.sleep(0.2)


async def _holding_the_lock(ctx: NetconfContext, ev: Evidence) -> tuple[NetconfSession, Outcome | None]:
    """A fresh session that took the running lock, or ERROR when it could not."""
    a = await ctx.fresh()
    reply = await a.rpc("<lock><target><running/></target></lock>")
    ev.add(*map(clip, a.transcript[-1]))
    if not reply.ok:
        return a, Outcome(Verdict.ERROR, "could not take the lock: " + describe_errors(reply.errors))
    return a, None


async def _released(ctx: NetconfContext, ev: Evidence, seconds: float, whose: str) -> Outcome:
    """PASS once another session can take the lock `whose` was, within `seconds`."""
    if await _lock_free(ctx, ev, seconds):
        return Outcome(Verdict.PASS)
    return Outcome(Verdict.FAIL, f"{whose} was still held {seconds:g} s later")


@step("lock_dropped")
async def lock_dropped(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    a, refused = await _holding_the_lock(ctx, ev)
    if refused:
        return refused
    a.abort()
    ev.note("session A's connection dropped without close-session")
    return await _released(ctx, ev, 5.0, "the lock of a dropped session")


@step("lock_killed")
async def lock_killed(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    a, refused = await _holding_the_lock(ctx, ev)
    if refused:
        return refused
    b = await ctx.fresh()
    reply = await b.rpc(f"<kill-session><session-id>{a.session_id}</session-id></kill-session>")
    ev.add(*map(clip, b.transcript[-1]))
    if not reply.ok:
        return Outcome(Verdict.FAIL, "kill-session refused: " + describe_errors(reply.errors))
    return await _released(ctx, ev, 2.0, "the killed session's lock")


@step("confirm_timeout")
async def confirm_timeout(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    s = await ctx.fresh()
    start = len(s.transcript)
    try:
        await s.rpc("<discard-changes/>")
        await s.rpc(ctx.fill(edit("{E1}", "<target><candidate/></target>")))
        reply = await s.rpc(f"<commit><confirmed/><confirm-timeout>{check.param('value')}</confirm-timeout></commit>")
        outcome = evaluate(Error(("invalid-value", "bad-element"), about="commit/confirm-timeout"), reply)
        after = evaluate(Data(absent=(HAS_E1,)), await s.rpc(ctx.fill(GET_LIST)), ctx.values)
        if after.verdict is not Verdict.PASS:
            return Outcome(Verdict.FAIL, "running has the change: " + after.reason)
        return outcome
    finally:
        await s.rpc("<discard-changes/>")
        await clean_entries(ctx, s)
        for sent, received in s.transcript[start:]:
            ev.add(clip(sent), clip(received))


@step("many_sessions")
async def many_sessions(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    n = int(check.param("sessions", 20))
    results = await asyncio.gather(*(ctx.fresh() for _ in range(n)), return_exceptions=True)
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    ev.note(f"{len(opened)} sessions opened, {len(refused)} refused"
            + (f" (first: {type(refused[0]).__name__}: {refused[0]})" if refused else ""))
    for s in opened:
        s.abort()
    ctx.extra = [s for s in ctx.extra if s not in opened]
    await asyncio.sleep(0.5)
    return await _alive(ctx, ev) or Outcome(Verdict.PASS, f"{len(opened)} of {n} opened")


@step("pipelined")
async def pipelined(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    n = int(check.param("count", 2000))
    s = await ctx.fresh()
    body = ctx.fill("<get-config><source><running/></source>{FILTER_ROOT}</get-config>")
    s.write(b"".join(s.framer.frame(f'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="{i}">'
                                    f"{body}</rpc>".encode()) for i in range(1, n + 1)), framed=False)
    ev.add(f"{n} x <rpc message-id=i>{body}</rpc> in one write", "")
    for i in range(1, n + 1):
        try:
            reply = await s.read(timeout=30)
        except (TimeoutError, SessionClosed) as exc:
            return Outcome(Verdict.FAIL, f"reply {i} of {n} missing ({exc or type(exc).__name__})")
        mid = reply.root.get("message-id") if reply.root is not None else None
        if mid != str(i):
            ev.add("", clip(reply.text()))
            return Outcome(Verdict.FAIL, f"reply {i} has message-id {mid!r}")
    return await _alive(ctx, ev) or Outcome(Verdict.PASS, f"{n} replies in order")


register(CHECKS)
