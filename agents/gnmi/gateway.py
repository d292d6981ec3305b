"""One gNMI port for every agent of a process (`qstrata up`, `qstrata testbed`).

500 agents in one process do not need 500 gRPC servers: like a gNMI gateway, one server
routes each request by `prefix.target` (the agent's name) and echoes it in the responses.
Each request is still authenticated against that agent's own users and NACM.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from qstrata.agents.access.pki import ensure_tls

from .server import GnmiServer, start_gnmi_server
from .service import GnmiService
from .target import GnmiTarget


class _HasTarget(Protocol):
    def gnmi_target(self) -> GnmiTarget: ...


class GnmiGateway:
    def __init__(self, server: GnmiServer, service: GnmiService) -> None:
        self.server = server
        self.service = service

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ca_path(self) -> Path | None:
        return self.server.tls.ca if self.server.tls else None

    def add(self, agent: _HasTarget) -> None:
        target = agent.gnmi_target()
        self.service.targets[target.name] = target

    def remove(self, name: str) -> None:
        self.service.targets.pop(name, None)

    async def close(self) -> None:
        await self.server.close()


async def start_gnmi_gateway(agents: Iterable[_HasTarget], host: str, port: int, state_dir: Path, *,
                             insecure: bool = False, hostnames: tuple[str, ...] = ()) -> GnmiGateway:
    """Serve every agent on host:port; with TLS the gateway's CA is in ``state_dir/gnmi`` (and
    ``state_dir/credentials.json``)."""
    targets = {t.name: t for t in (a.gnmi_target() for a in agents)}
    service = GnmiService(targets, gateway=True)
    tls = None if insecure else ensure_tls(state_dir, listen=host, hostnames=hostnames, name="qstrata gateway")
    server = await start_gnmi_server(service, host, port, tls)
    return GnmiGateway(server, service)
