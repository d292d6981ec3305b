"""gNMI checks (gNMI specification 0.10.0, sections cited as "gNMI 3.x") as data, and their steps.

Each check names a step and its parameters; the step sends what `send` says and judges by what
`expect` says, so the report reads the same as for NETCONF."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from dataclasses import dataclass

import grpc
from gnmi_pb import gnmi_pb2
from qstrata.bindings.wire.auth import call_metadata

from .gnmi_runner import ASCII, JSON_IETF, GnmiContext, decode, json_value, judge_error, show, step
from .model import Check, Evidence, GnmiExpect, Outcome, Verdict, register


def gn(id: str, clause: str, title: str, step: str, send: str, expect: GnmiExpect, **kw) -> Check:
    return Check(id=id, clause=clause, title=title, protocol="gnmi", step=step, send=send, expect=expect, **kw)


CHECKS = [
    gn("GN-CAP-001", "gNMI 3.2.2", "Capabilities: version, JSON_IETF encoding and the profile's models",
       "capabilities", "CapabilityRequest{}", GnmiExpect(contains=("gNMI_version", "JSON_IETF", "<modules>"))),
    gn("GN-GET-001", "gNMI 3.3.1, 3.3.3", "Get of the profile's root (CONFIG, JSON_IETF) returns it",
       "get_root", "GetRequest{path:<root> type:CONFIG encoding:JSON_IETF}",
       GnmiExpect(contains=("notification",), echo=True)),
    gn("GN-GET-002", "gNMI 3.3.4", "Get of a path not in the schema: INVALID_ARGUMENT or NOT_FOUND",
       "get_status", "GetRequest{path:<root>/no-such-conform-leaf}",
       GnmiExpect(("INVALID_ARGUMENT", "NOT_FOUND"), control="the same Get of <root>"),
       params=(("path", "no-such-conform-leaf"),)),
    gn("GN-GET-003", "gNMI 3.3.1", "Get in an encoding not advertised (ASCII): UNIMPLEMENTED",
       "get_status", "GetRequest{path:<root> encoding:ASCII}",
       GnmiExpect(("UNIMPLEMENTED",), control="the same Get in JSON_IETF"),
       params=(("path", "/"), ("encoding", ASCII), ("unless_advertised", ASCII))),
    gn("GN-AUTH-001", "gNMI 3.1 (authentication in call metadata)", "a wrong password: UNAUTHENTICATED",
       "wrong_password", "GetRequest with password 'wrong'",
       GnmiExpect(("UNAUTHENTICATED", "PERMISSION_DENIED"), control="the same Get with the right password")),
    gn("GN-SET-001", "gNMI 3.4.1, 3.4.2", "Set update of a leaf; Get reads the new value",
       "set_update", "SetRequest{update:<set leaf>=<value>}", GnmiExpect(contains=("UPDATE",), echo=True)),
    gn("GN-SET-002", "gNMI 3.4.3", "Set with one bad update fails as a whole and changes nothing",
       "set_transaction", "SetRequest{update:[<set leaf>=<value>, <bad leaf>=<bad value>]}",
       GnmiExpect(("ABORTED", "INVALID_ARGUMENT", "FAILED_PRECONDITION"),
                  control="a Set of the good update alone")),
    gn("GN-SUB-001", "gNMI 3.5.1.5.1, 3.5.2.3", "Subscribe ONCE: updates, sync_response, then the stream ends",
       "subscribe_once", "SubscribeRequest{mode:ONCE path:<root>}", GnmiExpect(contains=("sync_response",), echo=True)),
    gn("GN-SUB-002", "gNMI 3.5.1.5.3", "Subscribe POLL: sync_response after the updates and after each poll",
       "subscribe_poll", "SubscribeRequest{mode:POLL}, then Poll{}", GnmiExpect(contains=("sync_response",), echo=True)),
    gn("GN-SUB-003", "gNMI 3.5.1.5.2, 3.5.2.3", "STREAM SAMPLE 1 s: sync_response, samples every 1 s within 10%",
       "subscribe_sample", "SubscribeRequest{mode:STREAM SAMPLE sample_interval:1s}",
       GnmiExpect(contains=("sync_response", "intervals within 10%"), echo=True),
       params=(("interval_s", 1.0), ("samples", 4))),
    gn("GN-SUB-004", "gNMI 3.5.1.5.2", "STREAM ON_CHANGE: sync_response, then a Set is delivered",
       "subscribe_on_change", "SubscribeRequest{mode:STREAM ON_CHANGE path:<set leaf>}; SetRequest",
       GnmiExpect(contains=("sync_response", "update with the new value within 3 s"), echo=True)),
    gn("GN-SUB-005", "gNMI 3.5.1.5.2 (heartbeat_interval)", "ON_CHANGE with heartbeat_interval 1 s re-sends an unchanged leaf",
       "subscribe_heartbeat", "SubscribeRequest{mode:STREAM ON_CHANGE heartbeat_interval:1s}",
       GnmiExpect(contains=("2 updates within 2.8 s of sync_response",), echo=True)),
    gn("GN-SUB-006", "gNMI 3.5.1.5.2", "STREAM TARGET_DEFINED: sync_response", "subscribe_target_defined",
       "SubscribeRequest{mode:STREAM TARGET_DEFINED path:<root>}", GnmiExpect(contains=("sync_response",), echo=True)),
]


@step("capabilities")
async def capabilities(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    caps = ctx.capabilities
    ev.add("CapabilityRequest{}", ctx.capabilities_text)
    if not caps.gNMI_version:
        return Outcome(Verdict.FAIL, "no gNMI_version")
    if JSON_IETF not in caps.supported_encodings:
        return Outcome(Verdict.FAIL, "JSON_IETF not among supported_encodings")
    names = {m.name for m in caps.supported_models}
    missing = [m for m in ctx.profile.modules if m not in names]
    return Outcome(Verdict.FAIL, f"supported_models lacks {', '.join(missing)}") if missing else Outcome(Verdict.PASS)


async def _call(ctx: GnmiContext, method, request, ev: Evidence, *, note: str = "", timeout: float = 10,
                metadata: tuple[tuple[str, str], ...] | None = None) -> tuple[tuple[str, str], object | None]:
    """One unary request: its status (code name, message) and response (None on an error)."""
    try:
        response = await method(request, metadata=metadata or ctx.metadata, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        ev.add(show(request) + note, f"status {exc.code().name}: {exc.details()}")
        return (exc.code().name, exc.details() or ""), None
    ev.add(show(request) + note, show(response))
    return ("OK", ""), response


def _echo(ctx: GnmiContext, responses, outcome: Outcome) -> Outcome:
    """`outcome`, unless the responses do not reflect the request's prefix.target."""
    problem = ctx.echo_problem(responses)
    return Outcome(Verdict.FAIL, problem) if problem and outcome.verdict is Verdict.PASS else outcome


@step("get_root")
async def get_root(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    async with _leaf_set(ctx, ev):
        req = gnmi_pb2.GetRequest(**ctx.prefix, path=[ctx.path("/")], type=gnmi_pb2.GetRequest.CONFIG,
                                  encoding=JSON_IETF)
        resp = await ctx.stub.Get(req, metadata=ctx.metadata, timeout=10)
        ev.add(show(req), show(resp))
    if not resp.notification or not any(n.update for n in resp.notification):
        return Outcome(Verdict.FAIL, "no notification with an update")
    if any(n.timestamp <= 0 for n in resp.notification):
        return Outcome(Verdict.FAIL, "a notification without a timestamp (gNMI 2.2.1)")
    return _echo(ctx, [resp], Outcome(Verdict.PASS))


@step("get_status")
async def get_status(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    """A Get with one mistake (a path or an encoding), then the control: the same Get of the root in
    JSON_IETF, which must succeed for the error to be about the mistake."""
    enc = check.param("encoding", JSON_IETF)
    if check.param("unless_advertised") is not None and check.param("unless_advertised") in ctx.capabilities.supported_encodings:
        return Outcome(Verdict.NOT_APPLICABLE, "the encoding is advertised")
    async with _leaf_set(ctx, ev):
        status, _ = await _call(ctx, ctx.stub.Get, gnmi_pb2.GetRequest(
            **ctx.prefix, path=[ctx.path(check.param("path"))], encoding=enc), ev)
        control, _ = await _call(ctx, ctx.stub.Get, gnmi_pb2.GetRequest(
            **ctx.prefix, path=[ctx.path("/")], encoding=JSON_IETF), ev, note=" (control)")
    return judge_error(check.expect, status, control)


@step("wrong_password")
async def wrong_password(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    req = gnmi_pb2.GetRequest(**ctx.prefix, path=[ctx.path("/")], encoding=JSON_IETF)
    async with _leaf_set(ctx, ev):
        status, _ = await _call(ctx, ctx.stub.Get, req, ev, note=" (password 'wrong')", timeout=15,
                                metadata=call_metadata(ctx.endpoint.username, "wrong"))
        control, _ = await _call(ctx, ctx.stub.Get, req, ev, note=" (control: the right password)")
    return judge_error(check.expect, status, control)


async def _get_leaf(ctx: GnmiContext, leaf: str, ev: Evidence | None = None) -> object:
    """The leaf's value, or None when it has no data (NOT_FOUND)."""
    req = gnmi_pb2.GetRequest(**ctx.prefix, path=[ctx.path(leaf)], encoding=JSON_IETF)
    try:
        resp = await ctx.stub.Get(req, metadata=ctx.metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    if ev is not None:
        ev.add(show(req), show(resp))
    for n in resp.notification:
        for u in n.update:
            v = decode(u.val)
            if isinstance(v, dict) and len(v) == 1:
                v = next(iter(v.values()))
            return v
    return None


@contextlib.asynccontextmanager
async def _leaf_set(ctx: GnmiContext, ev: Evidence):
    """The profile's set leaf holds a value for the duration (so there is data to read, sample or
    beat), and gets its old value (or absence) back afterwards."""
    p = ctx.profile
    before = await _before(ctx, p.gnmi_set_leaf)
    if before.value is None:
        req = gnmi_pb2.SetRequest(**ctx.prefix, update=[
            gnmi_pb2.Update(path=ctx.path(p.gnmi_set_leaf), val=json_value(p.gnmi_set_value))])
        await ctx.stub.Set(req, metadata=ctx.metadata, timeout=10)
        ev.note(f"set {p.gnmi_set_leaf} = {p.gnmi_set_value!r} first, so there is data")
    try:
        yield
    finally:
        if before.value is None:
            await _put_back(ctx, p.gnmi_set_leaf, before)


@dataclass(frozen=True)
class _Before:
    """A set leaf as it was: its value (None: unset) and whether the list entry it sits in
    (`port[port-id=1]` of `port[port-id=1]/label`) had any configuration."""

    value: object
    entry: str | None = None
    """The entry to delete afterwards: it had no configuration before the Set made it."""


async def _before(ctx: GnmiContext, leaf: str) -> _Before:
    value = await _get_leaf(ctx, leaf)
    head = leaf.rpartition("/")[0]
    if value is not None or not head.endswith("]"):
        return _Before(value)
    req = gnmi_pb2.GetRequest(**ctx.prefix, path=[ctx.path(head)], encoding=JSON_IETF, type=gnmi_pb2.GetRequest.CONFIG)
    try:
        resp = await ctx.stub.Get(req, metadata=ctx.metadata, timeout=10)
    except grpc.aio.AioRpcError:
        return _Before(None, head)
    configured = any(u.val.ListFields() for n in resp.notification for u in n.update)
    return _Before(None, None if configured else head)


async def _put_back(ctx: GnmiContext, leaf: str, before: _Before) -> None:
    """The leaf (or, if the Set made it, its whole entry) back as `before` found it."""
    await _restore(ctx, before.entry or leaf, before.value)


async def _restore(ctx: GnmiContext, leaf: str, value: object) -> None:
    if value is None:
        req = gnmi_pb2.SetRequest(**ctx.prefix, delete=[ctx.path(leaf)])
    else:
        req = gnmi_pb2.SetRequest(**ctx.prefix, update=[gnmi_pb2.Update(path=ctx.path(leaf), val=json_value(value))])
    try:
        await ctx.stub.Set(req, metadata=ctx.metadata, timeout=10)
    except grpc.aio.AioRpcError:
        pass


@step("set_update")
async def set_update(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    p = ctx.profile
    before = await _before(ctx, p.gnmi_set_leaf)
    req = gnmi_pb2.SetRequest(**ctx.prefix, update=[
        gnmi_pb2.Update(path=ctx.path(p.gnmi_set_leaf), val=json_value(p.gnmi_set_value))])
    try:
        resp = await ctx.stub.Set(req, metadata=ctx.metadata, timeout=10)
        ev.add(show(req), show(resp))
        if not resp.response or resp.response[0].op != gnmi_pb2.UpdateResult.UPDATE:
            return Outcome(Verdict.FAIL, "SetResponse without an UPDATE result")
        after = await _get_leaf(ctx, p.gnmi_set_leaf, ev)
        if str(after) != p.gnmi_set_value:
            return Outcome(Verdict.FAIL, f"Get after Set reads {after!r}, expected {p.gnmi_set_value!r}")
        return _echo(ctx, [resp], Outcome(Verdict.PASS))
    finally:
        await _put_back(ctx, p.gnmi_set_leaf, before)


@step("set_transaction")
async def set_transaction(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    """A Set of a good and a bad update, then the control: the good update alone, which must be
    accepted for the failure to be about the bad one."""
    p = ctx.profile
    before = await _before(ctx, p.gnmi_set_leaf)
    good = gnmi_pb2.Update(path=ctx.path(p.gnmi_set_leaf), val=json_value(p.gnmi_set_value + "-txn"))
    bad = gnmi_pb2.Update(path=ctx.path(p.gnmi_bad_leaf), val=json_value(p.gnmi_bad_value))
    try:
        status, _ = await _call(ctx, ctx.stub.Set, gnmi_pb2.SetRequest(**ctx.prefix, update=[good, bad]), ev)
        after = await _get_leaf(ctx, p.gnmi_set_leaf, ev)
        control, _ = await _call(ctx, ctx.stub.Set, gnmi_pb2.SetRequest(**ctx.prefix, update=[good]), ev,
                                 note=" (control)")
        outcome = judge_error(check.expect, status, control)
        if outcome.verdict is Verdict.PASS and after != before.value:
            return Outcome(Verdict.FAIL, f"the good update was applied ({before.value!r} -> {after!r}) although the "
                                         "Set failed")
        return outcome
    finally:
        await _put_back(ctx, p.gnmi_set_leaf, before)


def _sub(ctx: GnmiContext, leaf: str, mode: int, list_mode: int = 0, **kw) -> gnmi_pb2.SubscribeRequest:
    return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
        **ctx.prefix, subscription=[gnmi_pb2.Subscription(path=ctx.path(leaf), mode=mode, **kw)], mode=list_mode,
        encoding=JSON_IETF))


async def _until_sync(call, ev: Evidence, timeout: float = 10.0) -> list:
    got = []
    async with asyncio.timeout(timeout):
        async for resp in call:
            got.append(resp)
            if resp.sync_response:
                return got
    raise ConnectionError(f"the stream ended after {len(got)} responses without sync_response")


@step("subscribe_once")
async def subscribe_once(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    req = _sub(ctx, "/", 0, list_mode=1)
    call = ctx.stub.Subscribe(iter([req]), metadata=ctx.metadata, timeout=15)
    responses = [r async for r in call]
    ev.add(show(req), "\n".join(show(r) for r in responses[:5]))
    syncs = [i for i, r in enumerate(responses) if r.sync_response]
    if not syncs:
        return Outcome(Verdict.FAIL, "no sync_response")
    if syncs[0] == 0:
        return Outcome(Verdict.FAIL, "sync_response before any update")
    return _echo(ctx, responses, Outcome(Verdict.PASS))


@step("subscribe_poll")
async def subscribe_poll(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    req = _sub(ctx, ctx.profile.gnmi_set_leaf.rsplit("/", 1)[0] if "/" in ctx.profile.gnmi_set_leaf else "/", 0, list_mode=2)
    queue: asyncio.Queue = asyncio.Queue()
    await queue.put(req)

    async def requests():
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    call = ctx.stub.Subscribe(requests(), metadata=ctx.metadata, timeout=15)
    try:
        first = await _until_sync(call, ev)
        await queue.put(gnmi_pb2.SubscribeRequest(poll=gnmi_pb2.Poll()))
        second = await _until_sync(call, ev)
        ev.add(show(req) + " ; Poll{}", "\n".join(show(r) for r in (first + second)[:6]))
        if len(second) < 2:
            return Outcome(Verdict.FAIL, "the poll got a sync_response without updates")
        return _echo(ctx, first + second, Outcome(Verdict.PASS))
    finally:
        await queue.put(None)
        call.cancel()


@step("subscribe_sample")
async def subscribe_sample(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    interval = float(check.param("interval_s", 1.0))
    wanted = int(check.param("samples", 4))
    async with _leaf_set(ctx, ev):
        return await _sample(ctx, check, ev, interval, wanted)


async def _sample(ctx: GnmiContext, check: Check, ev: Evidence, interval: float, wanted: int) -> Outcome:
    req = _sub(ctx, ctx.profile.gnmi_set_leaf, 2, sample_interval=int(interval * 1e9))
    call = ctx.stub.Subscribe(iter([req]), metadata=ctx.metadata, timeout=wanted * interval + 15)
    loop = asyncio.get_running_loop()
    try:
        first = await _until_sync(call, ev)
        times: list[float] = []
        samples = []
        async with asyncio.timeout(wanted * interval * 1.5 + 5):
            async for resp in call:
                if resp.update.update:
                    times.append(loop.time())
                    samples.append(resp)
                if len(times) > wanted:
                    break
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        ev.add(show(req), "\n".join(show(r) for r in first[:3]))
        ev.note("intervals between samples (s): " + ", ".join(f"{g:.3f}" for g in gaps))
        if len(gaps) < wanted:
            return Outcome(Verdict.FAIL, f"{len(times)} samples in {wanted * interval * 1.5 + 5:.0f} s")
        mean = statistics.mean(gaps)
        if abs(mean - interval) > 0.1 * interval:
            return Outcome(Verdict.FAIL, f"mean interval {mean:.3f} s for sample_interval {interval:g} s (more than 10% off)")
        return _echo(ctx, first + samples, Outcome(Verdict.PASS, f"mean interval {mean:.3f} s"))
    finally:
        call.cancel()


@step("subscribe_on_change")
async def subscribe_on_change(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    p = ctx.profile
    before = await _before(ctx, p.gnmi_set_leaf)
    req = _sub(ctx, p.gnmi_set_leaf, 1)
    call = ctx.stub.Subscribe(iter([req]), metadata=ctx.metadata, timeout=20)
    new = p.gnmi_set_value + "-change"
    try:
        first = await _until_sync(call, ev)
        set_req = gnmi_pb2.SetRequest(**ctx.prefix, update=[
            gnmi_pb2.Update(path=ctx.path(p.gnmi_set_leaf), val=json_value(new))])
        await ctx.stub.Set(set_req, metadata=ctx.metadata, timeout=10)
        ev.add(show(req), "\n".join(show(r) for r in first[:3]))
        try:
            async with asyncio.timeout(3):
                async for resp in call:
                    ev.add(show(set_req) if len(ev.exchanges) == 1 else "(stream)", show(resp))
                    for u in resp.update.update:
                        v = decode(u.val)
                        if v == new or (isinstance(v, dict) and new in v.values()):
                            return _echo(ctx, [*first, resp], Outcome(Verdict.PASS))
        except TimeoutError:
            pass
        return Outcome(Verdict.FAIL, "no update with the new value within 3 s of the Set")
    finally:
        call.cancel()
        await _put_back(ctx, p.gnmi_set_leaf, before)


@step("subscribe_heartbeat")
async def subscribe_heartbeat(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    async with _leaf_set(ctx, ev):
        return await _heartbeat(ctx, check, ev)


async def _heartbeat(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    req = _sub(ctx, ctx.profile.gnmi_set_leaf, 1, heartbeat_interval=1_000_000_000)
    call = ctx.stub.Subscribe(iter([req]), metadata=ctx.metadata, timeout=20)
    loop = asyncio.get_running_loop()
    try:
        first = await _until_sync(call, ev)
        t0, beats = loop.time(), []
        ev.add(show(req), "\n".join(show(r) for r in first[:3]))
        try:
            async with asyncio.timeout(2.8):
                async for resp in call:
                    if resp.update.update:
                        beats.append(resp)
                        ev.note(f"update at +{loop.time() - t0:.2f} s")
                    if len(beats) >= 2:
                        return _echo(ctx, first + beats, Outcome(Verdict.PASS))
        except TimeoutError:
            pass
        return Outcome(Verdict.FAIL, f"{len(beats)} update(s) in 2.8 s of an unchanged leaf with heartbeat_interval 1 s")
    finally:
        call.cancel()


@step("subscribe_target_defined")
async def subscribe_target_defined(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    req = _sub(ctx, "/", 0)
    call = ctx.stub.Subscribe(iter([req]), metadata=ctx.metadata, timeout=15)
    try:
        first = await _until_sync(call, ev)
        ev.add(show(req), "\n".join(show(r) for r in first[:3]))
        return _echo(ctx, first, Outcome(Verdict.PASS))
    finally:
        call.cancel()


register(CHECKS)
