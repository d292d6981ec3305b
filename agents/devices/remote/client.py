"""The agent's side of the world service: a `DeviceDriver` whose device is a twin in another process.

`RemoteDriver` forwards start (attach), prepare, commit and abort over the socket and keeps what
the service pushes after every world tick: the device's state (so `read_state` is a local read,
as the `DeviceDriver` contract asks) and its events (re-published to `events()`). No front end
can tell it from a twin in this process.

`clock` (also `world`) is the service's clock as last heard (`WorldClock`, a `DeviceClock`): what
the core caches and stamps its operational read with and the agent converts event times with
(`settled_ns`, `settled_wall_ns`, `unix_ns`), the same names a `World` has.

Key supply (`base.KeySupply`): key is taken in the service (`key_take`, one round trip), its bits
are computed here from the link's twin secret (asked once per link); peer calls go through the
service, which routes them to the agent serving the KME called, and the service's calls for the
KMEs this agent serves are answered in tasks of their own (a trusted node relays onward while
the call it answers waits).

When the service goes away the driver logs it and ends `events()` before `stop`: the agent
takes that as its device being lost and exits (see `app.run_agent`); `qstrata up` restarts it.

`RemotePlant` is the scenario's hand on the service's plant (`plant_control.PlantControl`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from .. import key_stream
from ..base import (
    ConfigTransaction,
    DeviceEvent,
    DeviceRefusal,
    Inventory,
    JsonTree,
    KeyCompromised,
    KeyRef,
    KeyStock,
    KeyUnavailable,
    NoKeySource,
    PeerHandler,
    PeerUnreachable,
)
from ..events import EventHub
from . import aio
from . import messages as m

log = logging.getLogger("qstrata.devices.remote")

CONNECT_TIMEOUT = 15.0
"""How long `start` waits for the service's socket (a world service that is itself restarting)."""
REQUEST_TIMEOUT = 60.0


class WorldUnavailable(ConnectionError):
    """The world service cannot be reached, or will not serve this device; the message says why."""


class WorldClock:
    """The world service's clock as this process last heard it."""

    def __init__(self) -> None:
        self.epoch_unix_ns = 0
        self.now_ns = 0
        self.settled_ns = 0
        """The tick the state read now belongs to."""
        self.settled_wall_ns = 0
        """When that tick's values were produced (Unix ns, wall clock)."""

    def update(self, clock: dict[str, int]) -> None:
        """Take a clock from the service; an older one than already known is ignored (a
        coalesced snapshot may overtake a clock-only push)."""
        if clock["settled_ns"] < self.settled_ns:
            return
        self.epoch_unix_ns, self.now_ns = clock["epoch_unix_ns"], clock["now_ns"]
        self.settled_ns, self.settled_wall_ns = clock["settled_ns"], clock["settled_wall_ns"]

    def unix_ns(self, sim_ns: int | None = None) -> int:
        return self.epoch_unix_ns + (self.now_ns if sim_ns is None else sim_ns)


class RemoteDriver:
    """DeviceDriver of node `name` (of `kind`) in the world service listening on `address`."""

    def __init__(self, address: Path, kind: str, name: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.address = address
        self.kind = kind
        self.name = name
        self.connect_timeout = connect_timeout
        self.clock = self.world = WorldClock()
        self.hub = EventHub()
        self.resumed = False
        """The device was running when this agent attached (its previous agent died)."""
        self.lost: str | None = None
        """Why the connection to the service ended, when it ended before `stop`."""
        self._conn: aio.Connection | None = None
        self._state: JsonTree = {}
        self._txn_ids: dict[int, int] = {}
        self._next_txn = 0
        self._stopping = False
        self._watch: asyncio.Task | None = None
        self._secrets: dict[str, bytes] = {}
        self._peers: dict[str, PeerHandler] = {}
        self._answers: set[asyncio.Task] = set()

    # -- DeviceDriver ------------------------------------------------------------------------

    async def start(self) -> Inventory:
        self._conn = await self._connect()
        try:
            reply = await self._request("attach", node=self.name, kind=self.kind, protocol=m.PROTOCOL)
            inventory = m.inventory_from_wire(reply)
            self.world.update(m.clock_of(reply.get("clock")))
        except aio.RemoteError as exc:
            await self._conn.close()
            raise WorldUnavailable(f"the world service at unix:{self.address} will not serve {self.name}: {exc}") \
                from None
        except (aio.ConnectionLost, m.ProtocolError) as exc:
            await self._conn.close()
            raise WorldUnavailable(f"the world service at unix:{self.address}: {exc}") from None
        self._state = reply.get("state") or {}
        self.resumed = bool(reply.get("resumed"))
        self._watch = asyncio.create_task(self._watch_connection(), name=f"world link {self.name}")
        log.info("%s: device %s in the world service at unix:%s", self.name,
                 "resumed (it kept running)" if self.resumed else "attached", self.address)
        return inventory

    async def prepare(self, txn: ConfigTransaction) -> None:
        self._next_txn += 1
        self._txn_ids[id(txn)] = self._next_txn
        try:
            await self._transaction("prepare", txn, changes=[m.change_to_wire(c) for c in txn.changes])
        except BaseException:
            self._txn_ids.pop(id(txn), None)  # refused: neither commit nor abort follows
            raise

    async def commit(self, txn: ConfigTransaction) -> None:
        reply = await self._transaction("commit", txn)
        self._txn_ids.pop(id(txn), None)
        if isinstance(reply.get("state"), dict):
            self._state = reply["state"]
        self.world.update(m.clock_of(reply.get("clock")))

    async def abort(self, txn: ConfigTransaction) -> None:
        txn_id = self._txn_ids.pop(id(txn), None)
        if txn_id is not None:
            await self._request("abort", txn=txn_id)

    def read_state(self) -> JsonTree:
        return self._state

    def events(self) -> AsyncIterator[DeviceEvent]:
        return self.hub.subscribe()

    async def stop(self) -> None:
        """Detach (the service stops the device, as a twin stops with its agent in one process)."""
        self._stopping = True
        if self._conn is not None and not self._conn.closed.is_set():
            try:
                await asyncio.wait_for(self._conn.request("detach"), 5.0)
            except (TimeoutError, aio.ConnectionLost, aio.RemoteError) as exc:
                log.warning("%s: the world service did not confirm the detach: %s", self.name, exc)
            await self._conn.close()
        if self._watch is not None:
            self._watch.cancel()
        for task in list(self._answers):
            task.cancel()
        self.hub.close()

    # -- key supply (base.KeySupply) ---------------------------------------------------------

    async def _key_request(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            return await self._request(op, **fields)
        except aio.RemoteError as exc:
            if exc.kind == "no-key-source":
                raise NoKeySource(str(exc)) from None
            if exc.kind == "key-compromised":
                raise KeyCompromised(str(exc), m.stock_from_wire(exc.error.get("stock"))) from None
            if exc.kind == "no-key":
                raise KeyUnavailable(str(exc), m.stock_from_wire(exc.error.get("stock"))) from None
            raise

    async def take_key(self, qkdl_id: str, nbits: int) -> KeyRef:
        reply = await self._key_request("key_take", qkdl_id=qkdl_id, nbits=nbits)
        return m.ref_from_wire(reply.get("ref"))

    async def key_bits(self, refs: Sequence[KeyRef]) -> list[bytes]:
        out = []
        for ref in refs:
            secret = self._secrets.get(ref.qkdl_id)
            if secret is None:
                reply = await self._key_request("key_secret", qkdl_id=ref.qkdl_id)
                secret = self._secrets[ref.qkdl_id] = bytes.fromhex(str(reply.get("secret")))
            out.append(key_stream.stream_bytes(secret, ref.epoch, ref.offset, ref.nbytes))
        return out

    async def key_stock(self, qkdl_id: str) -> KeyStock:
        stock = m.stock_from_wire((await self._key_request("key_stock", qkdl_id=qkdl_id)).get("stock"))
        if stock is None:
            raise KeyUnavailable(f"link {qkdl_id} has no key store")
        return stock

    async def peer_call(self, kme_id: str, message: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self._request("peer_call", kme_id=kme_id, message=message)
        except aio.RemoteError as exc:
            raise PeerUnreachable(str(exc)) from None
        except (aio.ConnectionLost, TimeoutError) as exc:
            raise PeerUnreachable(f"the world service: {exc or 'timed out'}") from None
        answer = reply.get("reply")
        if not isinstance(answer, dict):
            raise PeerUnreachable(f"KME {kme_id} answered no object")
        return answer

    async def serve_peer(self, kme_id: str, handler: PeerHandler | None) -> None:
        if handler is None:
            self._peers.pop(kme_id.lower(), None)
        else:
            self._peers[kme_id.lower()] = handler
        await self._request("peer_serve", kme_id=kme_id, serve=handler is not None)

    def _answer_peer(self, message: dict[str, Any]) -> None:
        """The service's `peer` request, answered in a task of its own."""
        async def answer() -> None:
            assert self._conn is not None
            kme_id = message.get("kme_id")
            handler = self._peers.get(kme_id.lower()) if isinstance(kme_id, str) else None
            if handler is None or not isinstance(message.get("message"), dict):
                self._conn.reply(message, error=m.error("peer-unreachable", f"{self.name} serves no KME {kme_id}"))
                return
            try:
                reply = await handler(message["message"])
            except Exception as exc:
                log.exception("%s: answering a peer KME failed", self.name)
                self._conn.reply(message, error=m.error("failed", f"{type(exc).__name__}: {exc}"))
            else:
                self._conn.reply(message, {"reply": reply})

        task = asyncio.create_task(answer(), name=f"peer answer {self.name}")
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    # -- the connection ----------------------------------------------------------------------

    async def _connect(self) -> aio.Connection:
        """Connect, waiting up to `connect_timeout` for a service that is not listening yet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while True:
            try:
                return await aio.connect(self.address, self._pushed, name=self.name)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if loop.time() >= deadline:
                    raise WorldUnavailable(f"no world service at unix:{self.address} "
                                           f"({exc.strerror or exc}) after {self.connect_timeout:g} s") from None
            except OSError as exc:
                raise WorldUnavailable(f"cannot connect to the world service at unix:{self.address}: "
                                       f"{exc.strerror or exc}") from None
            await asyncio.sleep(0.2)

    async def _watch_connection(self) -> None:
        assert self._conn is not None
        await self._conn.closed.wait()
        if self._stopping:
            return
        self.lost = self._conn.reason
        log.error("%s: lost the world service at unix:%s (%s): the device is gone", self.name, self.address,
                  self.lost)
        self.hub.close()

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._conn is None:
            raise aio.ConnectionLost("not started")
        return await asyncio.wait_for(self._conn.request(op, **fields), REQUEST_TIMEOUT)

    async def _transaction(self, op: str, txn: ConfigTransaction, **fields: Any) -> dict[str, Any]:
        """A prepare or commit; the whole old or new configuration goes along only when the twin
        asks for it (at most once each)."""
        txn_id = self._txn_ids.get(id(txn))
        if txn_id is None:
            raise RuntimeError(f"{self.name}: {op} of a transaction that was not prepared")
        trees: dict[str, Any] = {}
        while True:
            try:
                return await self._request(op, txn=txn_id, trees=trees, **fields)
            except aio.RemoteError as exc:
                if exc.kind == "refusal":
                    raise DeviceRefusal(str(exc.error.get("message") or exc), exc.error.get("path")) from None
                wanted = [w for w in exc.error.get("trees") or () if w in m.TREES and w not in trees]
                if exc.kind != "need" or not wanted:
                    raise
                for which in wanted:
                    trees[which] = getattr(txn, which)

    async def _pushed(self, message: dict[str, Any]) -> None:
        push = message.get("push")
        if push is None and message.get("op") == "peer" and "id" in message:
            self._answer_peer(message)
            return
        try:
            if push == "state":
                if isinstance(message.get("state"), dict):
                    self._state = message["state"]
                self.world.update(m.clock_of(message.get("clock")))
            elif push == "event":
                self.hub.publish(m.event_from_wire(message.get("event")))
            else:
                log.warning("%s: unexpected message from the world service: %s", self.name, str(message)[:200])
        except m.ProtocolError as exc:
            log.warning("%s: %s", self.name, exc)


class RemotePlant:
    """The plant of the world service at `address`, for a scenario. One short connection per
    change, so a restarted service is reached like the first; `journal` keeps the changes in
    order, and `replay` gives them to a restarted service (its plant starts from the topology)."""

    def __init__(self, address: Path) -> None:
        self.address = address
        self.journal: list[tuple[str, dict[str, Any]]] = []

    async def set_launch_power(self, channel: str, dbm: float) -> None:
        await self._call("set_launch_power", {"channel": channel, "dbm": dbm})

    async def add_loss(self, fibre: str, extra_db: float) -> None:
        await self._call("add_loss", {"fibre": fibre, "extra_db": extra_db})

    async def set_eavesdropper(self, fibre: str, fraction: float) -> None:
        await self._call("set_eavesdropper", {"fibre": fibre, "fraction": fraction})

    async def replay(self) -> None:
        for call, args in self.journal:
            await self._send(call, args)

    async def _call(self, call: str, args: dict[str, Any]) -> None:
        """Journal the change, then make it. While the service is away (restarting) the change
        waits in the journal for `replay`; one the service refuses is an error, and forgotten."""
        self.journal.append((call, args))
        try:
            await self._send(call, args)
        except aio.RemoteError as exc:
            self.journal.pop()
            raise ValueError(f"the world service refused {call} {args}: {exc}") from None
        except (OSError, TimeoutError) as exc:
            log.warning("plant: %s %s waits for the world service (%s)", call, args, exc)

    async def _send(self, call: str, args: dict[str, Any]) -> None:
        async def unexpected(message: dict[str, Any]) -> None:
            return None

        conn = await aio.connect(self.address, unexpected, name="plant")
        try:
            await asyncio.wait_for(conn.request("plant", call=call, args=args), REQUEST_TIMEOUT)
        finally:
            await conn.close()
