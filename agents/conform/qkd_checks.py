"""QKD behaviour (ETSI GS QKD 015 V2.1.1 on a twin or a real device), driven over NETCONF.

The link life cycle: a `qkd_link` that is ACTIVE and gets `qkdl_enable false` must leave ACTIVE;
enabled again it must come back. Key-rate figures: an ACTIVE link reports `skr` and a QBER
(`phys_perf[perf_type=QBER]/value`, a fraction) within physical bounds. The run picks the first
ACTIVE link it finds and always enables it again; without one, the checks are not applicable.
A link that is enabled but not ACTIVE yet is waited for (a controller's closed loop may be
re-routing it, as under `qstrata up`): the checks never depend on the network being quiet.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from lxml import etree
from qstrata.bindings.wire.netconf_client import NetconfSession

from .model import Check, Evidence, Outcome, Verdict, register
from .netconf_runner import NetconfContext, clip, describe_errors
from .profiles import ETSI_NS, ETSI_TYPES

QBER_MAX = 0.5
"""A QBER above one half means no correlation at all: no physical link reports more."""


def qkd(id: str, clause: str, title: str, step: str, send: str, expect: str) -> Check:
    return Check(id=id, clause=clause, title=title, protocol="qkd", step=step, send=send, expect=expect,
                 profiles=frozenset({"etsi-qkd-015"}))


CHECKS = [
    qkd("QKD-LINK-001", "ETSI GS QKD 015 V2.1.1: qkd_link qkdl_enable, qkdl_status", "a disabled ACTIVE link leaves ACTIVE",
        "link_disable", "edit-config qkdl_enable false on an ACTIVE qkd_link", "qkdl_status not ACTIVE within the timeout"),
    qkd("QKD-LINK-002", "ETSI GS QKD 015 V2.1.1: qkd_link qkdl_enable, qkdl_status", "enabled again, the link returns to ACTIVE",
        "link_enable", "edit-config qkdl_enable true", "qkdl_status ACTIVE within the timeout"),
    qkd("QKD-PERF-001", "ETSI GS QKD 015 V2.1.1: qkdl_performance/skr", "an ACTIVE link reports skr > 0 (bit/s)",
        "perf_skr", "get qkdl_performance of the ACTIVE link", "skr present, 0 < skr < 2^32"),
    qkd("QKD-PERF-002", "ETSI GS QKD 015 V2.1.1: qkdl_performance/phys_perf QBER", "an ACTIVE PHYS link reports its QBER in [0, 0.5]",
        "perf_qber", "get qkdl_performance/phys_perf of the ACTIVE link", "phys_perf[QBER]/value present, 0 <= value <= 0.5"),
]


@dataclass
class LinkState:
    link_id: str
    enable: str
    status: str
    type: str
    skr: str | None
    qber: str | None


def _local(el) -> str:
    return etree.QName(el).localname


async def read_links(session: NetconfSession, ev: Evidence | None = None) -> list[LinkState]:
    reply = await session.rpc(f'<get><filter type="subtree"><qkd_node xmlns="{ETSI_NS}"><qkd_links/></qkd_node>'
                              "</filter></get>")
    if ev is not None:
        ev.add(*map(clip, session.transcript[-1]))
    out = []
    if reply.data is None:
        return out
    for link in reply.data.iter(f"{{{ETSI_NS}}}qkd_link"):
        def text(name: str, el=link) -> str | None:
            found = el.find(f"{{{ETSI_NS}}}{name}")
            return None if found is None else (found.text or "").strip()
        skr = qber = None
        perf = link.find(f"{{{ETSI_NS}}}qkdl_performance")
        if perf is not None:
            skr = text("skr", perf)
            for p in perf.iter(f"{{{ETSI_NS}}}phys_perf"):
                if (p.findtext(f"{{{ETSI_NS}}}perf_type") or "").strip().endswith("QBER"):
                    qber = (p.findtext(f"{{{ETSI_NS}}}value") or "").strip()
        out.append(LinkState(text("qkdl_id") or "", text("qkdl_enable") or "true", (text("qkdl_status") or "").split(":")[-1],
                             (text("qkdl_type") or "").split(":")[-1], skr, qber))
    return out


async def _status(session: NetconfSession, link_id: str) -> str:
    for link in await read_links(session):
        if link.link_id == link_id:
            return link.status
    return "(absent)"


async def _set_enable(ctx: NetconfContext, link_id: str, enable: bool, ev: Evidence) -> str | None:
    body = (f'<edit-config><target><running/></target><config><qkd_node xmlns="{ETSI_NS}" xmlns:qt="{ETSI_TYPES}">'
            f"<qkd_links><qkd_link><qkdl_id>{link_id}</qkdl_id><qkdl_enable>{str(enable).lower()}</qkdl_enable>"
            "</qkd_link></qkd_links></qkd_node></config></edit-config>")
    reply = await ctx.session.rpc(body)
    ev.add(*map(clip, ctx.session.transcript[-1]))
    return describe_errors(reply.errors) if reply.errors else None


async def _wait_status(ctx: NetconfContext, link_id: str, active: bool, timeout: float, ev: Evidence) -> tuple[bool, float, str]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    status = ""
    while loop.time() - start < timeout:
        status = await _status(ctx.session, link_id)
        if (status == "ACTIVE") == active:
            ev.note(f"qkdl_status {status} after {loop.time() - start:.1f} s")
            return True, loop.time() - start, status
        await asyncio.sleep(0.25)
    ev.note(f"qkdl_status still {status} after {timeout:g} s")
    return False, timeout, status


class _Cycle:
    """The disable/enable cycle runs once per run; both link checks report their half of it."""

    def __init__(self) -> None:
        self.link: LinkState | None = None
        self.disable: Outcome | None = None
        self.enable: Outcome | None = None
        self.evidence = Evidence()


async def _cycle(ctx: NetconfContext, timeout: float) -> _Cycle:
    cycle: _Cycle | None = getattr(ctx, "_qkd_cycle", None)
    if cycle is not None:
        return cycle
    cycle = _Cycle()
    ctx._qkd_cycle = cycle  # type: ignore[attr-defined]
    ev = cycle.evidence
    found = await _active_link(ctx, ev, timeout)
    if found is None:
        reason = "no qkd_link is ACTIVE on the device: configure one to test the link life cycle"
        cycle.disable = cycle.enable = Outcome(Verdict.NOT_APPLICABLE, reason)
        return cycle
    link = cycle.link = found
    ev.note(f"link {link.link_id} ({link.type}) is ACTIVE")
    try:
        error = await _set_enable(ctx, link.link_id, False, ev)
        cycle.disable = await _followed(ctx, link.link_id, False, error, timeout, ev)
    finally:
        error = await _set_enable(ctx, link.link_id, True, ev)  # the link is left as it was found
    cycle.enable = await _followed(ctx, link.link_id, True, error, timeout, ev)
    return cycle


async def _followed(ctx: NetconfContext, link_id: str, enable: bool, error: str | None, timeout: float,
                    ev: Evidence) -> Outcome:
    """Whether the link's status followed qkdl_enable set to `enable` within `timeout` (`error`:
    the device refused the edit)."""
    word = str(enable).lower()
    if error:
        return Outcome(Verdict.FAIL, f"qkdl_enable {word} refused: {error}")
    ok, _, status = await _wait_status(ctx, link_id, enable, timeout, ev)
    if ok:
        return Outcome(Verdict.PASS)
    state = f"{status}, not ACTIVE," if enable else f"still {status}"
    return Outcome(Verdict.FAIL, f"{state} {timeout:g} s after qkdl_enable {word}")


async def _active_link(ctx: NetconfContext, ev: Evidence, timeout: float, phys: bool = False) -> LinkState | None:
    """The first ACTIVE link (PHYS when asked). A link that is enabled but not ACTIVE (still coming
    up, or being re-routed by a controller's closed loop, as under `qstrata up`) is waited for, up
    to `timeout`, and only once a run: a device whose enabled links never come up costs one wait."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (0 if getattr(ctx, "_qkd_waited", False) else timeout)
    while True:
        links = [link for link in await read_links(ctx.session) if not phys or link.type == "PHYS"]
        active = next((link for link in links if link.status == "ACTIVE"), None)
        waiting = [link.link_id for link in links if link.enable == "true" and link.status != "ACTIVE"]
        if active is not None or not waiting or loop.time() >= deadline:
            break
        await asyncio.sleep(0.5)
    ev.add(*map(clip, ctx.session.transcript[-1]))
    if active is None and waiting:
        ctx._qkd_waited = True  # type: ignore[attr-defined]
        ev.note(f"enabled but not ACTIVE after {timeout:g} s: {', '.join(waiting)}")
    return active


async def run_check(ctx: NetconfContext, gctx, check: Check, ev: Evidence, timeout: float) -> Outcome:
    if check.step in ("link_disable", "link_enable"):
        cycle = await _cycle(ctx, timeout)
        if check.step == "link_disable":
            ev.exchanges.extend(cycle.evidence.exchanges)
            ev.notes.extend(cycle.evidence.notes)
            return cycle.disable or Outcome(Verdict.ERROR, "cycle did not run")
        ev.note("see QKD-LINK-001 for the exchanges of the cycle")
        return cycle.enable or Outcome(Verdict.ERROR, "cycle did not run")
    link = await _active_link(ctx, ev, timeout, phys=check.step == "perf_qber")
    if link is None:
        return Outcome(Verdict.NOT_APPLICABLE, "no ACTIVE" + (" PHYS" if check.step == "perf_qber" else "") + " qkd_link")
    if check.step == "perf_skr":
        if link.skr is None:
            return Outcome(Verdict.FAIL, f"link {link.link_id} is ACTIVE but reports no skr")
        if not link.skr.isdigit() or not 0 < int(link.skr) < 2**32:
            return Outcome(Verdict.FAIL, f"skr {link.skr!r} of ACTIVE link {link.link_id} is not in (0, 2^32)")
        return Outcome(Verdict.PASS, f"skr {link.skr} bit/s")
    if link.qber is None:
        return Outcome(Verdict.FAIL, f"PHYS link {link.link_id} is ACTIVE but reports no phys_perf QBER")
    try:
        q = float(link.qber)
    except ValueError:
        return Outcome(Verdict.FAIL, f"QBER {link.qber!r} is not a number")
    if not 0 <= q <= QBER_MAX:
        return Outcome(Verdict.FAIL, f"QBER {q} outside [0, {QBER_MAX}]")
    return Outcome(Verdict.PASS, f"QBER {q}")


register(CHECKS)
