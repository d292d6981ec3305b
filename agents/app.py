"""The one place where an agent is assembled: device driver -> schema -> datastore -> front ends.

One event loop can host many agents (`Agent` objects); `run_agent` runs one until told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.guard import GuardOptions, LoginGuard
from qstrata.agents.access.nacm import DEFAULT_NACM
from qstrata.agents.access.pki import ensure_tls
from qstrata.agents.access.users import CREDENTIALS_FILE, UserStore, process_admin, update_credentials
from qstrata.agents.datastore.store import Datastore
from qstrata.agents.devices import registry, twin_gc
from qstrata.agents.devices.base import ConfigTransaction, DeviceDriver, DeviceRefusal
from qstrata.agents.devices.empty import KIND_MODULES, EmptyDevice
from qstrata.agents.devices.remote.client import RemoteDriver
from qstrata.agents.devices.world import World, process_world
from qstrata.agents.events import DeviceEvent, EventBus
from qstrata.agents.gnmi.server import GnmiServer, start_gnmi_server
from qstrata.agents.gnmi.service import GnmiService
from qstrata.agents.gnmi.target import GnmiTarget
from qstrata.agents.kme.service import KmeService
from qstrata.agents.netconf.host_keys import process_host_keys
from qstrata.agents.netconf.server import NetconfServer
from qstrata.agents.netconf.ssh import NetconfSSHServer, start_netconf_ssh_server
from qstrata.agents.state_lock import StateDirLock
from qstrata.bindings.schema import SchemaError, get_schema
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

log = logging.getLogger("qstrata.agent")

KINDS = tuple(KIND_MODULES)
AGENT_LOCK = "agent.lock"
"""Held in an agent's state directory while it runs (`state_lock`)."""


@dataclass
class AgentOptions:
    kind: str
    name: str
    state_dir: Path
    listen: str = "127.0.0.1"
    netconf_port: int = 830
    gnmi_port: int | None = None
    """None: no gNMI server of its own; 0: a free port."""
    gnmi_insecure: bool = False
    """Serve gNMI in plain text (only when asked: TLS with the agent's own CA is the default)."""
    gnmi_mtls: bool = False
    """Require client certificates signed by the agent's CA (a client pair is written for users)."""
    gnmi_hostnames: tuple[str, ...] = ()
    """Extra names for the gNMI server certificate (besides localhost, 127.0.0.1 and --listen)."""
    max_sessions: int = 64
    max_sessions_per_user: int | None = 32
    max_unauthenticated: int = 32
    """Connections still authenticating (OpenSSH MaxStartups); beyond it new ones are dropped."""
    login_timeout: float = 10.0
    hello_timeout: float = 30.0
    idle_timeout: float = 3600.0
    ssh_legacy_clients: tuple[str, ...] = ()
    """SSH clients (software version patterns) also offered SHA-1 algorithms: `netconf.ssh_algorithms`."""
    topology: Path | None = None
    """The physical world's topology (default: the built-in testbed)."""
    twin: bool = True
    """Drive the node's digital twin; False serves an empty device (or plug in a real driver)."""
    seed: int | None = None
    speed: float = 1.0
    share_process_secrets: bool = False
    """On a first start, take this process's one SSH host key pair and one ``admin`` password
    instead of generating the agent's own (agents hosted together in one process: see
    `qstrata.agents.netconf.host_keys`)."""
    world: Path | None = None
    """The world service's Unix socket: the node's twin runs there (topology, seed and speed are
    the service's), shared with the agents of the other nodes."""
    kme_port: int | None = None
    """A QKD agent's ETSI GS QKD 014 key delivery API (HTTPS, mutual TLS with the agent's CA) on
    this port (0: a free one); None: its KME relays and keeps figures but serves no SAE."""
    restconf_port: int | None = None
    """RESTCONF (RFC 8040) over HTTPS with the agent's CA and server certificate on this port (0: a
    free one); None: no RESTCONF server."""


def make_driver(options: AgentOptions) -> DeviceDriver:
    """The device behind an agent: the node's twin in the world service when one is given, else in
    this process's world when the topology has a node of that name and kind, else an empty device.
    A hardware driver plugs in here."""
    if not options.twin:
        return EmptyDevice(options.kind, options.name)
    if options.world is not None:
        return RemoteDriver(options.world, options.kind, options.name)
    world_opts: dict = {"speed": options.speed, "epoch_unix_ns": "wall"}
    if options.seed is not None:
        world_opts["seed"] = options.seed
    return registry.create_or_empty(process_world(options.topology, **world_opts), options.kind, options.name)


_clocks: dict[int, asyncio.Task] = {}


def _settle_gc() -> None:
    """Move what the started agent holds (schemas, the datastore, its servers, its twin) to the
    garbage collector's permanent generation, as the collector does once its series settle:
    under the key delivery benchmark a full collection traversed those 90,000 objects every few
    hundred requests (47 ms each, 9% of the process's CPU). Refcounting still frees them. The
    twins' side of the policy is `devices.twin_gc`."""
    twin_gc.settle()


def _ensure_clock(driver: DeviceDriver) -> None:
    """One paced clock per world per process, however many agents share it."""
    world = driver.clock
    if not isinstance(world, World) or id(world) in _clocks and not _clocks[id(world)].done():
        return  # no world, a world service's clock (it ticks there), or one already ticking
    _clocks[id(world)] = asyncio.create_task(world.run())


class Agent:
    def __init__(self, options: AgentOptions, driver: DeviceDriver | None = None) -> None:
        if options.kind not in KINDS:
            raise ValueError(f"unknown agent kind {options.kind!r}; one of {', '.join(KINDS)}")
        given = Path(options.state_dir)
        # absolute: credentials.json records paths under it (the gNMI CA), read from anywhere
        self.options = options = replace(options, state_dir=Path(os.path.abspath(options.state_dir)))
        self.driver = driver or make_driver(options)
        self.bus = EventBus()
        """Commits, device events and sessions, from the core to every front end."""
        self.datastore: Datastore | None = None
        self.access: AccessControl | None = None
        self.netconf: NetconfServer | None = None
        self.ssh: NetconfSSHServer | None = None
        self.gnmi: GnmiServer | None = None
        self.kme: KmeService | None = None
        """A QKD agent's key-management entity (ETSI GS QKD 014 core, `agents/kme/`)."""
        self.kme014: object | None = None
        self.restconf: object | None = None
        """The RESTCONF server (`agents/restconf/`), when asked for."""
        self.kme_ca: Path | None = None
        """The CA of the key delivery API's certificates (SAEs' and the server's)."""
        self._gnmi_target: GnmiTarget | None = None
        self.users = UserStore(options.state_dir)
        """Users and login limits are the agent's, shared by all its front ends."""
        self.guard = LoginGuard(GuardOptions(max_sessions=options.max_sessions,
                                             max_sessions_per_user=options.max_sessions_per_user,
                                             max_unauthenticated=options.max_unauthenticated))
        self._tasks: list[asyncio.Task] = []
        self._lock = StateDirLock(given, AGENT_LOCK, "agent")
        """The state directory is this agent's alone while it runs (two agents on one folder would
        both append to its datastore and KME journals)."""
        self.device_lost = asyncio.Event()
        """The driver's events ended before `stop`: the device went away (DeviceDriver.events)."""

    async def start(self) -> None:
        opts = self.options
        opts.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        inventory = await self.driver.start()
        schema = get_schema(tuple(inventory.modules))
        # a first start's running: what the device has, and the access rules every agent starts with
        initial = DataTree.from_python({**inventory.config, **DEFAULT_NACM}, schema=schema, config_only=True)
        self.datastore = Datastore(schema, opts.state_dir / "datastore", [self.driver], bus=self.bus)
        try:
            self.datastore.load(initial)
        except InvalidData as exc:
            raise SchemaError(f"{self._lock.path.parent}: its saved configuration does not fit a {opts.kind} agent "
                              f"({exc.issues[0]}): is it the state directory of "
                              "another kind of agent?") from None
        await self._replay_restored_config(initial)
        await self.datastore.restore_pending()
        _ensure_clock(self.driver)
        if opts.kind == "qkd":
            datastore = self.datastore
            self.kme = KmeService(self.driver, opts.state_dir / "kme", lambda: datastore.get_config("running"), self.bus)
            await self.kme.start()
            self.datastore.state_sources.append(self.kme.read_state)
        self.access = AccessControl(self.datastore, self.bus)
        self.netconf = NetconfServer(schema, self.datastore, bus=self.bus, access=self.access)
        self.ssh = await start_netconf_ssh_server(
            opts.listen, opts.netconf_port, opts.state_dir, self.netconf.session_factory,
            guard=self.guard, users=self.users, idle_timeout=opts.idle_timeout,
            login_timeout=opts.login_timeout, hello_timeout=opts.hello_timeout,
            legacy_clients=opts.ssh_legacy_clients,
            shared_host_keys=process_host_keys() if opts.share_process_secrets else None,
            shared_admin=process_admin() if opts.share_process_secrets else None)
        if opts.gnmi_port is not None:
            tls = None if opts.gnmi_insecure else ensure_tls(
                opts.state_dir, listen=opts.listen, hostnames=opts.gnmi_hostnames, name=f"qstrata agent {opts.name}",
                client=opts.gnmi_mtls)
            self.gnmi = await start_gnmi_server(GnmiService({opts.name: self.gnmi_target()}), opts.listen,
                                                opts.gnmi_port, tls, require_client_auth=opts.gnmi_mtls)
        if self.kme is not None and opts.kme_port is not None:
            await self._start_kme014()
        if opts.restconf_port is not None:
            await self._start_restconf()
        self._tasks.append(asyncio.create_task(self._forward_events()))
        gnmi = f", gNMI on {opts.listen}:{self.gnmi.port}{' (plain text)' if opts.gnmi_insecure else ''}" \
            if self.gnmi else ""
        kme = f", ETSI 014 key delivery on {self.kme_url}" if self.kme_url else ""
        restconf = f", RESTCONF on {self.restconf_url}" if self.restconf_url else ""
        log.info("agent %s (%s) serving NETCONF on %s:%d%s%s%s; credentials in %s", opts.name, opts.kind, opts.listen,
                 self.ssh.port, gnmi, kme, restconf, opts.state_dir / CREDENTIALS_FILE)
        _settle_gc()

    async def _start_kme014(self) -> None:
        """The key delivery API: the agent's CA and server certificate (the ones gNMI uses), its URL
        in credentials.json (`kme`) for `qstrata sae add` to print."""
        from qstrata.agents.kme014.server import start_kme_server

        opts = self.options
        assert self.kme is not None
        tls = ensure_tls(opts.state_dir, listen=opts.listen, hostnames=opts.gnmi_hostnames,
                         name=f"qstrata agent {opts.name}", client=opts.gnmi_mtls)
        self.kme014 = server = await start_kme_server(self.kme, opts.listen, opts.kme_port or 0, tls)
        self.kme_ca = tls.ca
        update_credentials(opts.state_dir, kme=server.url)

    async def _start_restconf(self) -> None:
        """RESTCONF with the agent's CA and server certificate (the ones gNMI uses), its users and
        NACM; its URL and CA in credentials.json (`restconf`, `restconf_ca`)."""
        from qstrata.agents.restconf.server import RestconfContext, start_restconf_server

        opts = self.options
        assert self.datastore is not None and self.access is not None
        tls = ensure_tls(opts.state_dir, listen=opts.listen, hostnames=opts.gnmi_hostnames,
                         name=f"qstrata agent {opts.name}", client=opts.gnmi_mtls)
        context = RestconfContext(opts.name, self.datastore, self.access, self.bus, self.users, self.guard)
        self.restconf = server = await start_restconf_server(context, opts.listen, opts.restconf_port or 0, tls,
                                                             client_certificates=opts.gnmi_mtls)
        # `ca` names the gNMI CA, a shared gateway's under `qstrata up`: RESTCONF's is the agent's own
        update_credentials(opts.state_dir, restconf=server.url, restconf_ca=str(Path(tls.ca).resolve()))

    @property
    def restconf_url(self) -> str | None:
        return getattr(self.restconf, "url", None)

    @property
    def kme_url(self) -> str | None:
        return getattr(self.kme014, "url", None)

    def gnmi_target(self) -> GnmiTarget:
        """This agent as a gNMI target (for its own server or a gateway shared by many agents)."""
        assert self.datastore is not None and self.access is not None, "start the agent first"
        if self._gnmi_target is None:
            self._gnmi_target = GnmiTarget(self.options.name, self.datastore, self.bus, self.access,
                                           self.users, self.guard)
        return self._gnmi_target

    @property
    def gnmi_port(self) -> int | None:
        return self.gnmi.port if self.gnmi is not None else None

    async def _replay_restored_config(self, initial: DataTree) -> None:
        """The device booted with its inventory; a restored running config is applied to it as a
        transaction, like any other change."""
        assert self.datastore is not None
        running = self.datastore.get_config("running")
        changes = initial.diff(running)
        if not changes:
            return
        txn = ConfigTransaction(tuple(changes), initial.to_python, running.to_python)
        try:
            await self.driver.prepare(txn)
        except DeviceRefusal as exc:
            log.warning("device refused the restored configuration (%s); serving it anyway", exc.message)
            await self.driver.abort(txn)
            return
        await self.driver.commit(txn)

    @property
    def netconf_port(self) -> int:
        assert self.ssh is not None
        return self.ssh.port

    async def _forward_events(self) -> None:
        """Device events onto the bus, stamped in Unix time (a twin counts simulated time)."""
        clock = self.driver.clock
        async for event in self.driver.events():
            when = clock.unix_ns(event.time_ns) if event.time_ns else time.time_ns()
            self.bus.publish(DeviceEvent(event.kind, event.data, event.paths, when))
        self.device_lost.set()  # only `stop` may end them (it cancels this task first)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.restconf is not None:
            await self.restconf.close()  # type: ignore[attr-defined]
        if self.kme014 is not None:
            await self.kme014.close()  # type: ignore[attr-defined]
        if self.gnmi is not None:
            await self.gnmi.close()
        if self.ssh is not None:
            self.ssh.close()
            await self.ssh.wait_closed()
        if self.netconf is not None:
            self.netconf.close()
        if self.access is not None:
            self.access.close()
        if self.kme is not None:
            await self.kme.stop()
        await self.driver.stop()
        if self.datastore and self.datastore.running_store:
            self.datastore.running_store.close()
        self._lock.release()


async def run_agent(options: AgentOptions, stop: asyncio.Event) -> bool:
    """Run one agent until `stop` is set or its device goes away; True when the device went away
    (an agent without its device serves nothing true: it stops, and a supervisor restarts it)."""
    agent = Agent(options)
    await agent.start()
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(agent.device_lost.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await agent.stop()
    return agent.device_lost.is_set()
