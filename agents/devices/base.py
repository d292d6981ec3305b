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

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from qstrata.agents.events import DeviceEvent
from qstrata.bindings.diff import Change

__all__ = ["ConfigTransaction", "DeviceClock", "DeviceDriver", "DeviceEvent", "DeviceRefusal", "Inventory", "JsonTree",
           "KeyCompromised", "KeyRef", "KeyStock", "KeySupply", "KeyUnavailable", "NoKeySource", "PeerHandler",
           "PeerUnreachable", "WallClock"]

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
class DeviceClock(Protocol):
    """The device's time, as the core needs it to read and stamp its state: a twin's is its
    world's simulated clock, a hardware driver's the wall clock (`WallClock`). Front ends never
    see it: they read the time a value was produced from the core's operational read."""

    @property
    def settled_ns(self) -> int:
        """Device time of the last state the device finished producing: `read_state` returns the
        same values while it is unchanged (the core caches one read per value of it)."""
        ...

    @property
    def settled_wall_ns(self) -> int:
        """Wall-clock time (Unix ns) at which that state was produced (0: not yet)."""
        ...

    def unix_ns(self, device_ns: int | None = None) -> int:
        """Unix time (ns) of a device time (`DeviceEvent.time_ns`; None: the device's now)."""
        ...


class WallClock:
    """The clock of a device that keeps Unix time and whose state is produced when it is read
    (hardware, an empty device): every read is fresh, stamped now."""

    @property
    def settled_ns(self) -> int:
        return time.monotonic_ns()

    @property
    def settled_wall_ns(self) -> int:
        return time.time_ns()

    def unix_ns(self, device_ns: int | None = None) -> int:
        return time.time_ns() if device_ns is None else device_ns


WALL_CLOCK = WallClock()


@runtime_checkable
class DeviceDriver(Protocol):
    """What the datastore needs from a device."""

    name: str
    clock: DeviceClock
    """The device's time (see `DeviceClock`)."""

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


# -- the key capability (a QKD device that delivers key: ETSI GS QKD 014 behind the agent's KME) ----


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Where a block of key lies in a link's key stream: `nbytes` bytes from byte `offset` of the
    stream of key session `epoch` of link `qkdl_id`. Both ends of the link read the same bits
    under the same reference, so a KME stores references, never key bits, and gets the bits
    again from its device (`KeySupply.key_bits`) whenever it owes them, after a restart too."""

    qkdl_id: str
    epoch: str
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class KeyStock:
    """A link's key store now, in bits."""

    stored_bits: int
    capacity_bits: int


class KeyUnavailable(Exception):
    """`take_key` could not take what was asked (the store holds less, or the link is not one of
    this device's); `stock` is the store's figures when there is a store."""

    def __init__(self, message: str, stock: KeyStock | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.stock = stock


class KeyCompromised(KeyUnavailable):
    """The link's key is held back: its last key block had detections an eavesdropper attacked
    (`qkd_link` discards such blocks), and nothing is delivered over the link until a clean block
    has been released. `message` names the link and says what was seen."""


class NoKeySource(KeyUnavailable):
    """The device delivers no key at all (an empty device, a device without QKD links)."""


class PeerUnreachable(Exception):
    """The KME-to-KME channel could not reach the KME called (or it did not answer)."""


PeerHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""What a KME answers a peer KME's message with (JSON objects both ways)."""


@runtime_checkable
class KeySupply(Protocol):
    """What a KME needs from a device that makes key: take key from a link's store, read its bits,
    and reach the KMEs at the other ends of the links (the classical channel between trusted
    nodes). A driver without it (an empty device) leaves the agent's KME with no key source.

    Taking is irreversible: key taken is gone from the store for both ends, whether or not it
    is ever delivered (never re-used, never invented)."""

    async def take_key(self, qkdl_id: str, nbits: int) -> KeyRef:
        """Take `nbits` (a multiple of 8) from the store of link `qkdl_id`, all or nothing; raises
        `KeyUnavailable` (with the store's figures) when it holds less, `KeyCompromised` while the
        link is held back after an attack."""
        ...

    async def key_bits(self, refs: Sequence[KeyRef]) -> list[bytes]:
        """The bits under each reference (taken by this end or by the other end of the link)."""
        ...

    async def key_stock(self, qkdl_id: str) -> KeyStock:
        """The store of link `qkdl_id` now; raises `KeyUnavailable` when there is none,
        `KeyCompromised` while the link is held back after an attack."""
        ...

    async def peer_call(self, kme_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Send `message` to KME `kme_id` and return its answer; raises `PeerUnreachable`."""
        ...

    async def serve_peer(self, kme_id: str, handler: PeerHandler | None) -> None:
        """Answer peer messages for KME `kme_id` with `handler` (None: stop answering)."""
        ...
