"""Runs NETCONF checks: one generic exchange (set-up, send, expect, then, clean-up) and a table of
named steps for what one exchange cannot express. Expectations are evaluated here, purely, on the
parsed reply (`evaluate`), so they are tested without a server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lxml import etree
from qstrata.bindings.wire.netconf_client import BASE, NetconfEndpoint, NetconfSession, Reply, SessionClosed

from .model import Check, Data, Error, Evidence, Ok, Outcome, Steps, Verdict
from .profiles import Profile

TRUNCATE = 3000
CLEAN_ENTRIES = "@clean"
"""In set-up and clean-up lists: delete the profile's test entries that exist in running."""


def clip(text: str, limit: int = TRUNCATE) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"



async def open_session(endpoint: NetconfEndpoint, **kw) -> NetconfSession:
    """A session as the kit uses it: every exchange kept as evidence, replies up to 256 MiB, and
    a pause after the hello (yuma123's netconfd stalls on an rpc in the same read as the hello)."""
    return await NetconfSession.open(endpoint, record=True, hello_pause=0.05, max_message_size=256 << 20, **kw)

@dataclass
class NetconfContext:
    """What every NETCONF check of one run shares: the endpoint, the profile's values, the
    capabilities of the server's first hello and a main session."""

    endpoint: NetconfEndpoint
    profile: Profile
    values: dict[str, str]
    capabilities: set[str]
    session: NetconfSession
    extra: list[NetconfSession] = field(default_factory=list)
    dead: str | None = None
    """Why the server no longer answers (set by the runner); later checks report it."""
    saved: list[bytes] = field(default_factory=list)
    """The test entries as the device had them before the run (`saved_entries`)."""

    async def fresh(self, **kw) -> NetconfSession:
        s = await open_session(self.endpoint, **kw)
        self.extra.append(s)
        return s

    def fill(self, template: str, values: dict[str, str] | None = None) -> str:
        return template.format_map(values or self.values) if "{" in template else template

    def has(self, capability: str) -> bool:
        return any(c.startswith(capability) for c in self.capabilities)

    async def close_extra(self) -> None:
        for s in self.extra:
            await s.close()
        self.extra.clear()


# ------------------------------------------------------------------ expectations


def evaluate(expect, reply: Reply, values: dict[str, str] | None = None) -> Outcome:
    """Does `reply` meet `expect`? (pure)"""
    values = values or {}
    if reply.root is None:
        return Outcome(Verdict.FAIL, f"reply is not well-formed XML: {reply.parse_error}")
    if etree.QName(reply.root).localname != "rpc-reply" or etree.QName(reply.root).namespace != BASE:
        return Outcome(Verdict.FAIL, f"expected an rpc-reply in {BASE}, got <{reply.root.tag}>")
    errors = reply.errors
    if isinstance(expect, Ok):
        if errors:
            return Outcome(Verdict.FAIL, "rpc-error: " + describe_errors(errors))
        return Outcome(Verdict.PASS) if reply.ok else Outcome(Verdict.FAIL, "rpc-reply without <ok/>")
    if isinstance(expect, Data):
        if errors:
            return Outcome(Verdict.FAIL, "rpc-error: " + describe_errors(errors))
        data = reply.data
        if data is None:
            return Outcome(Verdict.FAIL, "rpc-reply without <data>")
        for p in expect.present:
            p = p.format_map(values)
            if not find(data, p):
                return Outcome(Verdict.FAIL, f"{p} is not in the data")
        for p in expect.absent:
            p = p.format_map(values)
            if find(data, p):
                return Outcome(Verdict.FAIL, f"{p} is in the data")
        return Outcome(Verdict.PASS)
    if isinstance(expect, Error):
        if not errors:
            return Outcome(Verdict.FAIL, "expected " + _filled(expect.describe(), values) + ", got " + (
                "<ok/>" if reply.ok else "a reply without rpc-error"))
        for e in errors:
            missing = [n for n in ("error-type", "error-tag", "error-severity") if e.find(f"{{{BASE}}}{n}") is None]
            if missing:
                return Outcome(Verdict.FAIL, f"rpc-error without {', '.join(missing)} (RFC 6241 4.3)")
        match = [e for e in errors if (e.findtext(f"{{{BASE}}}error-tag") or "").strip() in expect.tags]
        if not match:
            return Outcome(Verdict.FAIL, f"error-tag {describe_errors(errors)}; expected {' or '.join(expect.tags)}")
        problems = [_error_problem(expect, e, values) for e in match]
        if None in problems:
            return Outcome(Verdict.PASS)
        return Outcome(Verdict.FAIL, problems[0])
    raise TypeError(f"not a NETCONF expectation: {expect!r}")


def _error_problem(expect: Error, e: etree._Element, values: dict[str, str]) -> str | None:
    """Why this rpc-error (whose tag is expected) is not the one `expect` asks for, or None."""
    if expect.error_type and (e.findtext(f"{{{BASE}}}error-type") or "").strip() != expect.error_type:
        return f"error-type {e.findtext(f'{{{BASE}}}error-type')}, expected {expect.error_type}"
    got = (e.findtext(f"{{{BASE}}}error-path") or "").strip()
    if expect.path:
        want = expect.path.format_map(values)
        if not got:
            return f"no error-path (expected one ending in {want})"
        if not path_ends_with(got, want):
            return f"error-path {got} does not end in {want}"
    info = e.find(f"{{{BASE}}}error-info")
    items = [] if info is None else [c for c in info if isinstance(c.tag, str)]
    if expect.info:
        name, has_value, value = _filled(expect.info, values).partition("=")
        named = [(c.text or "").strip() for c in items if etree.QName(c).localname == name]
        if not named:
            return f"error-info without <{name}>"
        # a name may come qualified (netconfd: bad-attribute nc:message-id): prefixes are the server's
        if has_value and value not in named and (":" in value or value not in {n.rsplit(":", 1)[-1] for n in named}):
            return f"error-info <{name}> is {', '.join(named)}, expected {value}"
    if expect.about:
        about = _filled(expect.about, values)
        bad = {(c.text or "").strip().split(":")[-1] for c in items if etree.QName(c).localname == "bad-element"}
        if not (got and path_ends_with(got, about)) and about.rsplit("/", 1)[-1] not in bad:
            return (f"the error is not about {about}: error-path {got or '(none)'}, "
                    f"bad-element {', '.join(sorted(bad)) or '(none)'}")
    return None


def _filled(text: str, values: dict[str, str]) -> str:
    try:
        return text.format_map(values)
    except (KeyError, ValueError, IndexError):
        return text


def describe_errors(errors: list[etree._Element]) -> str:
    out = []
    for e in errors:
        tag = (e.findtext(f"{{{BASE}}}error-tag") or "?").strip()
        path = (e.findtext(f"{{{BASE}}}error-path") or "").strip()
        msg = (e.findtext(f"{{{BASE}}}error-message") or "").strip()
        out.append(" ".join(filter(None, (tag, path and f"at {path}", msg and f"({msg[:120]})"))))
    return "; ".join(out)


_STEP = re.compile(r"([^/\[]+)((?:\[[^\]]*\])*)")
_PRED = re.compile(r"\[([^=\]]+)=([^\]]*)\]")


def find(root: etree._Element, path: str) -> bool:
    """Does a local-name path (``a/b[k=v]/c`` optionally ending ``=value``) exist below `root`?
    The first step matches at any depth, the others are children."""
    value = None
    last = path.rsplit("/", 1)[-1]
    if "=" in last and not last.rstrip().endswith("]"):
        path, value = path.rsplit("=", 1)
    current = find_all(root, path)
    if value is None:
        return bool(current)
    return any((el.text or "").strip() == value.strip() for el in current)


def find_all(root: etree._Element, path: str) -> list[etree._Element]:
    """The elements at a local-name path (``a/b[k=v]/c``) below `root` (see `find`)."""
    steps = [_STEP.fullmatch(s) for s in _split(path)]
    if not all(steps):
        raise ValueError(f"bad data path {path!r}")
    current = [el for el in root.iter() if _matches(el, steps[0])]
    for step in steps[1:]:
        current = [c for el in current for c in el if _matches(c, step)]
    return current


def _split(path: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in path:
        if ch == "/" and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    parts.append(cur)
    return [p for p in parts if p]


def _matches(el, step: re.Match) -> bool:
    if not isinstance(el.tag, str) or etree.QName(el).localname != step.group(1):
        return False
    for key, val in _PRED.findall(step.group(2) or ""):
        if not any(isinstance(c.tag, str) and etree.QName(c).localname == key.strip() and (c.text or "").strip() == val.strip()
                   for c in el):
            return False
    return True


def path_ends_with(error_path: str, expected: str) -> bool:
    """Compare local names only: ``/p:a/p:b[p:k='x']/p:c`` ends with ``b/c``."""
    def names(p: str) -> list[str]:
        return [s.split(":")[-1] for s in (re.sub(r"\[[^\]]*\]", "", x) for x in _split(p)) if s]
    got, want = names(error_path), names(expected)
    return len(want) <= len(got) and got[-len(want):] == want


# ------------------------------------------------------------------ running


StepFn = Callable[[NetconfContext, Check, Evidence], Awaitable[Outcome]]
STEPS: Steps[StepFn] = Steps()
step = STEPS.step


def applicable(ctx: NetconfContext, check: Check) -> str | None:
    """None when the check applies, else why not."""
    for cap in check.requires:
        if not ctx.has(cap):
            return f"capability {cap} not advertised"
    for cap in check.requires_absent:
        if ctx.has(cap):
            return f"capability {cap} advertised"
    return None


async def run_check(ctx: NetconfContext, check: Check, ev: Evidence) -> Outcome:
    reason = applicable(ctx, check)
    if reason:
        return Outcome(Verdict.NOT_APPLICABLE, reason)
    if check.step:
        return await STEPS[check.step](ctx, check, ev)
    session = await ctx.fresh() if check.fresh_session else ctx.session
    other = await ctx.fresh() if check.param("on") == "other" else None
    # {SID}: the session the set-up runs on (its own one with fresh_session), e.g. a lock's holder
    values = {**ctx.values, "SID": session.session_id or "0"}
    start = len(session.transcript)
    other_start = 0
    try:
        for body in check.setup:
            if body == CLEAN_ENTRIES:
                await clean_entries(ctx, session)
                continue
            reply = await session.rpc(ctx.fill(body, values))
            if reply.errors or reply.root is None:
                return Outcome(Verdict.ERROR, "set-up failed: " + (describe_errors(reply.errors) or reply.parse_error))
        sender = other or session
        other_start = len(sender.transcript)
        reply = await sender.rpc(ctx.fill(check.send, values), attributes=check.param("attributes"))
        outcome = evaluate(check.expect, reply, values)
        if outcome.verdict is Verdict.PASS:
            for body, expect in check.then:
                reply = await session.rpc(ctx.fill(body, values))
                outcome = evaluate(expect, reply, values)
                if outcome.verdict is not Verdict.PASS:
                    outcome.reason = "afterwards: " + outcome.reason
                    break
        return outcome
    finally:
        for body in check.cleanup:
            try:
                if body == CLEAN_ENTRIES:
                    await clean_entries(ctx, session)
                else:
                    await session.rpc(ctx.fill(body, values), timeout=10)
            except (SessionClosed, TimeoutError):
                break
        _collect(ev, session.transcript[start:])
        if other is not None:
            ev.note("sent on a second session")
            _collect(ev, other.transcript[other_start:])


async def clean_entries(ctx: NetconfContext, session: NetconfSession) -> None:
    """Delete the test entries present in running (one edit; nothing sent when none is)."""
    reply = await session.rpc(ctx.fill("<get-config><source><running/></source>{FILTER}</get-config>"), timeout=10)
    if reply.data is None:
        return
    v = ctx.values
    present = [n for n in (1, 2, 3) if find(reply.data, f"{v['LIST']}[{v['KEY']}={v[f'K{n}']}]")]
    if present:
        body = "".join(v[f"E{n}_delete"] for n in present)
        await session.rpc(f"<edit-config><target><running/></target><config>{v['R0']}{body}{v['R1']}</config>"
                          "</edit-config>", timeout=10)


async def saved_entries(ctx: NetconfContext, session: NetconfSession) -> list[bytes]:
    """The test entries as running holds them before the run. On a switch they are real ports
    (it refuses configuration for ports it does not have), configured by its operator: the run
    puts them back as they were (`restore_entries`), whatever the checks and clean-ups did."""
    reply = await session.rpc(ctx.fill("<get-config><source><running/></source>{FILTER}</get-config>"), timeout=10)
    if reply.data is None:
        return []
    v = ctx.values
    return [etree.tostring(el) for n in (1, 2, 3) for el in find_all(reply.data, f"{v['LIST']}[{v['KEY']}={v[f'K{n}']}]")]


async def restore_entries(ctx: NetconfContext, session: NetconfSession, saved: list[bytes]) -> None:
    """Put the entries `saved_entries` read back into running, each as it was (after the clean-up
    deleted whatever the checks left of them)."""
    if not saved:
        return
    entries = []
    for text in saved:
        el = etree.fromstring(text)
        el.set(f"{{{BASE}}}operation", "replace")
        entries.append(etree.tostring(el).decode())
    v = ctx.values
    await session.rpc(f"<edit-config><target><running/></target><config>{v['R0']}{''.join(entries)}{v['R1']}"
                      "</config></edit-config>", timeout=10)


def _collect(ev: Evidence, transcript: list[tuple[str, str]]) -> None:
    for sent, received in transcript:
        ev.add(clip(sent), clip(received))


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.2) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await predicate():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)
