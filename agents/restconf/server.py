"""The RESTCONF server (RFC 8040) of one agent: aiohttp over HTTPS with the agent's CA and server
certificate, in the agent's event loop.

    GET  /.well-known/host-meta                      the root (RFC 8040 s3.1)
    GET  /restconf                                   the API resource, yang-library-version
    *    /restconf/data[/path]                       GET HEAD POST PUT PATCH DELETE OPTIONS
    GET  /restconf/operations[/module:rpc]           the operations resource (POST: invoke)
    GET  /restconf/streams/NETCONF/{json,xml}        server-sent events (RFC 8040 s6)

Writes are the core's `EditOperation`s through `Datastore.edit` as the authenticated user (NACM
on the computed change); reads are the running or operational tree as the user may see it.
Users, the failed-password back-off and the session caps are the agent's (HTTP Basic); with
client certificates configured (`--gnmi-mtls`) the TLS handshake also requires one from the
agent's CA. What slow clients may hold is bounded by the shared `ConnectionGuard`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.guard import LoginGuard
from qstrata.agents.access.nacm import UserAccess
from qstrata.agents.access.passwords import PasswordLogins
from qstrata.agents.access.users import UserStore
from qstrata.agents.datastore.errors import DatastoreError
from qstrata.agents.datastore.store import Datastore, SessionInfo
from qstrata.agents.events import EventBus
from qstrata.bindings.edit import REQUIRE, EditOperation
from qstrata.bindings.schema_index import schema_index
from qstrata.bindings.validate import InvalidData
from qstrata.bindings.wire.auth import basic_login
from qstrata.bindings.wire.connections import (
    BODY_TIMEOUT_S,
    ConnectionGuard,
    start_http,
)
from qstrata.bindings.wire.tls import TlsFiles, server_ssl_context

from . import codec, media, monitoring, reads, resource, streams, yang_patch
from .errors import RESTCONF_NS, RestconfError, bad_request, errors_json, errors_xml, from_core, not_found
from .media import Encoding
from .query import CAPABILITY_URIS, Query, parse_query
from .resource import Target

log = logging.getLogger("qstrata.restconf")

MAX_BODY = 16 * 1024 * 1024
"""Largest request body read (NETCONF's default message cap)."""
BIG_DATASTORE = 512 * 1024
"""Reads of a datastore that prints larger than this run in a worker thread."""
BIG_BODY = 256 * 1024
"""Request bodies larger than this are parsed in a worker thread (NETCONF's big message)."""
YANG_LIBRARY_VERSION = "2019-01-04"
SSE_KEEPALIVE_S = 15.0
"""Quiet time after which an event stream writes a comment (proxies drop silent connections)."""
SERVED_OPERATIONS: frozenset[tuple[str, str]] = frozenset()
"""(module, rpc) the operations resource lists and POST invokes: those something here implements."""
NETCONF_PROTOCOL = frozenset({"ietf-netconf", "ietf-netconf-nmda", "ietf-netconf-monitoring"})
"""Modules whose RPCs are NETCONF's own operations, not RESTCONF ones."""
ACCEPT_PATCH = ", ".join((media.YANG_JSON, media.YANG_XML, media.PATCH_JSON, media.PATCH_XML))


@dataclass
class RestconfContext:
    """What the handlers may use (and nothing else of the agent)."""

    name: str
    datastore: Datastore
    access: AccessControl
    bus: EventBus
    users: UserStore
    guard: LoginGuard


@dataclass(frozen=True)
class Caller:
    username: str
    groups: tuple[str, ...]
    access: UserAccess


def _http_date(unix_ns: int) -> str:
    return _http_date_of_second(unix_ns // 1_000_000_000)


@functools.lru_cache(maxsize=4)
def _http_date_of_second(second: int) -> str:
    """An HTTP date has whole seconds: every write answers one (Last-Modified), and formatdate
    costs more than the rest of building the answer."""
    return email.utils.formatdate(second, usegmt=True)


def _parse_http_date(text: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class Restconf:
    """The routes, bound to one agent's context."""

    def __init__(self, ctx: RestconfContext, connections: ConnectionGuard | None = None) -> None:
        self.ctx = ctx
        self.connections = connections
        """The server's connection guard: tells an event stream that its peer went away."""
        self._streams: set[asyncio.Task] = set()
        self.schema = ctx.datastore.schema
        self.index = schema_index(self.schema)
        self.modules = self.index.modules
        self.logins = PasswordLogins(ctx.users, ctx.guard)
        self.hub = streams.StreamHub(ctx.bus)
        self._etags: dict[tuple[int, str], str | None] = {}
        self.base_url = ""
        content = ",".join(f"{m.name()}@{self.schema.revision(m.name())}" for m in self.schema.implemented_modules())
        self.content_id = hashlib.sha256(content.encode()).hexdigest()[:16]
        self._library: dict | None = None

    def close(self) -> None:
        """End every event stream now. A stream has no end of its own, and one blocked writing to
        a client that reads nothing would hold the agent's shutdown for aiohttp's grace period;
        it carries no transaction, so cutting it loses nothing."""
        self.hub.close()
        for task in tuple(self._streams):
            task.cancel()

    # ------------------------------------------------------------------ who
    async def caller(self, request: web.Request) -> Caller:
        try:
            login = basic_login(request.headers.get("Authorization", ""))
        except ValueError:
            raise RestconfError("access-denied", "the Basic credentials are not base64 of user:password", status=401,
                                error_type="protocol", headers={"WWW-Authenticate": 'Basic realm="qstrata"'}) from None
        if login is None:
            raise RestconfError("access-denied", "authentication required: HTTP Basic with a user of this agent",
                                status=401, error_type="protocol",
                                headers={"WWW-Authenticate": 'Basic realm="qstrata", charset="UTF-8"'})
        username, password = login
        source = request.remote or "?"
        user = await self.logins.check(username, password, source)
        if user is None:
            log.warning("RESTCONF: failed password for %r from %s", username, source)
            raise RestconfError("access-denied", "wrong username or password", status=401, error_type="protocol",
                                headers={"WWW-Authenticate": 'Basic realm="qstrata"'})
        groups = tuple(user.groups)
        return Caller(user.username, groups, self.ctx.access.for_user(user.username, groups))

    def session(self, caller: Caller) -> SessionInfo:
        return SessionInfo(session_id=None, username=caller.username,
                           authorize=self.ctx.access.write_check(caller.username, caller.groups))

    # ------------------------------------------------------------------ discovery
    async def host_meta(self, request: web.Request) -> web.Response:
        body = "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'><Link rel='restconf' href='/restconf'/></XRD>"
        return web.Response(text=body, content_type="application/xrd+xml")

    async def api_root(self, request: web.Request) -> web.Response:
        await self.caller(request)
        encoding = self._answer_encoding(request)
        if encoding == "xml":
            body = (f'<restconf xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf"><data/><operations/>'
                    f"<yang-library-version>{YANG_LIBRARY_VERSION}</yang-library-version></restconf>").encode()
        else:
            name = "restconf" if encoding == "plain" else "ietf-restconf:restconf"
            body = json.dumps({name: {"data": {}, "operations": {},
                                      "yang-library-version": YANG_LIBRARY_VERSION}}).encode()
        return self._reply(request, 200, body, encoding)

    async def yang_library_version(self, request: web.Request) -> web.Response:
        await self.caller(request)
        encoding = self._answer_encoding(request)
        if encoding == "xml":
            body = (f'<yang-library-version xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf">'
                    f"{YANG_LIBRARY_VERSION}</yang-library-version>").encode()
        else:
            body = json.dumps({"ietf-restconf:yang-library-version": YANG_LIBRARY_VERSION}).encode()
        return self._reply(request, 200, body, encoding)

    def yang_library(self) -> dict:
        """RFC 8525 data (no file locations), built once."""
        if self._library is None:
            data = self.schema.yang_library(self.content_id)
            self._library = _without(data, "location")
        return self._library

    def monitoring(self) -> dict:
        """ietf-restconf-monitoring:restconf-state (RFC 8040 s9): capabilities and streams."""
        return monitoring.state(CAPABILITY_URIS, streams.STREAM, "NETCONF notifications: netconf-config-change and "
                                "the device's own (RFC 8040 s6.2)", streams.time_text(self.hub.created_ns),
                                {enc: f"{self.base_url}/restconf/streams/{streams.STREAM}/{enc}"
                                 for enc in ("json", "xml")})

    # ------------------------------------------------------------------ helpers
    def _answer_encoding(self, request: web.Request, body: Encoding | None = None) -> Encoding:
        encoding = media.answer_encoding(request.headers.get("Accept"), body)
        request["encoding"] = encoding
        return encoding

    def _reply(self, request: web.Request, status: int, body: bytes | None, encoding: Encoding,
               headers: dict[str, str] | None = None) -> web.Response:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = media.CONTENT_TYPE[encoding]
        headers.setdefault("Cache-Control", "no-cache")
        return web.Response(status=status, body=body, headers=headers)  # aiohttp sends no body to HEAD

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise RestconfError("too-big", f"the request body has {request.content_length} bytes, at most "
                                f"{MAX_BODY} are read", error_type="transport")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):  # not wait_for: no task, no loop round when it is all here
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RestconfError("too-big", f"the request body is larger than {MAX_BODY} bytes",
                                error_type="transport") from None
        except TimeoutError:
            raise bad_request(f"the request body did not arrive within {BODY_TIMEOUT_S:g} s",
                              tag="malformed-message", error_type="transport") from None

    def _target(self, request: web.Request, prefix: str) -> Target:
        return resource.parse(self.index, _below(request, prefix))

    def _query(self, request: web.Request, *, stream: bool = False) -> Query:
        return parse_query(list(request.rel_url.query.items()), request.method, stream=stream)

    def _validators(self, path: str) -> tuple[str | None, str]:
        """(ETag, Last-Modified) of the configuration at `path` now."""
        datastore = self.ctx.datastore
        version = datastore.versions.get("running", 0)
        key = (version, path)
        if key not in self._etags:
            if len(self._etags) > 256:
                self._etags.clear()
            self._etags[key] = reads.entity_tag(datastore.get_config("running"), path)
        return self._etags[key], _http_date(datastore.installed_ns.get("running", time.time_ns()))

    def _check_preconditions(self, request: web.Request, path: str, *, write: bool) -> bool:
        """RFC 7232 / RFC 8040 s3.4.1: False for a read that may be answered 304; 412 for a write
        whose condition fails. Without a conditional header nothing is computed."""
        match = request.headers.get("If-Match")
        none_match = request.headers.get("If-None-Match")
        since = request.headers.get("If-Unmodified-Since")
        modified_since = request.headers.get("If-Modified-Since")
        if match is None and none_match is None and since is None and modified_since is None:
            return True
        etag, _ = self._validators(path)
        modified_s = self.ctx.datastore.installed_ns.get("running", 0) // 1_000_000_000

        def listed(header: str) -> bool:
            tags = [t.strip().removeprefix("W/") for t in header.split(",")]
            return "*" in tags and etag is not None or etag in tags

        failed = None
        if match is not None and not listed(match):
            failed = "If-Match does not match the resource's entity-tag"
        elif since is not None and match is None:
            when = _parse_http_date(since)
            if when is not None and modified_s > when:
                failed = "the resource was modified after If-Unmodified-Since"
        if failed is None and none_match is not None and listed(none_match):
            if not write:
                return False
            failed = "If-None-Match matches the resource's entity-tag"
        if failed is None and not write and modified_since is not None and none_match is None:
            when = _parse_http_date(modified_since)
            if when is not None and modified_s <= when:
                return False
        if failed is not None:
            raise RestconfError("operation-failed", failed, path if path != "/" else None, status=412,
                                error_type="protocol")
        return True

    async def _offload(self, fn: Callable[..., Any], *args: Any, big: bool | None = None) -> Any:
        """CPU work in a worker thread when it is large: a read when the datastore is (`big` None),
        a body's parsing when the body is; small work runs inline, where a thread hop costs more
        than the work (NETCONF's rule)."""
        if big is None:
            big = self.ctx.datastore.weight("running") > BIG_DATASTORE
        if big:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    # ------------------------------------------------------------------ /restconf/data
    async def data(self, request: web.Request) -> web.StreamResponse:
        caller = await self.caller(request)
        segments = _below(request, "/restconf/data").strip("/").split("/")
        if segments[0] == f"{monitoring.MODULE}:{monitoring.ROOT}" and request.method in ("GET", "HEAD"):
            self._query(request)
            encoding = self._answer_encoding(request)
            name, value, is_entry = monitoring.select(self.monitoring(), segments[1:])
            return self._reply(request, 200, monitoring.encode(name, value, encoding, is_entry), encoding)
        target = self._target(request, "/restconf/data")
        method = request.method
        if target.node is not None and target.node.kind in ("rpc", "action", "notification"):
            raise not_found(f"{target.path} is not a data resource")
        if method in ("GET", "HEAD"):
            return await self._get(request, caller, target)
        if method == "OPTIONS":
            return self._options(request, target)
        if target.node is not None and not target.node.config:
            raise RestconfError("operation-not-supported", f"{target.path} is state data: it cannot be written",
                                status=405, error_type="protocol", headers={"Allow": "GET, HEAD, OPTIONS"})
        if method == "DELETE":
            return await self._delete(request, caller, target)
        if method == "PUT":
            return await self._put(request, caller, target)
        if method == "POST":
            return await self._post(request, caller, target)
        if method == "PATCH":
            return await self._patch(request, caller, target)
        raise RestconfError("operation-not-supported", f"{method} is not a RESTCONF method", status=405,
                            error_type="protocol")

    def _options(self, request: web.Request, target: Target) -> web.Response:
        if target.is_datastore:
            allow = "GET, HEAD, OPTIONS, PATCH, POST, PUT"
        elif target.node is not None and not target.node.config:
            allow = "GET, HEAD, OPTIONS"
        else:
            allow = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
        headers = {"Allow": allow}
        if "PATCH" in allow:
            headers["Accept-Patch"] = ACCEPT_PATCH
        return web.Response(status=200, headers=headers)

    async def _get(self, request: web.Request, caller: Caller, target: Target) -> web.StreamResponse:
        encoding = self._answer_encoding(request)
        query = self._query(request)
        datastore = self.ctx.datastore
        config_target = target.node is None or target.node.config
        headers: dict[str, str] = {}
        if config_target:
            if not self._check_preconditions(request, target.path, write=False):
                etag, modified = self._validators(target.path)
                return web.Response(status=304, headers={k: v for k, v in (("ETag", etag),
                                                                         ("Last-Modified", modified)) if v})
            etag, modified = self._validators(target.path)
            if etag:
                headers["ETag"] = etag
            headers["Last-Modified"] = modified
        if query.content == "config":
            source = datastore.get_config("running")
        else:
            source = await self._offload(reads.operational, datastore, self.ctx.access, self.yang_library())
        answer = await self._offload(functools.partial(
            reads.read, source, target, encoding, query, caller.access, self.ctx.access, self.index, self.modules,
            self.schema.namespace, config_source=query.content == "config"))
        return self._reply(request, 200, answer.body, encoding, headers)

    def _conditions(self, request: web.Request, path: str) -> Callable[[], None]:
        """The request's If-* headers about `path`, as the check the transaction runs once it
        holds the datastore (RFC 8040 s3.4.1: no other commit between the check and the edit)."""
        def check() -> None:
            self._check_preconditions(request, path, write=True)
        return check

    async def _edit(self, caller: Caller, operations: list[EditOperation], *, big: bool = False,
                    precondition: Callable[[], None] | None = None) -> None:
        """One transaction as the caller, refused by `precondition` (see `_conditions`)."""
        try:
            await self.ctx.datastore.edit("running", operations, self.session(caller), big=big,
                                          precondition=precondition)
        except (DatastoreError, InvalidData) as exc:
            raise from_core(exc) from None

    def _written(self, request: web.Request, status: int, path: str, extra: dict[str, str] | None = None
                 ) -> web.Response:
        etag, modified = self._validators(path)
        headers = {"Last-Modified": modified, **(extra or {})}
        if etag:
            headers["ETag"] = etag
        return web.Response(status=status, headers=headers)

    def _placement(self, query: Query) -> dict[str, Any]:
        """The `EditOperation` fields of insert/point (RFC 8040 s4.8.5-6): point is an api-path
        from the datastore's root; the core checks that the list is ordered-by user and that
        point names an entry of it."""
        if query.insert is None:
            return {}
        point = None
        if query.point is not None:
            point_target = resource.parse(self.index, query.point)
            if point_target.is_datastore:
                raise bad_request("point must name a list entry", info={"bad-attribute": "point"})
            point = point_target.path
        return {"insert": query.insert, "point": point}

    async def _delete(self, request: web.Request, caller: Caller, target: Target) -> web.Response:
        self._query(request)
        if target.is_datastore:
            raise RestconfError("operation-not-supported", "the datastore resource cannot be deleted", status=405,
                                error_type="protocol", headers={"Allow": "GET, HEAD, OPTIONS, PATCH, POST, PUT"})
        if not self.ctx.datastore.get_config("running").exists(target.path, explicit=True):  # RFC 6243 s2.3.3
            raise not_found(f"no data at {target.path}", target.path)
        await self._edit(caller, [EditOperation("delete", target.path)],
                         precondition=self._conditions(request, target.path))
        return web.Response(status=204)

    async def _put(self, request: web.Request, caller: Caller, target: Target) -> web.Response:
        query = self._query(request)
        placement = self._placement(query)
        raw = await self._body(request)
        encoding, _ = media.body_encoding(request.headers.get("Content-Type"))
        self._answer_encoding(request, encoding)
        if target.is_datastore:
            if placement:
                raise bad_request("insert applies to an entry of a list, not the datastore",
                                  info={"bad-attribute": "insert"})
            tree = await self._offload(codec.decode_datastore, raw, encoding, self.schema, self.index,
                                       big=len(raw) > BIG_BODY)
            await self._edit(caller, [EditOperation("replace", "/", tree)], big=len(raw) > BIG_BODY,
                             precondition=self._conditions(request, "/"))
            return self._written(request, 204, "/")
        body = await self._offload(codec.decode, raw, encoding, target, self.schema, self.index, False,
                                   big=len(raw) > BIG_BODY)
        existed = []  # read in the transaction: whether this PUT creates the resource
        conditions = self._conditions(request, target.path)

        def precondition() -> None:
            conditions()
            existed.append(self.ctx.datastore.get_config("running").exists(target.path, explicit=True))
        await self._edit(caller, [EditOperation("replace", target.path, body.tree, **placement)],
                         big=len(raw) > BIG_BODY, precondition=precondition)
        return self._written(request, 204 if existed[0] else 201, target.path)

    async def _post(self, request: web.Request, caller: Caller, target: Target) -> web.Response:
        query = self._query(request)
        placement = self._placement(query)
        raw = await self._body(request)
        encoding, _ = media.body_encoding(request.headers.get("Content-Type"))
        self._answer_encoding(request, encoding)
        body = await self._offload(codec.decode, raw, encoding, target, self.schema, self.index, True,
                                   big=len(raw) > BIG_BODY)
        if body.whole_parent is not None:  # TeraFlowSDN: the container's content, each entry created
            if not body.whole_parent:
                raise bad_request("the body holds nothing to create", tag="missing-element")
            if placement:
                raise bad_request("insert applies to a POST of one entry", info={"bad-attribute": "insert"})
            ops = [EditOperation("create", path) for path, _, _ in body.whole_parent]
            await self._edit(caller, [*ops, EditOperation("merge", target.path, body.tree)],
                             precondition=self._conditions(request, target.path))
            first_path, first_node, keys = body.whole_parent[0]
            return self._created(request, target, first_path, first_node, keys)
        if not target.is_datastore and not self.ctx.datastore.get_config("running").exists(target.path) \
                and target.node is not None and target.node.kind == "list":
            raise not_found(f"no data at {target.path}", target.path)
        await self._edit(caller, [EditOperation("create", body.path, body.tree, **placement)],
                         big=len(raw) > BIG_BODY, precondition=self._conditions(request, target.path))
        return self._created(request, target, body.path, body.node, body.keys)

    def _created(self, request: web.Request, target: Target, path: str, node: Any,
                 keys: tuple[tuple[str, str], ...]) -> web.Response:
        url = str(request.url.with_query(None)).rstrip("/")
        if target.is_datastore and not url.endswith("/restconf/data"):
            url = url.rstrip("/")
        location = f"{url}/{resource.child_segment(target, node, keys)}"
        return self._written(request, 201, path, {"Location": location})

    async def _patch(self, request: web.Request, caller: Caller, target: Target) -> web.Response:
        self._query(request)
        raw = await self._body(request)
        encoding, is_patch = media.body_encoding(request.headers.get("Content-Type"), patch=True)
        answer = self._answer_encoding(request, encoding)
        if is_patch:
            return await self._yang_patch(request, caller, target, raw, encoding, answer)
        if target.is_datastore:
            tree = await self._offload(codec.decode_datastore, raw, encoding, self.schema, self.index,
                                       big=len(raw) > BIG_BODY)
            await self._edit(caller, [EditOperation("merge", "/", tree)], big=len(raw) > BIG_BODY,
                             precondition=self._conditions(request, "/"))
            return self._written(request, 204, "/")
        if not self.ctx.datastore.get_config("running").exists(target.path):
            raise not_found(f"no data at {target.path}: PATCH changes an existing resource", target.path)
        body = await self._offload(codec.decode, raw, encoding, target, self.schema, self.index, False,
                                   big=len(raw) > BIG_BODY)
        await self._edit(caller, [EditOperation(REQUIRE, target.path), EditOperation("merge", target.path, body.tree)],
                         big=len(raw) > BIG_BODY, precondition=self._conditions(request, target.path))
        return self._written(request, 204, target.path)

    async def _yang_patch(self, request: web.Request, caller: Caller, target: Target, raw: bytes,
                          encoding: Encoding, answer: Encoding) -> web.Response:
        if answer == "plain":
            answer = "json"
        patch = await self._offload(yang_patch.parse, raw, encoding, target, self.schema, self.index,
                                    big=len(raw) > BIG_BODY)
        try:
            await self._edit(caller, [edit.op for edit in patch.edits],
                             precondition=self._conditions(request, target.path))
        except RestconfError as exc:
            if exc.http_status == 412:  # the patch as a whole was not applied: no edit failed
                raise
            edit_id = yang_patch.failing_edit(patch, exc.path)
            body = yang_patch.status_failed(patch.patch_id, exc, edit_id, answer, errors_json,
                                            lambda e: errors_xml(e, self._namespace))
            content = "application/yang-data+xml" if answer == "xml" else "application/yang-data+json"
            return web.Response(status=exc.http_status, body=body, headers={"Content-Type": content})
        etag, modified = self._validators(target.path)
        headers = {"Last-Modified": modified, **({"ETag": etag} if etag else {})}
        return self._reply(request, 200, yang_patch.status_ok(patch.patch_id, answer), answer, headers)

    def _namespace(self, module: str) -> str | None:
        try:
            return self.schema.namespace(module)
        except Exception:
            return None

    # ------------------------------------------------------------------ /restconf/operations
    async def operations(self, request: web.Request) -> web.Response:
        """RFC 8040 s3.3.2 / s4.4.2: the operations this server serves and their invocation.

        It lists the RPCs of the agent's modules that something here implements: none today (the
        switch module's port-set-state, aps-command... have no device behind them, over NETCONF
        either). The NETCONF protocol operations (`NETCONF_PROTOCOL`: get-config, edit-config,
        lock, get-schema, get-data...) are not RESTCONF operations: its methods and the YANG
        library do their work."""
        await self.caller(request)
        raw = _below(request, "/restconf/operations").strip("/")
        encoding = self._answer_encoding(request)
        if not raw:
            if request.method != "GET" and request.method != "HEAD":
                raise RestconfError("operation-not-supported", "the operations resource is read with GET",
                                    status=405, error_type="protocol", headers={"Allow": "GET, HEAD"})
            served = sorted(SERVED_OPERATIONS)
            if encoding == "xml":
                body = (f'<operations xmlns="{RESTCONF_NS}">'
                        + "".join(f'<{n} xmlns="{self._namespace(m)}"/>' for m, n in served)
                        + "</operations>").encode()
            else:
                body = json.dumps({"operations" if encoding == "plain" else "ietf-restconf:operations":
                                   {f"{m}:{n}": [None] for m, n in served}}).encode()
            return self._reply(request, 200, body, encoding)
        module, _, name = raw.partition(":")
        if (module, name) not in self.index.rpcs:
            raise not_found(f"no operation {raw!r} on this server")
        if module in NETCONF_PROTOCOL:
            raise RestconfError("operation-not-supported", f"{raw} is a NETCONF protocol operation; RESTCONF's "
                                "methods (GET, PUT, POST, PATCH, DELETE) and the YANG library do its work",
                                status=501, error_type="protocol")
        raise RestconfError("operation-not-supported", f"{raw} is defined by the agent's modules but no device "
                            "here implements it", status=501, error_type="application")

    # ------------------------------------------------------------------ streams
    async def stream(self, request: web.Request) -> web.StreamResponse:
        caller = await self.caller(request)
        name, encoding = request.match_info["name"], request.match_info["encoding"]
        if name != streams.STREAM or encoding not in ("json", "xml"):
            raise not_found(f"no stream {name}/{encoding}; this agent has {streams.STREAM}/json and /xml")
        if not media.accepts_event_stream(request.headers.get("Accept")):
            raise RestconfError("invalid-value", "an event stream is text/event-stream", status=406,
                                error_type="protocol")
        query = self._query(request, stream=True)
        if query.filter is not None:
            probe = {"ietf-netconf-notifications:netconf-config-change": {"datastore": "running"}}
            try:
                self.schema.notification_matches(probe, query.filter)
            except ValueError as exc:
                raise bad_request(f"filter: {exc}", info={"bad-attribute": "filter"}) from None
        access = caller.access

        def may_receive(note: streams.Notification) -> bool:
            if not self.ctx.access.may_notify(access, note.module, note.name):
                return False
            if query.filter is None:
                return True
            try:
                return self.schema.notification_matches(note.content, query.filter)
            except ValueError:
                return False

        sub = self.hub.subscribe(may_receive)
        forget = self.connections.on_close(request.transport, sub.end) if self.connections is not None else None
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        response = web.StreamResponse(headers={"Content-Type": media.EVENT_STREAM, "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
            if query.start_time is not None:
                start = streams.parse_time(query.start_time)
                stop = streams.parse_time(query.stop_time) if query.stop_time else None
                for note in self.hub.replay(start, stop):
                    if may_receive(note):
                        await response.write(self._event(note, encoding))
                if stop is not None and stop <= time.time_ns():
                    return response
            else:
                stop = None
            while not sub.ended:
                try:
                    note = await asyncio.wait_for(sub.queue.get(), SSE_KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if note is None or stop is not None and note.time_ns > stop:
                    break
                await response.write(self._event(note, encoding))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.unsubscribe(sub)
            self._streams.discard(task)
            if forget is not None:
                forget()
        return response

    def _event(self, note: streams.Notification, encoding: str) -> bytes:
        if encoding == "xml":
            return streams.sse_event(streams.encode_xml(note, self.schema.notification_xml(note.content)))
        return streams.sse_event(streams.encode_json(note))


def _without(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(v, key) for v in value]
    return value


def _below(request: web.Request, prefix: str) -> str:
    """The request's path below `prefix` exactly as the client wrote it: the URL library
    decodes ``%2C`` to ``,`` in its own path, and RFC 8040 s3.5.3.1 splits key values on the
    literal ``,`` before decoding."""
    wire = request.raw_path.split("?", 1)[0].split("#", 1)[0]
    if not wire.startswith(prefix):  # an absolute-form or otherwise rewritten target
        wire = request.rel_url.raw_path
    return wire[len(prefix):]


def _error_response(request: web.Request, error: RestconfError, namespace_of: Callable[[str], str | None]
                    ) -> web.Response:
    encoding = request.get("encoding")
    if encoding is None:
        try:
            encoding = media.answer_encoding(request.headers.get("Accept"))
        except RestconfError:
            encoding = "json"
    if encoding == "xml":
        body, content = errors_xml(error, namespace_of), media.YANG_XML
    else:
        body, content = errors_json(error), media.YANG_JSON
    headers = {"Content-Type": content, **error.headers}
    return web.Response(status=error.http_status, body=body, headers=headers)


def make_app(routes: Restconf) -> web.Application:
    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        """Every refusal is an ``ietf-restconf:errors`` body with its RFC 8040 status."""
        try:
            return await handler(request)
        except RestconfError as exc:
            return _error_response(request, exc, routes._namespace)
        except (DatastoreError, InvalidData) as exc:
            return _error_response(request, from_core(exc), routes._namespace)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            tag = {404: "invalid-value", 405: "operation-not-supported", 413: "too-big"}.get(exc.status,
                                                                                          "malformed-message")
            return _error_response(request, RestconfError(tag, f"{exc.reason}: {request.method} {request.path}",
                                                          status=exc.status, error_type="protocol"), routes._namespace)
        except Exception:
            log.exception("RESTCONF request %s %s failed", request.method, request.path)
            return _error_response(request, RestconfError("operation-failed", "internal error (see the agent's log); "
                                                          "nothing was changed"), routes._namespace)

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app.router.add_route("GET", "/.well-known/host-meta", routes.host_meta)
    for path, handler in (("/restconf", routes.api_root), ("/restconf/", routes.api_root),
                          ("/restconf/yang-library-version", routes.yang_library_version)):
        app.router.add_route("GET", path, handler)
    app.router.add_route("*", "/restconf/data", routes.data)
    app.router.add_route("*", "/restconf/data/{tail:.*}", routes.data)
    app.router.add_route("*", "/restconf/operations", routes.operations)
    app.router.add_route("*", "/restconf/operations/{tail:.*}", routes.operations)
    app.router.add_route("GET", "/restconf/streams/{name}/{encoding}", routes.stream)
    return app


class RestconfServer:
    def __init__(self, runner: web.AppRunner, server: asyncio.Server, guard: ConnectionGuard, routes: Restconf,
                 port: int, host: str) -> None:
        self.runner, self.server, self.guard, self.routes, self.port, self.host = runner, server, guard, routes, port, host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    async def close(self) -> None:
        self.server.close()
        self.routes.close()
        await self.runner.cleanup()


async def start_restconf_server(ctx: RestconfContext, host: str, port: int, tls: TlsFiles, *,
                                client_certificates: bool = False) -> RestconfServer:
    """Serve RESTCONF on host:port (0: a free port) in the running event loop, behind the same
    connection guard as the key delivery API (bounded handshakes, heads and idle keep-alives)."""
    guard = ConnectionGuard()
    routes = Restconf(ctx, guard)
    runner, server = await start_http(make_app(routes), host, port, guard,
                                      tls=server_ssl_context(tls, client_certificates=client_certificates))
    result = RestconfServer(runner, server, guard, routes, server.sockets[0].getsockname()[1], host)
    routes.base_url = result.url
    return result
