"""Northbound gNMI: the collector serves the aggregated telemetry plane (qstrata-telemetry) as a
gNMI target, so an SDN controller sees the whole network through one subscription.

The server is the agents' own (`qstrata.agents.gnmi`: Capabilities, Get, Subscribe STREAM /
ONCE / POLL, JSON / JSON_IETF / PROTO, TLS with its own CA by default, users and login limits),
over `northbound.TelemetryTarget`. Users live in the collector's state directory like an
agent's (``users.json``; on first start ``admin`` with a random password in
``credentials.json``, next to ``ca`` the CA clients must trust).

It is an output with a queue like the others: `write` does not copy values (the tree is built
from the series registry when a request reads it), it only tells on-change subscribers which
list entries the batches touched. A slow northbound client therefore costs the collector at
most its own HTTP/2 window, never ingestion.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qstrata.agents.access.pki import ensure_tls
from qstrata.agents.access.users import ensure_admin
from qstrata.agents.gnmi.server import GnmiServer, start_gnmi_server

from ..northbound import PREFIX, TelemetryService, TelemetryTarget

if TYPE_CHECKING:
    from ..model import Batch
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.gnmi")

ALARMS = f"{PREFIX}alarms"
AGENTS = f"{PREFIX}agents"


class GnmiOutput:
    name = "gnmi"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", state_dir: Path | str = "collector-state",
                 insecure: bool = False, instance: str = "collector") -> None:
        self.host = host
        self.port = port
        self.state_dir = Path(state_dir)
        self.insecure = insecure
        self.instance = instance
        self.target: TelemetryTarget | None = None
        self.service: TelemetryService | None = None
        self.server: GnmiServer | None = None

    async def start(self, pipeline: Pipeline) -> None:
        """Raises OSError (one line) when the port cannot be had or the state dir not written."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ensure_admin(self.state_dir)
        tls = None if self.insecure else ensure_tls(self.state_dir, listen=self.host, name="qstrata collector")
        self.target = TelemetryTarget(self.instance, pipeline, self.state_dir)
        self.service = TelemetryService({self.instance: self.target})
        self.server = await start_gnmi_server(self.service, self.host, self.port, tls)
        self.port = self.server.port
        log.info("northbound gNMI on %s:%d%s; credentials in %s", self.host, self.port,
                 " (plain text)" if self.insecure else "", self.state_dir / "credentials.json")

    async def write(self, batches: list[Batch]) -> None:
        target = self.target
        if target is None:
            return
        touched: set[str] = set()
        for batch in batches:
            for s in batch.series:
                path = s.path
                if path.startswith(PREFIX):
                    touched.add(path.rpartition("/")[0])
            if batch.alarms:
                touched.add(ALARMS)
        target.changed(tuple(touched))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    def health(self) -> dict[str, Any]:
        return {"endpoint": f"{self.host}:{self.port}", "subscribers": self.service.subscribers if self.service else 0}
