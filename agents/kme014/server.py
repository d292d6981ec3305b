"""The HTTPS server: ETSI GS QKD 014 V1.1.1 routes over aiohttp, mutual TLS with the agent's CA.

    GET  /api/v1/keys/{slave_SAE_ID}/status
    GET  /api/v1/keys/{slave_SAE_ID}/enc_keys?number=N&size=S
    POST /api/v1/keys/{slave_SAE_ID}/enc_keys     Key request {number, size, additional_slave_SAE_IDs,
                                                  extension_mandatory, extension_optional}
    GET  /api/v1/keys/{master_SAE_ID}/dec_keys?key_ID=UUID   (key_ID may repeat)
    POST /api/v1/keys/{master_SAE_ID}/dec_keys    Key IDs {key_IDs: [{key_ID, key_ID_extension}], key_IDs_extension}

Answers are JSON: the Status object, the Key container {keys: [{key_ID, key}]} (keys in base64),
or the Error object with 400, 401 or 503 (`errors.ERROR_TABLE`); anything else (an unknown path, a
wrong method) is answered with an Error object too. The TLS handshake refuses a client without a
certificate from the agent's CA; the caller's SAE ID is the certificate's common name. What slow
or silent clients may hold (connections, and how long each may take) is bounded by
`connections.ConnectionGuard`.
"""

from __future__ import annotations

import asyncio
import logging
from binascii import b2a_base64
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from aiohttp import web
from qstrata.agents.kme.errors import KmeError
from qstrata.agents.kme.service import KmeService
from qstrata.bindings.wire.address import https_url
from qstrata.bindings.wire.connections import BODY_TIMEOUT_S, ConnectionGuard, start_http
from qstrata.bindings.wire.tls import TlsFiles, server_ssl_context

from . import requests
from .errors import answer, error_object
from .identity import common_name

log = logging.getLogger("qstrata.kme014")

PREFIX = "/api/v1/keys/{sae_id}/"


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def _keys(keys: list[tuple[str, bytes]]) -> web.Response:
    """The Key container, written directly (a third of the cost of building it as objects and
    dumping them): key_IDs as JSON strings, keys in standard base64 with padding (JSON-safe).
    key_IDs are ours (UUIDs): written as they are when none needs escaping, which one look at
    them all tells, instead of escaping each."""
    ids = "".join([key_id for key_id, _ in keys])
    if ids.isascii() and ids.isprintable() and '"' not in ids and "\\" not in ids:
        body = '"}, {"key_ID": "'.join([f'{key_id}", "key": "{b2a_base64(key, newline=False).decode()}'
                                        for key_id, key in keys])
        return web.Response(body=f'{{"keys": [{{"key_ID": "{body}"}}]}}'.encode(), content_type="application/json")
    body = ", ".join([f'{{"key_ID": {encode_basestring(key_id)}, "key": "{b2a_base64(key, newline=False).decode()}"}}'
                      for key_id, key in keys])
    return web.Response(body=f'{{"keys": [{body}]}}'.encode(), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > requests.MAX_BODY:
        raise KmeError("bad-request", f"the request body has {request.content_length} bytes, at most "
                       f"{requests.MAX_BODY} are read")
    try:
        if request.content.is_eof():  # the whole body came with the head: nothing to wait for
            raw = await request.read()
        else:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise KmeError("bad-request", f"the request body is larger than {requests.MAX_BODY} bytes") from None
    except TimeoutError:
        raise KmeError("bad-request", f"the request body did not arrive within {BODY_TIMEOUT_S:g} s") from None
    return requests.body_json(raw)


class Kme014:
    """The routes, bound to one KME core; `guard` keeps each connection's client certificate
    (None: read from the TLS connection on every request)."""

    def __init__(self, kme: KmeService, guard: ConnectionGuard | None = None) -> None:
        self.kme = kme
        self.guard = guard

    def _caller(self, request: web.Request) -> str | None:
        transport = request.transport
        if self.guard is not None:
            return common_name(self.guard.peercert(transport))
        return common_name(transport.get_extra_info("peercert")) if transport is not None else None

    async def status(self, request: web.Request) -> web.Response:
        return _json(200, await self.kme.status(self._caller(request), request.match_info["sae_id"]))

    async def enc_keys(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            asked = requests.key_request_from_body(await _body(request))
        else:
            asked = requests.key_request_from_query(request.query)
        keys = await self.kme.enc_keys(self._caller(request), request.match_info["sae_id"], asked.number, asked.size,
                                       asked.additional_slaves, asked.extension_mandatory)
        return _keys(keys)

    async def dec_keys(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            key_ids = requests.key_ids_from_body(await _body(request))
        else:
            key_ids = request.query.getall("key_ID", [])
            if not key_ids:
                raise KmeError("bad-request", "dec_keys needs key_ID=UUID in the query (or POST a Key IDs object)")
        return _keys(await self.kme.dec_keys(self._caller(request), request.match_info["sae_id"], key_ids))


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every answer is JSON: refusals become Error objects with their status, HTTP errors of the
    framework (404, 405) Error objects with theirs, anything unexpected a 503."""
    try:
        return await handler(request)
    except KmeError as exc:
        status, body = answer(exc)
        return _json(status, body)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(exc.status, error_object(f"{exc.reason}: {request.method} {request.path}"))
    except Exception:
        log.exception("KME request %s %s failed", request.method, request.path)
        return _json(503, error_object("internal error of the KME (see its log)"))


def make_app(kme: KmeService, guard: ConnectionGuard | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=requests.MAX_BODY)
    routes = Kme014(kme, guard)
    # the router tries the paths in this order: the two that carry keys first
    app.router.add_route("GET", PREFIX + "enc_keys", routes.enc_keys)
    app.router.add_route("POST", PREFIX + "enc_keys", routes.enc_keys)
    app.router.add_route("GET", PREFIX + "dec_keys", routes.dec_keys)
    app.router.add_route("POST", PREFIX + "dec_keys", routes.dec_keys)
    app.router.add_get(PREFIX + "status", routes.status)
    return app


class KmeServer:
    def __init__(self, runner: web.AppRunner, server: asyncio.Server, guard: ConnectionGuard, port: int,
                 host: str) -> None:
        self.runner, self.server, self.guard, self.port, self.host = runner, server, guard, port, host

    @property
    def url(self) -> str:
        return https_url(self.host, self.port)

    async def close(self) -> None:
        self.server.close()
        await self.runner.cleanup()


async def start_kme_server(kme: KmeService, host: str, port: int, tls: TlsFiles) -> KmeServer:
    """Serve the key delivery API on host:port (0: a free port) in the running event loop, behind
    the connection guard every HTTP surface of the agents and collectors uses (`start_http`)."""
    guard = ConnectionGuard()
    # a GET dec_keys carries its key_IDs in the query (44 kB for the default 1,024): its request
    # line is bounded as a POST body is, not by aiohttp's 8 kB default, which answered in plain text
    runner, server = await start_http(make_app(kme, guard), host, port, guard, tls=server_ssl_context(tls),
                                      max_line_size=requests.MAX_BODY)
    return KmeServer(runner, server, guard, server.sockets[0].getsockname()[1], host)
