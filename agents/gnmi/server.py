"""The grpc.aio server that carries a `GnmiService`, in the agent's own event loop.

Keepalive is permissive on purpose: collectors ping idle streams at their own pace, and a
server that answers with GOAWAY too_many_pings cuts telemetry for no reason, so ping strikes
are disabled and pings without calls are allowed.

The server shares its process's file descriptors (in `qstrata up`: every agent, KME, NETCONF
server and the collector), so what clients may hold is bounded with the figures of the HTTP
front ends' `ConnectionGuard` (bindings/wire/connections.py), in grpc's own terms
(`server_options`): a connection that sends nothing, or not its whole TLS handshake and HTTP/2
preface and SETTINGS, is closed after `HANDSHAKE_TIMEOUT_S`; one with no RPC in flight after
`IDLE_TIMEOUT_S` (a GOAWAY: a client opens a new connection for its next RPC); a peer that
vanished under an open Subscribe stream is found by the server's own keepalive pings; and at
most `connection_limit()` connections, the others are closed as they come. There is no maximum
connection age: it would cut a collector's Subscribe stream, which is meant to last for ever.
"""

from __future__ import annotations

import logging

import grpc
from qstrata.bindings.wire.connections import (
    HANDSHAKE_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    MAX_CONNECTIONS,
    connection_limit,
)
from qstrata.bindings.wire.tls import TlsFiles, server_credentials

from .service import GnmiService

log = logging.getLogger("qstrata.gnmi")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest request accepted (a SetRequest with a whole configuration) and response sent."""

KEEPALIVE_S = 30.0
"""The server pings a connection that has been quiet this long (grpc's default: 2 hours), so a
collector that vanished (power cut, cable pulled: no FIN, no RST) under its Subscribe stream
is found. Twice the idle bound: a stream of samples every few seconds never needs a ping."""
KEEPALIVE_TIMEOUT_S = HANDSHAKE_TIMEOUT_S
"""A ping not answered within this closes the connection (the time any exchange may take, as
for a handshake or a request head)."""

SERVER_OPTIONS = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
)
"""The options that do not bound connections (`server_options` adds those)."""


def server_options() -> tuple[tuple[str, int], ...]:
    """`SERVER_OPTIONS` and the bounds on connections, read from this module's figures when a
    server starts (a test lowers them to see the bounds in seconds)."""
    return (
        *SERVER_OPTIONS,
        # covers the TLS handshake and then the client's HTTP/2 preface and SETTINGS (grpc's
        # default: 120 s): a silent or half-open connection is closed then
        ("grpc.server_handshake_timeout_ms", int(HANDSHAKE_TIMEOUT_S * 1000)),
        # "no outstanding rpcs" for this long: GOAWAY (grpc's timer sends it between one and two
        # bounds after the last RPC); a Subscribe stream is an RPC in flight, so a collector's
        # stream is never idle however quiet its target
        ("grpc.max_connection_idle_ms", int(IDLE_TIMEOUT_S * 1000)),
        ("grpc.keepalive_time_ms", int(KEEPALIVE_S * 1000)),
        ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT_S * 1000)),
        # what actually ends the transport on an unanswered ping in grpcio 1.85 (collectors/session.py)
        ("grpc.http2.ping_timeout_ms", int(KEEPALIVE_TIMEOUT_S * 1000)),
        # the server's keepalive pings go on while a Subscribe stream has nothing to send (the
        # default, 2, would stop them after two pings and leave a vanished peer's stream open)
        ("grpc.http2.max_pings_without_data", 0),
        # connections beyond are closed as they come, before any handshake; as for the HTTP
        # front ends, never more than half the process's file descriptors
        ("grpc.max_allowed_incoming_connections", connection_limit(MAX_CONNECTIONS)),
        # streams on one connection: a collector's channels to every agent behind a gateway
        # share one connection (grpc's subchannel pool), so this must exceed the agents of the
        # largest network (500); a stream beyond waits at the client, it does not fail
        ("grpc.max_concurrent_streams", MAX_CONNECTIONS),
    )


class GnmiServer:
    def __init__(self, server: grpc.aio.Server, service: GnmiService, port: int, tls: TlsFiles | None) -> None:
        self.server = server
        self.service = service
        self.port = port
        self.tls = tls

    async def close(self, grace: float | None = 0.5) -> None:
        await self.server.stop(grace)


async def start_gnmi_server(service: GnmiService, host: str, port: int, tls: TlsFiles | None, *,
                            require_client_auth: bool = False) -> GnmiServer:
    """Listen on host:port (0: a free port). `tls` None serves plain text (--gnmi-insecure)."""
    server = grpc.aio.server(options=server_options())
    server.add_generic_rpc_handlers((service.handler(),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, server_credentials(tls, require_client_auth=require_client_auth))
    except RuntimeError as exc:
        raise OSError(f"cannot listen for gNMI on {address}: {exc}") from None
    if not bound:
        raise OSError(f"cannot listen for gNMI on {address} (address in use?)")
    await server.start()
    return GnmiServer(server, service, bound, tls)
