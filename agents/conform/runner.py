"""One conformance run: pick the checks (profile, protocols, --hostile), prepare each protocol's
context once, run every check with a time limit, and turn anything unexpected into an `error`
result with its reason, so one broken check never hides the others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree
from qstrata.bindings.wire.netconf_client import (
    BASE,
    NetconfEndpoint,
    NetconfSession,
    NetconfUnavailable,
    SessionClosed,
)

from . import gnmi_checks, hostile_checks, kme_checks, netconf_checks, qkd_checks, rc_checks  # noqa: F401 - they register checks
from .gnmi_runner import GnmiContext, GnmiEndpoint, GnmiUnavailable
from .gnmi_runner import run_check as run_gnmi
from .kme_runner import KmeContext, KmeEndpoint
from .kme_runner import run_check as run_kme
from .model import REGISTRY, Check, Evidence, Outcome, Result, Verdict
from .netconf_runner import NetconfContext, clean_entries, clip, open_session, restore_entries, saved_entries
from .netconf_runner import run_check as run_netconf
from .profiles import PROFILES, Profile
from .qkd_checks import run_check as run_qkd
from .rc_checks import RC_PROFILES
from .rc_runner import JSON_MEDIA, RcContext, RcEndpoint, Request
from .rc_runner import run_check as run_rc

CHECK_TIMEOUT = 60.0
PROTOCOL_ORDER = ("netconf", "gnmi", "restconf", "qkd", "kme", "hostile")
"""Reports list NETCONF first: QKD checks drive the device over it, hostile ones may break it."""


@dataclass
class RunOptions:
    profile: str = "etsi-qkd-015"
    netconf: NetconfEndpoint | None = None
    gnmi: GnmiEndpoint | None = None
    kme: KmeEndpoint | None = None
    """The ETSI GS QKD 014 key delivery API (profile etsi-qkd-014)."""
    restconf: RcEndpoint | None = None
    """RESTCONF (RFC 8040): with neither NETCONF nor gNMI given, a run of the RESTCONF checks only."""
    hostile: bool = False
    only: tuple[str, ...] = ()
    """Check ids or id prefixes to run (empty: all of the profile)."""
    skip: tuple[str, ...] = ()
    """Check ids or id prefixes not to run (say, one that is known to crash the device)."""
    qkd_timeout: float = 60.0


@dataclass
class RunReport:
    profile: str
    targets: dict[str, str]
    results: list[Result] = field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0
    device: dict[str, object] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for r in self.results:
            out[r.verdict.value] += 1
        return out

    @property
    def failed(self) -> bool:
        return any(r.verdict is Verdict.FAIL for r in self.results)


def select(options: RunOptions) -> list[Check]:
    checks = [c for c in REGISTRY.values() if options.profile in c.profiles and (options.hostile or not c.hostile)]
    if options.only:
        checks = [c for c in checks if any(c.id == o or c.id.startswith(o) for o in options.only)]
    if options.skip:
        checks = [c for c in checks if not any(c.id == o or c.id.startswith(o) for o in options.skip)]
    if options.restconf and not options.netconf and not options.gnmi:
        checks = [c for c in checks if c.protocol == "restconf"]
    return sorted(checks, key=lambda c: PROTOCOL_ORDER.index(c.protocol) if c.protocol in PROTOCOL_ORDER else 99)


def unknown_checks(options: RunOptions) -> str | None:
    """The first --check or --skip that names no check of any profile (a typo would otherwise
    select nothing, and nothing would pass as all passed)."""
    return next((o for o in (*options.only, *options.skip)
                 if not any(c.id == o or c.id.startswith(o) for c in REGISTRY.values())), None)


def check_prefixes(options: RunOptions) -> list[str]:
    """The protocols of the profile's checks (NC-, RC-, ...), for a hint."""
    return sorted({c.id.split("-", 1)[0] + "-" for c in REGISTRY.values() if options.profile in c.profiles})


async def run(options: RunOptions, progress: Callable[[Result], None] | None = None) -> RunReport:
    if options.kme is not None:
        return await _run_kme(options, progress)
    profile = PROFILES[options.profile]
    report = RunReport(options.profile, {}, started=time.time())
    if options.netconf:
        report.targets["netconf"] = f"{options.netconf.host}:{options.netconf.port}"
    if options.gnmi:
        report.targets["gnmi"] = f"{options.gnmi.host}:{options.gnmi.port}"
        if options.gnmi.target:
            report.targets["gnmi_target"] = options.gnmi.target
    if options.restconf:
        report.targets["restconf"] = options.restconf.url
    t0 = time.monotonic()
    checks = select(options)
    nctx = await _netconf_context(options, profile, report) if options.netconf else None
    gctx = await _gnmi_context(options, profile, report) if options.gnmi else None
    rctx = await _rc_context(options, report) if options.restconf else None
    try:
        for check in checks:
            result = await _run_one(check, nctx, gctx, options, rctx)
            report.results.append(result)
            if progress:
                progress(result)
            if nctx is not None and nctx.dead is None:
                await _heal(nctx, options, check)
                if nctx.dead and result.verdict is Verdict.ERROR:
                    # the device went away during this check and accepts no session since: that is
                    # the device failing (a crash on what was sent), not the check
                    result.verdict = Verdict.FAIL
                    result.reason = "the server ended the session and accepts no new one: " + nctx.dead
    finally:
        if nctx is not None and nctx.dead is None:
            await _cleanup(nctx)
            await _restore(nctx, report)
            await nctx.close_extra()
            await nctx.session.close()
        if nctx is not None and nctx.dead:
            report.device["netconf_stopped"] = nctx.dead
        if gctx is not None:
            await gctx.close()
        if rctx is not None:
            await _rc_restore(rctx, report)
            await rctx.close()
    report.seconds = time.monotonic() - t0
    return report


async def _rc_context(options: RunOptions, report: RunReport) -> RcContext:
    """The RESTCONF session: root found through host-meta, the profile's test entries removed."""
    assert options.restconf is not None
    ctx = await RcContext.open(options.restconf)
    ctx.values |= RC_PROFILES[options.profile].values(options.profile, ctx.root)
    report.device["restconf_root"] = ctx.root
    if options.restconf.ca is None:
        report.device["restconf_tls"] = "server certificate not verified (no CA given)"
    if not options.netconf:  # else NETCONF keeps them (`saved_entries`)
        for n in (1, 2, 3):
            got = await ctx.send(Request("GET", ctx.values[f"entry{n}"] + "?content=config", (("Accept", JSON_MEDIA),)))
            if got.status == 200 and got.text.strip():
                ctx.saved.append((ctx.values[f"entry{n}"], got.text))
    for n in (1, 2, 3):
        await ctx.send(Request("DELETE", ctx.values[f"entry{n}"]))
    return ctx


async def _rc_restore(ctx: RcContext, report: RunReport) -> None:
    """The test entries' own configuration back as the run found it, when RESTCONF saved it."""
    for target, body in ctx.saved:  # a PUT replaces whatever the checks left of the entry (RFC 8040 4.5)
        got = await ctx.send(Request("PUT", target, (("Content-Type", JSON_MEDIA),), body))
        if not 200 <= got.status < 300:
            report.device["restore_failed"] = f"PUT {target} answered {got.status or got.error}: not put back"


async def _run_kme(options: RunOptions, progress: Callable[[Result], None] | None) -> RunReport:
    """The key delivery profile: its checks over HTTPS only (no NETCONF, no gNMI)."""
    assert options.kme is not None
    report = RunReport(options.profile, {"kme": options.kme.url}, started=time.time())
    t0 = time.monotonic()
    ctx = await KmeContext.open(options.kme)
    report.targets |= {"master_SAE_ID": ctx.master, "slave_SAE_ID": ctx.slave}
    if options.kme.slave_access.url:
        report.targets["slave_kme"] = options.kme.slave_access.url
    report.device["status"] = ctx.status
    try:
        for check in select(options):
            ev = Evidence()
            t = time.monotonic()
            try:
                outcome = await asyncio.wait_for(run_kme(ctx, check, ev), CHECK_TIMEOUT)
            except TimeoutError:
                outcome = Outcome(Verdict.ERROR, "the check did not finish in time (no reply?)")
            except Exception as exc:  # noqa: BLE001 - a broken check is reported, never crashes the run
                outcome = Outcome(Verdict.ERROR, f"{type(exc).__name__}: {clip(str(exc), 300)}")
            result = Result(check, outcome.verdict, outcome.reason, ev, time.monotonic() - t)
            report.results.append(result)
            if progress:
                progress(result)
    finally:
        await ctx.close()
    report.seconds = time.monotonic() - t0
    return report


async def _netconf_context(options: RunOptions, profile: Profile, report: RunReport) -> NetconfContext:
    session = await open_session(options.netconf)
    try:
        root_key = await _discover_root_key(session, profile)
    except (SessionClosed, TimeoutError, OSError) as exc:
        session.abort()
        raise NetconfUnavailable(f"NETCONF {options.netconf.host}:{options.netconf.port}: no reply to a "
                                 f"get-config after the hello ({exc or type(exc).__name__})") from None
    values = profile.values(root_key)
    values["SID"] = session.session_id or "0"
    ctx = NetconfContext(options.netconf, profile, values, set(session.capabilities), session)
    report.device["netconf_capabilities"] = sorted(session.capabilities)
    report.device["root_key"] = root_key
    try:
        ctx.saved = await saved_entries(ctx, session)
    except (SessionClosed, TimeoutError, OSError):
        ctx.saved = []
    await _cleanup(ctx)
    return ctx


async def _restore(ctx: NetconfContext, report: RunReport) -> None:
    """The device's own configuration of the test entries, back as the run found it."""
    try:
        await restore_entries(ctx, ctx.session, ctx.saved)
    except (SessionClosed, TimeoutError, OSError) as exc:
        report.device["restore_failed"] = f"the test entries' own configuration was not put back: {exc}"


async def _gnmi_context(options: RunOptions, profile: Profile, report: RunReport) -> GnmiContext:
    ctx = await GnmiContext.open(options.gnmi, profile)
    report.device["gnmi_capabilities"] = ctx.capabilities_text
    return ctx


async def _discover_root_key(session: NetconfSession, profile: Profile) -> str | None:
    """The device's own value of the root's mandatory leaf (ETSI qkdn_id), else a fixed one."""
    if not profile.root_key:
        return None
    reply = await session.rpc(f'<get-config><source><running/></source><filter type="subtree">'
                              f'<{profile.root} xmlns="{profile.namespace}"><{profile.root_key}/></{profile.root}>'
                              f"</filter></get-config>")
    if reply.data is not None:
        for el in reply.data.iter():
            if isinstance(el.tag, str) and etree.QName(el).localname == profile.root_key and (el.text or "").strip():
                return el.text.strip()
    from .profiles import test_id
    return test_id(0)


async def _cleanup(ctx: NetconfContext) -> None:
    """Remove the test entries (from an interrupted earlier run too); errors do not matter here."""
    try:
        await clean_entries(ctx, ctx.session)
        if ctx.has("urn:ietf:params:netconf:capability:candidate:1.0"):
            await ctx.session.rpc("<discard-changes/>", timeout=10)
    except (SessionClosed, TimeoutError, OSError):
        pass


async def _heal(ctx: NetconfContext, options: RunOptions, check: Check) -> None:
    """Close sessions a check opened; reopen the main session if a check ended it. A server that
    no longer accepts sessions is marked dead: the checks after it are errors saying so."""
    try:
        await asyncio.wait_for(ctx.close_extra(), 10)
    except (TimeoutError, OSError):
        ctx.extra.clear()
    try:
        await ctx.session.rpc(f'<get-config xmlns="{BASE}"><source><running/></source>'
                              f'<filter type="subtree"><{ctx.profile.root} xmlns="{ctx.profile.namespace}"/></filter>'
                              "</get-config>", timeout=10)
    except Exception:  # noqa: BLE001 - whatever broke the session, a new one is needed
        ctx.session.abort()
        try:
            ctx.session = await open_session(options.netconf)
        except NetconfUnavailable as exc:
            ctx.dead = f"the server stopped accepting sessions during {check.id}: {exc}"
            return
        ctx.values["SID"] = ctx.session.session_id or "0"


async def _run_one(check: Check, nctx: NetconfContext | None, gctx: GnmiContext | None,
                   options: RunOptions, rctx: RcContext | None = None) -> Result:
    ev = Evidence()
    t = time.monotonic()
    try:
        if check.protocol == "netconf" or (check.protocol == "hostile" and check.param("transport") != "gnmi"):
            if nctx is None:
                outcome = Outcome(Verdict.NOT_APPLICABLE, "no --netconf endpoint given")
            elif nctx.dead:
                outcome = Outcome(Verdict.ERROR, nctx.dead)
            else:
                outcome = await asyncio.wait_for(run_netconf(nctx, check, ev), CHECK_TIMEOUT)
        elif check.protocol == "gnmi":
            if gctx is None:
                outcome = Outcome(Verdict.NOT_APPLICABLE, "no --gnmi endpoint given")
            else:
                outcome = await asyncio.wait_for(run_gnmi(gctx, check, ev), CHECK_TIMEOUT)
        elif check.protocol == "restconf":
            if rctx is None:
                outcome = Outcome(Verdict.NOT_APPLICABLE, "no --restconf URL given")
            else:
                outcome = await asyncio.wait_for(run_rc(rctx, check, ev), CHECK_TIMEOUT)
        elif check.protocol == "qkd":
            if nctx is None:
                outcome = Outcome(Verdict.NOT_APPLICABLE, "QKD behaviour is read and driven over NETCONF: no --netconf")
            elif nctx.dead:
                outcome = Outcome(Verdict.ERROR, nctx.dead)
            else:
                outcome = await asyncio.wait_for(run_qkd(nctx, gctx, check, ev, options.qkd_timeout),
                                                 options.qkd_timeout * 2 + 30)
        else:
            outcome = Outcome(Verdict.ERROR, f"no runner for protocol {check.protocol}")
    except TimeoutError:
        outcome = Outcome(Verdict.ERROR, "the check did not finish in time (no reply?)")
    except (SessionClosed, NetconfUnavailable, GnmiUnavailable, OSError) as exc:
        outcome = Outcome(Verdict.ERROR, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a broken check is reported, never crashes the run
        outcome = Outcome(Verdict.ERROR, f"{type(exc).__name__}: {clip(str(exc), 300)}")
    return Result(check, outcome.verdict, outcome.reason, ev, time.monotonic() - t)
