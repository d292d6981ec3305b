"""The world service: one physical world, and the twin of every node, for agents in other processes.

`qstrata up --processes` starts it first; each agent process then drives its node's twin here
through `client.RemoteDriver`, the way an agent drives real hardware through its driver. The
twins share one plant and one clock, as they do when every agent runs in one process, so links
come up, a cross-connect on the switch agent moves the light the QKD agents see, and the same
topology, seed and speed give the same physics.

What goes over the socket (`messages.py`): an agent attaches to its node and gets the inventory;
transactions are forwarded (prepare may be refused); after every world tick the service pushes
each attached agent its device's state (only a clock when nothing changed) and then the device
events of that tick, so `read_state` in the agent is a local read of the last settled tick.

Key delivery: an agent's KME takes key from its device's link stores here (`key_take`) and
reaches the other KMEs through the service, which routes a `peer_call` for a KME id to the agent
that serves that id (`peer_serve`) as a request in the other direction (`peer`), and relays the
answer back: one round trip through the service per hop. A peer call never holds up the
connection it came on (it runs as a task), so a trusted node's agent can relay onward while
its own call is pending.

Agents come and go. When an agent's connection ends without `detach` (the process died), its
device keeps running, as hardware does when its management agent crashes: the next agent for
that node resumes it and is told the configuration the device runs (so its restored datastore
replays only what differs). An agent that stops (`detach`) stops its device, as in one process.

    python -m qstrata.agents.devices.remote.service --socket PATH [--topology FILE] [--seed N]
        [--speed X] [--until-stdin-closes]

The socket is mode 0600 (its owner only). With `--until-stdin-closes` the service stops when its
standard input reaches end of file: `up` holds the other end, so the service (and, since agents
stop when their world goes away, every agent) ends with `up` however `up` ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qstrata.bindings.wire.argtypes import positive_float

from .. import key_stream, registry
from ..base import (
    ConfigTransaction,
    DeviceDriver,
    DeviceEvent,
    DeviceRefusal,
    Inventory,
    KeyCompromised,
    KeySupply,
    KeyUnavailable,
    NoKeySource,
)
from ..topology import DEFAULT_TOPOLOGY, TopologyError
from ..world import World
from . import aio
from . import messages as m

log = logging.getLogger("qstrata.world")


class TreeNeeded(Exception):
    """The twin asked for a whole configuration tree the agent has not sent yet."""

    def __init__(self, which: str) -> None:
        super().__init__(which)
        self.which = which


class _Txn:
    """A transaction as the twin sees it: the changes, and the trees the agent sent when asked."""

    def __init__(self, changes: tuple[Any, ...]) -> None:
        self.trees: dict[str, Any] = {}
        self.txn = ConfigTransaction(changes, functools.partial(self._tree, "old_config"),
                                     functools.partial(self._tree, "new_config"))

    def _tree(self, which: str) -> Any:
        if which not in self.trees:
            raise TreeNeeded(which)
        return self.trees[which]

    def take_trees(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self.trees.update({k: v for k, v in raw.items() if k in m.TREES and isinstance(v, dict)})


@dataclass(eq=False)
class _Client:
    conn: aio.Connection = field(init=False)
    device: _Device | None = None
    txns: dict[int, _Txn] = field(default_factory=dict)


@dataclass(eq=False)
class _Device:
    name: str
    kind: str
    driver: DeviceDriver
    inventory: Inventory
    client: _Client | None = None
    held: list[DeviceEvent] = field(default_factory=list)
    """Events of the tick in progress: sent after that tick's state."""
    last_state: Any = None
    """The last state queued for the agent (an unchanged one is sent as a clock only)."""
    events: asyncio.Task | None = None


class WorldService:
    """Serves one world's twins on a Unix socket. `clock=False` leaves ticking to the caller
    (tests advance a deterministic world by hand)."""

    def __init__(self, world: World, *, clock: bool = True) -> None:
        self.world = world
        self.clock = clock
        self.devices: dict[str, _Device] = {}
        self.clients: set[_Client] = set()
        self.peers: dict[str, _Client] = {}
        """KME id (lower case) -> the agent connection that answers for it."""
        self._calls: set[asyncio.Task] = set()
        self.path: Path | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.Task | None = None
        self._stopping = False
        world.settled_listeners.append(self._settled)

    async def start(self, path: Path) -> None:
        self._server = await aio.serve(path, self._connected)
        self.path = path
        if self.clock:
            self._ticker = asyncio.create_task(self.world.run(), name="world clock")
        log.info("world service for topology %s (seed %s, speed %gx) on unix:%s", self.world.topology.name,
                 self.world.seed, self.world.speed, path)

    async def stop(self) -> None:
        """Stop listening and ticking, end every agent's connection, stop every device."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        for task in list(self._calls):
            task.cancel()
        for client in list(self.clients):
            await client.conn.close()
        for device in list(self.devices.values()):
            await self._stop_device(device)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    # -- connections -------------------------------------------------------------------------

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client()
        client.conn = aio.Connection(reader, writer, functools.partial(self._request, client))
        self.clients.add(client)
        await client.conn.closed.wait()
        self.clients.discard(client)
        await client.conn.close()
        await self._gone(client)

    async def _gone(self, client: _Client) -> None:
        """An agent's connection ended: forget its transactions; its device, if it still has one,
        keeps running for the next agent of that node."""
        for kme_id in [k for k, c in self.peers.items() if c is client]:
            del self.peers[kme_id]
        device, client.device = client.device, None
        txns, client.txns = client.txns, {}
        if device is None or device.client is not client:
            return
        device.client = None
        device.held.clear()
        for pending in txns.values():
            with contextlib.suppress(Exception):
                await device.driver.abort(pending.txn)
        if not self._stopping:
            log.warning("%s: its agent went away (%s); the device keeps running until an agent attaches again",
                        device.name, client.conn.reason)

    async def _request(self, client: _Client, message: dict[str, Any]) -> None:
        conn = client.conn
        op = message.get("op")
        handler = {"attach": self._attach, "prepare": self._prepare, "commit": self._commit, "abort": self._abort,
                   "detach": self._detach, "plant": self._plant, "key_take": self._key_take,
                   "key_stock": self._key_stock, "key_secret": self._key_secret, "peer_serve": self._peer_serve,
                   }.get(op)  # type: ignore[arg-type]
        if op == "peer_call":  # waits on another agent: never on this connection's reader
            task = asyncio.create_task(self._peer_call(client, message), name="peer call")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            return
        if handler is None:
            conn.reply(message, error=m.error("protocol", f"unknown request {op!r}"))
            return
        try:
            ok = await handler(client, message)
        except DeviceRefusal as exc:
            conn.reply(message, error=m.refusal_to_wire(exc))
        except NoKeySource as exc:
            conn.reply(message, error=m.error("no-key-source", exc.message))
        except KeyCompromised as exc:
            conn.reply(message, error=m.error("key-compromised", exc.message, stock=m.stock_to_wire(exc.stock)))
        except KeyUnavailable as exc:
            conn.reply(message, error=m.error("no-key", exc.message, stock=m.stock_to_wire(exc.stock)))
        except TreeNeeded as exc:
            conn.reply(message, error=m.error("need", f"send {exc.which}", trees=[exc.which]))
        except m.ProtocolError as exc:
            conn.reply(message, error=m.error("protocol", str(exc)))
        except Exception as exc:
            log.exception("%s failed", op)
            conn.reply(message, error=m.error("failed", f"{type(exc).__name__}: {exc}"))
        else:
            conn.reply(message, ok)

    # -- requests ----------------------------------------------------------------------------

    async def _attach(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("protocol") != m.PROTOCOL:
            raise m.ProtocolError(f"this world service speaks protocol {m.PROTOCOL}, the agent {message.get('protocol')}")
        name, kind = message.get("node"), message.get("kind")
        if not isinstance(name, str) or not isinstance(kind, str):
            raise m.ProtocolError("attach names a node and its kind")
        if client.device is not None:
            raise m.ProtocolError(f"this connection already drives {client.device.name}")
        device = self.devices.get(name)
        resumed = None
        if device is not None:
            if device.client is not None:
                raise m.ProtocolError(f"{name} is driven by another agent")
            if device.kind != kind:
                raise m.ProtocolError(f"{name} is a {device.kind} device, not {kind}")
            resumed = _configuration(device.driver)
            if resumed is None:  # the device's configuration is not known for sure: start it afresh
                await self._stop_device(device)
                device = None
        if device is None:
            driver = registry.create_or_empty(self.world, kind, name)
            inventory = await driver.start()
            device = self.devices[name] = _Device(name, kind, driver, inventory)
            device.events = asyncio.create_task(self._forward(device), name=f"world events {name}")
        device.client, client.device = client, device
        device.held.clear()
        state = device.last_state = device.driver.read_state()
        log.info("%s (%s): agent attached%s", name, kind, ", device resumed" if resumed is not None else "")
        config = resumed if resumed is not None else device.inventory.config
        return {**m.inventory_to_wire(Inventory(device.inventory.modules, config)), "resumed": resumed is not None,
                "clock": self._clock(), "state": state}

    def _device(self, client: _Client) -> _Device:
        if client.device is None:
            raise m.ProtocolError("attach first")
        return client.device

    def _txn(self, client: _Client, message: dict[str, Any], *, create: bool) -> tuple[int, _Txn]:
        txn_id = message.get("txn")
        if not isinstance(txn_id, int):
            raise m.ProtocolError("a transaction request carries its txn number")
        found = client.txns.get(txn_id)
        if found is None:
            if not create:
                raise m.ProtocolError(f"transaction {txn_id} was not prepared")
            found = client.txns[txn_id] = _Txn(m.changes_from_wire(message.get("changes")))
        found.take_trees(message.get("trees"))
        return txn_id, found

    async def _phase(self, client: _Client, message: dict[str, Any], phase: str) -> tuple[_Device, int]:
        """Run the driver's `phase` (prepare or commit) on the request's transaction. A twin that
        asks for a whole tree leaves the transaction pending (the agent sends it and asks again);
        anything else that fails ends it: the datastore neither commits nor aborts it then."""
        device = self._device(client)
        txn_id, pending = self._txn(client, message, create=phase == "prepare")
        try:
            await getattr(device.driver, phase)(pending.txn)
        except TreeNeeded:
            raise
        except BaseException:
            client.txns.pop(txn_id, None)
            raise
        return device, txn_id

    async def _prepare(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        await self._phase(client, message, "prepare")
        return {}

    async def _commit(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        device, txn_id = await self._phase(client, message, "commit")
        client.txns.pop(txn_id, None)
        # read your writes: the agent's next read shows what the commit did, before the next tick
        state = device.last_state = device.driver.read_state()
        return {"clock": self._clock(), "state": state}

    async def _abort(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        device = self._device(client)
        txn_id = message.get("txn")
        pending = client.txns.pop(txn_id, None) if isinstance(txn_id, int) else None
        if pending is not None:
            await device.driver.abort(pending.txn)
        return {}

    async def _detach(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        device, client.device = client.device, None
        if device is not None and device.client is client:
            await self._stop_device(device)
            log.info("%s: agent detached, device stopped", device.name)
        return {}

    async def _plant(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        call, args = message.get("call"), message.get("args")
        if call not in m.PLANT_CALLS or not isinstance(args, dict):
            raise m.ProtocolError(f"plant calls are {', '.join(m.PLANT_CALLS)}, with args")
        plant = self.world.plant
        try:
            if call == "set_launch_power":
                plant.set_launch_power(str(args["channel"]), float(args["dbm"]))
            elif call == "set_eavesdropper":
                plant.set_eavesdropper(str(args["fibre"]), float(args["fraction"]))
            else:
                plant.add_loss(str(args["fibre"]), float(args["extra_db"]))
        except ValueError as exc:
            raise m.ProtocolError(f"{call}: {exc}") from None
        except KeyError as exc:
            raise m.ProtocolError(f"{call}: no {exc.args[0]!r} in the plant of {self.world.topology.name}") from None
        log.info("plant: %s %s", call, args)
        return {}

    # -- key supply and the channel between KMEs ---------------------------------------------

    def _keys(self, client: _Client, message: dict[str, Any]) -> tuple[KeySupply, str]:
        device = self._device(client)
        qkdl_id = message.get("qkdl_id")
        if not isinstance(qkdl_id, str):
            raise m.ProtocolError("a key request names its qkdl_id")
        if not isinstance(device.driver, KeySupply):
            raise NoKeySource(f"{device.name} ({device.kind}) makes no key")
        return device.driver, qkdl_id

    async def _key_take(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        driver, qkdl_id = self._keys(client, message)
        nbits = message.get("nbits")
        if not isinstance(nbits, int) or nbits <= 0 or nbits % 8:
            raise m.ProtocolError("key is taken in whole bytes: nbits is a positive multiple of 8")
        return {"ref": m.ref_to_wire(await driver.take_key(qkdl_id, nbits))}

    async def _key_stock(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        driver, qkdl_id = self._keys(client, message)
        return {"stock": m.stock_to_wire(await driver.key_stock(qkdl_id))}

    async def _key_secret(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        _, qkdl_id = self._keys(client, message)
        return {"secret": key_stream.link_secret(self.world.seed, qkdl_id).hex()}

    async def _peer_serve(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        kme_id = message.get("kme_id")
        if not isinstance(kme_id, str) or not kme_id:
            raise m.ProtocolError("peer_serve names a kme_id")
        if message.get("serve", True):
            self.peers[kme_id.lower()] = client
        elif self.peers.get(kme_id.lower()) is client:
            del self.peers[kme_id.lower()]
        return {}

    async def _peer_call(self, client: _Client, message: dict[str, Any]) -> None:
        """Route a call to the agent serving the KME, and its answer back."""
        kme_id = message.get("kme_id")
        target = self.peers.get(kme_id.lower()) if isinstance(kme_id, str) else None
        if target is None:
            client.conn.reply(message, error=m.error("peer-unreachable", f"no KME {kme_id} is reachable"))
            return
        try:
            ok = await target.conn.request("peer", kme_id=kme_id, message=message.get("message"))
        except aio.ConnectionLost as exc:
            client.conn.reply(message, error=m.error("peer-unreachable", f"KME {kme_id} went away: {exc}"))
        except aio.RemoteError as exc:
            client.conn.reply(message, error=exc.error)
        else:
            client.conn.reply(message, ok)

    # -- pushes ------------------------------------------------------------------------------

    def _clock(self) -> dict[str, int]:
        w = self.world
        return {"epoch_unix_ns": w.epoch_unix_ns, "now_ns": w.now_ns, "settled_ns": w.settled_ns,
                "settled_wall_ns": w.settled_wall_ns}

    def _settled(self) -> None:
        """After every tick: each attached agent gets its device's state, then the tick's events."""
        clock = self._clock()
        for device in self.devices.values():
            if device.client is None:
                continue
            conn = device.client.conn
            state = device.driver.read_state()
            if state == device.last_state:
                conn.send({"push": "state", "clock": clock}, key="clock")
            else:
                device.last_state = state
                conn.send({"push": "state", "clock": clock, "state": state}, key="state")
            held, device.held = device.held, []
            for event in held:
                conn.send({"push": "event", "event": m.event_to_wire(event)})

    async def _forward(self, device: _Device) -> None:
        async for event in device.driver.events():
            if device.client is None:
                continue  # nobody manages the device right now: as on hardware, nobody hears it
            if self.world.now_ns != self.world.settled_ns:
                device.held.append(event)  # mid-tick: after the tick's state
            else:
                device.client.conn.send({"push": "event", "event": m.event_to_wire(event)})

    async def _stop_device(self, device: _Device) -> None:
        if self.devices.get(device.name) is device:
            del self.devices[device.name]
        device.client = None
        await device.driver.stop()
        if device.events is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(device.events, 2.0)


def _configuration(driver: DeviceDriver) -> dict[str, Any] | None:
    """The configuration a running twin has, when it knows it for sure (twins keep it in a
    `config_model.ChangeTracker`); None for anything else."""
    tracker = getattr(driver, "tracker", None)
    current = getattr(tracker, "current", None)
    return current() if callable(current) else None


# -- the process ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qstrata.agents.devices.remote.service",
                                description="Serve one physical world and its twins to agent processes "
                                            "(qstrata agent --world unix:PATH).")
    p.add_argument("--socket", required=True, help="the Unix socket to listen on (created mode 0600)")
    p.add_argument("--topology", default=str(DEFAULT_TOPOLOGY), help="topology YAML (default: the built-in testbed)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the topology's)")
    p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall second (default 1)")
    p.add_argument("--until-stdin-closes", action="store_true",
                   help="stop when standard input reaches end of file (the parent holds the other end)")
    return p


async def _serve(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {"speed": args.speed, "epoch_unix_ns": "wall"}
    if args.seed is not None:
        options["seed"] = args.seed
    world = World.from_yaml(args.topology, **options)
    service = WorldService(world)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.until_stdin_closes:
        def stdin_readable() -> None:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(0)
                log.warning("standard input closed (the parent went away): stopping")
                stop.set()
        loop.add_reader(0, stdin_readable)
    await service.start(Path(os.path.abspath(args.socket)))
    try:
        await stop.wait()
    finally:
        await service.stop()
        log.info("world service stopped")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(_serve(args))
    except TopologyError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"world service: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
