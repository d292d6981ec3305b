"""The gNMI service: Capabilities, Get, Set and Subscribe over one or many targets.

One agent's own port serves it alone (requests may leave `prefix.target` empty); a gateway
port serves many agents of one process, picked by `prefix.target` (echoed in every response),
as gNMI gateways do. Subscribe responses are written as pre-serialized bytes (see `encode`),
so the method is registered by hand with an identity serializer instead of through the
generated servicer base class. Every failure leaves as a gRPC status with a message; an
unexpected exception is logged here and reaches the client as INTERNAL, never as a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import grpc
from gnmi_pb import gnmi_pb2
from qstrata.agents.access.guard import LimitExceeded
from qstrata.bindings.wire.auth import metadata_login
from qstrata.bindings.wire.gnmi_encoding import ENCODING_NAMES, JSON, JSON_IETF, SUPPORTED_ENCODINGS

from .auth import Principal
from .errors import GnmiError, invalid
from .requests import Elem, resolve
from .setreq import apply_set
from .subscribe import SubscribeSession
from .target import GnmiTarget, keep_for
from .view import leaves, prune, select

log = logging.getLogger("qstrata.gnmi")

GNMI_VERSION = "0.10.0"
SERVICE = "gnmi.gNMI"
FIRST_REQUEST_TIMEOUT = 30.0
"""Seconds a Subscribe stream may stay silent before its SubscriptionList."""


class GnmiService:
    def __init__(self, targets: dict[str, GnmiTarget] | None = None, *, gateway: bool = False) -> None:
        self.targets: dict[str, GnmiTarget] = dict(targets or {})
        self.gateway = gateway
        """Many targets: an empty prefix.target is an error instead of the only target."""
        self.subscribers = 0

    # ---------------------------------------------------------------- routing
    def _target(self, prefix: gnmi_pb2.Path | None) -> tuple[GnmiTarget, str]:
        name = prefix.target if prefix is not None else ""
        if name:
            target = self.targets.get(name)
            if target is None and not self.gateway and len(self.targets) == 1:
                # a device answers whatever a collector calls it; it echoes the name back
                return next(iter(self.targets.values())), name
            if target is None:
                raise GnmiError(grpc.StatusCode.NOT_FOUND, f"unknown target {name!r}")
            return target, name
        if self.gateway or len(self.targets) != 1:
            raise invalid("this server hosts several targets: set prefix.target to the agent's name")
        return next(iter(self.targets.values())), ""

    async def _principal(self, target: GnmiTarget, context: grpc.aio.ServicerContext) -> Principal:
        return await target.authenticate(context.invocation_metadata(), context.peer())

    # ---------------------------------------------------------------- RPCs
    async def capabilities(self, request: gnmi_pb2.CapabilityRequest,
                           context: grpc.aio.ServicerContext) -> gnmi_pb2.CapabilityResponse:
        models: dict[str, gnmi_pb2.ModelData] = {}
        for target in await self._callers_targets(context):
            schema = target.datastore.schema
            for m in schema.implemented_modules():
                if m.name() != "yang":
                    models.setdefault(m.name(), gnmi_pb2.ModelData(
                        name=m.name(), organization=schema.organization(m.name()) or "",
                        version=schema.revision(m.name()) or ""))
        return gnmi_pb2.CapabilityResponse(supported_models=list(models.values()),
                                           supported_encodings=list(SUPPORTED_ENCODINGS), gNMI_version=GNMI_VERSION)

    async def _callers_targets(self, context: grpc.aio.ServicerContext) -> list[GnmiTarget]:
        """Capabilities names no target: it describes the targets the caller's login opens. The
        first target that takes it is verified; through a gateway, every other target where the
        caller's user has that same password hash is one too (the agents of one `qstrata up`
        share their admin), so a client of any of them learns each model it can ask the port
        about, at the cost of one password check."""
        last: GnmiError | None = None
        tried: set[str | None] = set()
        username = metadata_login(context.invocation_metadata())[0] or ""
        for target in self.targets.values():
            user = target.users.get(username)
            stamp = user.password_hash if user else None
            if stamp in tried and last is not None:
                continue
            tried.add(stamp)
            try:
                await self._principal(target, context)
            except GnmiError as exc:
                last = exc
                if not self.gateway:
                    break
                continue
            if not self.gateway or stamp is None:
                return [target]
            return [t for t in self.targets.values()
                    if t is target or getattr(t.users.get(username), "password_hash", None) == stamp]
        raise last or GnmiError(grpc.StatusCode.UNAVAILABLE, "no target is being served")

    async def get(self, request: gnmi_pb2.GetRequest, context: grpc.aio.ServicerContext) -> gnmi_pb2.GetResponse:
        prefix = request.prefix if request.HasField("prefix") else None
        target, _ = self._target(prefix)
        principal = await self._principal(target, context)
        if request.encoding not in ENCODING_NAMES:
            raise invalid(f"unknown encoding {request.encoding}")
        if request.encoding not in SUPPORTED_ENCODINGS:
            raise GnmiError(grpc.StatusCode.UNIMPLEMENTED, f"encoding {ENCODING_NAMES[request.encoding]} is not "
                            "supported: use JSON, JSON_IETF or PROTO")
        if request.type not in gnmi_pb2.GetRequest.DataType.values():
            raise invalid(f"unknown data type {request.type}")
        patterns = [resolve(target.index, prefix, p) for p in (request.path or [gnmi_pb2.Path()])]
        keep = keep_for(request.type)
        snapshot = target.read(request.type, principal)
        data, stamp = snapshot.data, snapshot.time_ns
        skip = len(prefix.elem) if prefix is not None else 0
        notifications = []
        for pattern in patterns:
            updates = []
            for match in select(target.index, data, pattern.elems) if pattern.elems else _top_matches(target, data):
                if request.encoding in (JSON, JSON_IETF):
                    value = prune(match, keep) if keep is not None else match[3]
                    if value is None:
                        continue
                    tv = (gnmi_pb2.TypedValue(json_ietf_val=_json(value)) if request.encoding == JSON_IETF
                          else gnmi_pb2.TypedValue(json_val=_json(value)))
                    updates.append(gnmi_pb2.Update(path=_relative(target, match[0], skip), val=tv))
                else:
                    for path, node, value in leaves(match, keep):
                        tv = target.encoder.typed_value(path, node, value, request.encoding)
                        updates.append(gnmi_pb2.Update(path=_relative(target, path, skip), val=tv))
            if not updates and not pattern.wildcard:
                raise GnmiError(grpc.StatusCode.NOT_FOUND, f"no data at {pattern.text or '/'}")
            notifications.append(gnmi_pb2.Notification(timestamp=stamp, prefix=prefix, update=updates))
        return gnmi_pb2.GetResponse(notification=notifications)

    async def set(self, request: gnmi_pb2.SetRequest, context: grpc.aio.ServicerContext) -> gnmi_pb2.SetResponse:
        target, _ = self._target(request.prefix if request.HasField("prefix") else None)
        principal = await self._principal(target, context)
        return await apply_set(target, request, principal)

    async def subscribe(self, requests, context: grpc.aio.ServicerContext) -> None:
        try:
            first = await asyncio.wait_for(anext(requests), FIRST_REQUEST_TIMEOUT)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise invalid(f"no SubscriptionList within {FIRST_REQUEST_TIMEOUT:g} s") from None
        if first.WhichOneof("request") != "subscribe":
            raise invalid("the first SubscribeRequest must hold a SubscriptionList")
        sub_list = first.subscribe
        prefix = sub_list.prefix if sub_list.HasField("prefix") else None
        target, name = self._target(prefix)
        principal = await self._principal(target, context)
        try:
            slot = target.guard.sessions.acquire(principal.username)
        except LimitExceeded as exc:
            raise GnmiError(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.reason) from None
        peer = context.peer()  # gone from the context once the call has ended
        session = SubscribeSession(target, principal, context.write, target_name=name)
        self.subscribers += 1
        try:
            mode = session.configure(sub_list)
            await session.run(mode, requests)
        except asyncio.CancelledError:
            log.info("gNMI client %s left target %s: the call was cancelled (the client closed it or "
                     "its connection ended)", peer, target.name)
            raise
        except GnmiError:
            raise
        except Exception as exc:
            # grpc raises its own internal error for a write to a call that is over: a client gone
            if not (context.done() or context.cancelled() or type(exc).__module__.startswith("grpc")):
                raise
            log.info("gNMI client %s left target %s: the stream ended while the agent wrote to it (%s)", peer,
                     target.name, type(exc).__name__)
        finally:
            self.subscribers -= 1
            slot.release()

    # ---------------------------------------------------------------- registration
    def handler(self) -> grpc.GenericRpcHandler:
        def unary(method: Callable[..., Awaitable], request_type) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                _guarded(method), request_deserializer=request_type.FromString,
                response_serializer=lambda m: m.SerializeToString())

        return grpc.method_handlers_generic_handler(SERVICE, {
            "Capabilities": unary(self.capabilities, gnmi_pb2.CapabilityRequest),
            "Get": unary(self.get, gnmi_pb2.GetRequest),
            "Set": unary(self.set, gnmi_pb2.SetRequest),
            "Subscribe": grpc.stream_stream_rpc_method_handler(
                _guarded(self.subscribe), request_deserializer=gnmi_pb2.SubscribeRequest.FromString,
                response_serializer=_identity),
        })


def _identity(data: bytes) -> bytes:
    return data


def _guarded(method: Callable[..., Awaitable]) -> Callable[..., Awaitable]:
    """Errors become statuses at the edge; nothing else reaches the client."""

    async def call(request, context: grpc.aio.ServicerContext):
        try:
            return await method(request, context)
        except GnmiError as exc:
            await context.abort(exc.code, exc.message)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            log.exception("gNMI %s failed", getattr(method, "__name__", "call"))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error in the agent (logged)")

    return call


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _relative(target: GnmiTarget, path: str, skip: int) -> gnmi_pb2.Path:
    full = gnmi_pb2.Path.FromString(target.encoder.path_bytes(path))
    if skip:
        del full.elem[:skip]
    return full


def _top_matches(target: GnmiTarget, data: dict):
    """The whole tree (a Get of ``/``): each top-level node is one match."""
    return select(target.index, data, (Elem(None, "*"),))

