"""The grpc.aio server that carries a `GnmiService`, in the agent's own event loop.

Keepalive is permissive on purpose: collectors ping idle streams at their own pace, and a
server that answers with GOAWAY too_many_pings cuts telemetry for no reason, so ping strikes
are disabled and pings without calls are allowed.
"""

from __future__ import annotations

import logging

import grpc
from qstrata.bindings.wire.tls import TlsFiles, server_credentials

from .service import GnmiService

log = logging.getLogger("qstrata.gnmi")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest request accepted (a SetRequest with a whole configuration) and response sent."""

SERVER_OPTIONS = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
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
    server = grpc.aio.server(options=SERVER_OPTIONS)
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
