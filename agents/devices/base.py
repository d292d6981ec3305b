"""The one interface between the datastore and a device.

A twin implements it, and so would a driver for real hardware: the NETCONF and gNMI front ends
never talk to a device directly. Data crosses this boundary as JSON-IETF (RFC 7951) dicts, so
a driver needs no schema engine of its own.

Life of a configuration change (sysrepo's change/done/abort phases):

1. the datastore has computed and validated the new running config;
2. ``prepare(txn)`` on every driver: look at ``txn.changes``; raise `DeviceRefusal` to veto
   (the transaction is rolled back and the client gets an rpc-error / gRPC status);
3. ``commit(txn)`` once every driver has prepared, or ``abort(txn)`` when one refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from qstrata.agents.events import DeviceEvent
from qstrata.bindings.diff import Change

__all__ = ["ConfigTransaction", "DeviceDriver", "DeviceEvent", "DeviceRefusal", "Inventory", "JsonTree"]

JsonTree = dict[str, Any]
"""A JSON-IETF instance tree: top-level keys are ``module:name``."""


class DeviceRefusal(Exception):
    """A device will not take a change. Becomes an rpc-error (operation-failed) or gRPC
    FAILED_PRECONDITION; `path` points at the offending node when known."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True, slots=True)
class Inventory:
    """What a device is and has, read once at start.

    `config` seeds running when the datastore is empty (e.g. ``qkdn_id`` and the interfaces of
    a QKD module); `modules` are the YANG modules the device serves.
    """

    modules: tuple[str, ...]
    config: JsonTree = field(default_factory=dict)


class ConfigTransaction:
    """A committed-to-be change of running configuration.

    `changes` is cheap and always there. `old_config` / `new_config` (whole JSON-IETF trees) are
    computed on first access only: commit cost must not grow with the configuration, so a
    driver that can work from `changes` should.
    """

    __slots__ = ("changes", "_old", "_new")

    def __init__(
        self,
        changes: tuple[Change, ...],
        old_config: JsonTree | Callable[[], JsonTree],
        new_config: JsonTree | Callable[[], JsonTree],
    ) -> None:
        self.changes = tuple(changes)
        self._old = old_config
        self._new = new_config

    @property
    def old_config(self) -> JsonTree:
        if callable(self._old):
            self._old = self._old()
        return self._old

    @property
    def new_config(self) -> JsonTree:
        if callable(self._new):
            self._new = self._new()
        return self._new


@runtime_checkable
class DeviceDriver(Protocol):
    """What the datastore needs from a device."""

    name: str

    async def start(self) -> Inventory:
        """Connect to (or boot) the device and report what it has."""
        ...

    async def prepare(self, txn: ConfigTransaction) -> None:
        """Check that the device can apply `txn`; raise `DeviceRefusal` if not. No side effects."""
        ...

    async def commit(self, txn: ConfigTransaction) -> None:
        """Apply a prepared transaction. Must not fail for a change `prepare` accepted."""
        ...

    async def abort(self, txn: ConfigTransaction) -> None:
        """Forget a prepared transaction that another participant refused."""
        ...

    def read_state(self) -> JsonTree:
        """Operational (config false) state now, as a JSON-IETF tree merged over running."""
        ...

    def events(self) -> AsyncIterator[DeviceEvent]:
        """Notifications and state changes, as they happen, until `stop`. Ending before `stop`
        says the device is gone (a lost connection): the agent stops."""
        ...

    async def stop(self) -> None:
        """Release the device; `events` iterators end."""
        ...
