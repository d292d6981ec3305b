"""The conformance kit's gNMI side: a grpc.aio channel with gnmi-pb stubs (TLS with the given CA,
or plain text when asked), credentials in call metadata, and the step table gNMI checks name.

gNMI exchanges are streams and timings rather than one request and one reply, so each gNMI check
names a step (`gnmi_checks`) and carries its parameters as data; evidence is the requests and
responses in protobuf text form."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from google.protobuf import text_format
from qstrata.bindings.paths import gnmi_string_to_path
from qstrata.bindings.wire.auth import call_metadata
from qstrata.bindings.wire.tls import explain_connect_failure

from .model import Check, Evidence, GnmiExpect, Outcome, Steps, Verdict
from .netconf_runner import clip
from .profiles import Profile

JSON, BYTES, PROTO, ASCII, JSON_IETF = 0, 1, 2, 3, 4
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 64 * 1024 * 1024), ("grpc.enable_retries", 0))


class GnmiUnavailable(Exception):
    """The gNMI server could not be reached or refused the login; the message says why."""


@dataclass(frozen=True)
class GnmiEndpoint:
    host: str
    port: int
    username: str
    password: str
    ca: str | None = None
    insecure: bool = False
    timeout: float = 10.0
    target: str = ""
    """gNMI prefix.target of every request (gNMI 2.2.2.1): the agent's name behind a port that
    serves several, such as `qstrata up`'s gateway; empty: none is sent."""


@dataclass
class GnmiContext:
    endpoint: GnmiEndpoint
    profile: Profile
    channel: grpc.aio.Channel
    stub: gnmi_pb2_grpc.gNMIStub
    capabilities: gnmi_pb2.CapabilityResponse | None = None
    capabilities_text: str = ""
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    async def open(cls, ep: GnmiEndpoint, profile: Profile) -> GnmiContext:
        target = f"{ep.host}:{ep.port}"
        if ep.insecure:
            channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            try:
                ca = Path(ep.ca).read_bytes() if ep.ca else None
            except OSError as exc:
                raise GnmiUnavailable(f"cannot read the CA {ep.ca}: {exc}") from None
            channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca), options=CHANNEL_OPTIONS)
        ctx = cls(ep, profile, channel, gnmi_pb2_grpc.gNMIStub(channel),
                  metadata=call_metadata(ep.username, ep.password))
        try:
            ctx.capabilities = await ctx.stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=ctx.metadata,
                                                           timeout=ep.timeout)
        except grpc.aio.AioRpcError as exc:
            await channel.close()
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise GnmiUnavailable(f"gNMI {target}: login as {ep.username!r} refused ({exc.details()})") from None
            meaning = explain_connect_failure(exc.details() or "", tls=not ep.insecure)
            hint = f" ({meaning})" if meaning else ""
            raise GnmiUnavailable(f"gNMI {target} unreachable{hint}: {exc.code().name} {exc.details() or ''}".strip()
                                  ) from None
        ctx.capabilities_text = clip(text_format.MessageToString(ctx.capabilities, as_one_line=True), 2000)
        return ctx

    @property
    def prefix(self) -> dict[str, gnmi_pb2.Path]:
        """The prefix field of a request (``**ctx.prefix``): the target, when one is set."""
        return {"prefix": gnmi_pb2.Path(target=self.endpoint.target)} if self.endpoint.target else {}

    def echo_problem(self, responses: Iterable[object]) -> str | None:
        """gNMI 2.2.2.1 on GetResponse, SetResponse and SubscribeResponse messages: see `echo_problem`."""
        return echo_problem(self.endpoint.target, responses)

    def path(self, text: str) -> gnmi_pb2.Path:
        """A path below the profile's gNMI root (``/`` alone is the root itself)."""
        full = self.profile.gnmi_root + ("" if text in ("", "/") else "/" + text.lstrip("/"))
        return gnmi_string_to_path("/" + full)

    async def close(self) -> None:
        await self.channel.close()


def _prefixes(message: object) -> Iterator[gnmi_pb2.Path]:
    if isinstance(message, gnmi_pb2.GetResponse):
        yield from (n.prefix for n in message.notification)
    elif isinstance(message, gnmi_pb2.SetResponse):
        yield message.prefix
    elif isinstance(message, gnmi_pb2.SubscribeResponse) and message.WhichOneof("response") == "update":
        yield message.update.prefix


def echo_problem(sent: str, responses: Iterable[object]) -> str | None:
    """What is wrong with the responses' prefix.target (gNMI 2.2.2.1: the target a request's
    prefix names MUST be reflected in the responses' prefix, and MUST NOT be set when the request
    named none), or None. Sync responses carry no prefix and are not looked at. (pure)"""
    for message in responses:
        for prefix in _prefixes(message):
            if prefix.target != sent:
                got = f"prefix.target {prefix.target!r}" if prefix.target else "no prefix.target"
                want = f"{sent!r} as sent" if sent else "none, as none was sent"
                return f"{type(message).__name__} with {got}, expected {want} (gNMI 2.2.2.1)"
    return None


def judge_error(expect: GnmiExpect, status: tuple[str, str], control: tuple[str, str] | None) -> Outcome:
    """Did a request with a deliberate mistake fail for that mistake? `status` is its gRPC status
    (code name, message), `control` that of the same request without the mistake. Only a code in
    `expect.codes`, with a message (gNMI 2.5: the message MUST give the context), while the control
    request succeeds, passes: a refused login, a missing or unknown target or an encoding the
    device lacks make the control fail too, so they can never pass for the mistake. (pure)"""
    code, message = status
    wanted = " or ".join(expect.codes)
    if code == "OK":
        return Outcome(Verdict.FAIL, f"status OK, expected {wanted}")
    if code not in expect.codes:
        return Outcome(Verdict.FAIL, f"status {code} ({clip(message, 200)}), expected {wanted}")
    if not message.strip():
        return Outcome(Verdict.FAIL, f"status {code} without a message (gNMI 2.5: it MUST say the context)")
    if control is not None and control[0] != "OK":
        return Outcome(Verdict.FAIL, f"status {code}, but the control request failed too ({control[0]}: "
                                     f"{clip(control[1], 200)}): the error is not about the mistake")
    return Outcome(Verdict.PASS)


def show(message) -> str:
    return clip(text_format.MessageToString(message, as_one_line=True), 1500)


def json_value(value: object) -> gnmi_pb2.TypedValue:
    return gnmi_pb2.TypedValue(json_ietf_val=json.dumps(value).encode())


def decode(val: gnmi_pb2.TypedValue) -> object:
    kind = val.WhichOneof("value")
    if kind is None:
        return None
    raw = getattr(val, kind)
    if kind in ("json_ietf_val", "json_val"):
        return json.loads(raw)
    if kind == "decimal_val":
        return raw.digits / 10 ** raw.precision
    return raw


StepFn = Callable[[GnmiContext, Check, Evidence], Awaitable[Outcome]]
STEPS: Steps[StepFn] = Steps()
step = STEPS.step


async def run_check(ctx: GnmiContext, check: Check, ev: Evidence) -> Outcome:
    try:
        return await STEPS.run("gNMI", ctx, check, ev)
    except grpc.aio.AioRpcError as exc:
        ev.note(f"gRPC status {exc.code().name}: {exc.details()}")
        return Outcome(Verdict.FAIL, f"unexpected gRPC status {exc.code().name}: {clip(exc.details() or '', 300)}")
