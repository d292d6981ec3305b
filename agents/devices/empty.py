"""A device with nothing attached: serves its kind's modules with no state of its own.

Used when no twin or hardware driver is configured for a kind; it still gives a QKD node the
identity (`qkdn_id`) that the ETSI model makes mandatory, derived from the agent's name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from .base import WALL_CLOCK, ConfigTransaction, DeviceEvent, Inventory, JsonTree

KIND_MODULES: dict[str, tuple[str, ...]] = {
    "qkd": ("etsi-qkd-node-types", "etsi-qkd-sdn-node", "qstrata-ss", "qstrata-qkd"),
    "memory": ("qstrata-qfs", "qstrata-ss"),
    "switch": ("optical-switch", "qstrata-optical-switch"),
}

_NAMESPACE = uuid.UUID("6f1d8a52-4f0e-4a53-9a0b-5c4e0f7a9e11")


class EmptyDevice:
    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        self.clock = WALL_CLOCK
        self._stopped = asyncio.Event()

    async def start(self) -> Inventory:
        config: JsonTree = {}
        if self.kind == "qkd":
            qkdn_id = str(uuid.uuid5(_NAMESPACE, f"qkd/{self.name}"))
            config = {"etsi-qkd-sdn-node:qkd_node": {"qkdn_id": qkdn_id}}
        return Inventory(modules=KIND_MODULES[self.kind], config=config)

    async def prepare(self, txn: ConfigTransaction) -> None:
        return None

    async def commit(self, txn: ConfigTransaction) -> None:
        return None

    async def abort(self, txn: ConfigTransaction) -> None:
        return None

    def read_state(self) -> JsonTree:
        return {}

    async def events(self) -> AsyncIterator[DeviceEvent]:
        await self._stopped.wait()
        return
        yield  # pragma: no cover - makes this an async generator

    async def stop(self) -> None:
        self._stopped.set()
