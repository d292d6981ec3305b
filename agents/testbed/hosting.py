"""Where a network's agents run: all in this process (one event loop, one shared world), or one
`qstrata agent` process each (`--processes`).

In one process the twins share one physical world, so a cross-connect on the switch agent moves
the light the QKD agents see. With `--processes` the world and every twin run in a world service
process that the agents drive over a Unix socket, so they share it just the same.

Key delivery: every QKD agent serves ETSI GS QKD 014 on a port of its own (a free one), with its
own CA, in both modes. RESTCONF: every agent serves RFC 8040 on a port of its own (a free one),
with the same CA, in both modes.

gNMI: in one process every agent is served through one gateway port (clients pick the agent with
`prefix.target`), unless the topology fixes a node's `gnmi_port`; with `--processes` each agent
gets its own port. Both only once the gNMI agent exists (`gnmi_available()`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qstrata.agents.access.users import CREDENTIALS_FILE, update_credentials
from qstrata.agents.app import Agent, AgentOptions
from qstrata.agents.devices.remote.client import RemotePlant
from qstrata.agents.devices.topology import Node, Topology
from qstrata.bindings.wire.address import https_url

from .endpoints import AgentEndpoint, GnmiEndpoint, HostPort, KmeEndpoint, RestconfEndpoint
from .supervisor import Child, ChildSpec, StartError, Supervisor

log = logging.getLogger("qstrata.up")


def gnmi_available() -> bool:
    """Is the gNMI agent (and its single-port gateway) part of this installation?"""
    try:
        import qstrata.agents.gnmi.gateway  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class HostedAgent:
    """An agent of the network and what runs it. Where it listens is its entry of endpoints.json
    (`endpoint`), held whole rather than restated port by port; its gNMI part is filled in once
    known (`serve_gnmi`: a shared gateway starts after the agents, a CA after the agent wrote it)."""

    endpoint: AgentEndpoint
    agent: Agent | None = None
    process: Child | None = None
    """With --processes: the agent's process, as its supervisor sees it."""

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def state_dir(self) -> Path:
        return Path(self.endpoint.state_dir)

    @property
    def credentials(self) -> Path:
        return Path(self.endpoint.credentials)

    def serve_gnmi(self, port: int, ca: str | None) -> None:
        """gNMI requests reach the agent on `port` (its own or the gateway's, with `prefix.target`
        its name), over TLS with `ca` or, None, in plain text."""
        self.endpoint = replace(self.endpoint, gnmi=GnmiEndpoint(self.endpoint.netconf.host, port, self.name, ca))


def agent_endpoint(node: Node, state_dir: Path, host: str, netconf_port: int, kme_port: int | None,
                   restconf_port: int | None) -> AgentEndpoint:
    """A started agent's entry of endpoints.json, gNMI aside (`HostedAgent.serve_gnmi`). Its KME
    and RESTCONF server present certificates of the agent's CA (`access.pki`), which also signs
    the SAEs' certificates that `qstrata sae add` writes to STATE_DIR/sae."""
    ca = str(state_dir / "gnmi" / "ca.pem")
    return AgentEndpoint(
        node.name, node.kind, str(state_dir), str(state_dir / CREDENTIALS_FILE), HostPort(host, netconf_port),
        kme=KmeEndpoint(https_url(host, kme_port), ca, str(state_dir / "sae")) if kme_port is not None else None,
        restconf=RestconfEndpoint(https_url(host, restconf_port), ca) if restconf_port is not None else None)


@dataclass
class HostOptions:
    topology_path: Path
    state_root: Path
    listen: str = "127.0.0.1"
    speed: float = 1.0
    seed: int | None = None
    base_port: int = 0
    """First NETCONF port for nodes without a fixed one (0: free ports)."""
    gnmi: bool = True
    gnmi_insecure: bool = False


def _netconf_port(node: Node, index: int, base_port: int) -> int:
    if node.netconf_port:
        return node.netconf_port
    return base_port + index if base_port else 0


class InProcessHost:
    """Every agent in this event loop."""

    def __init__(self, topology: Topology, options: HostOptions) -> None:
        self.topology = topology
        self.options = options
        self.agents: list[HostedAgent] = []
        self.gateway: Any = None

    async def start(self, parallel: int = 8) -> list[HostedAgent]:
        """Start every agent, `parallel` at a time (their state-dir bootstrap runs in threads).
        The agents take this process's one SSH host key pair and admin password on a first start
        (`share_process_secrets`): one each per agent made 500 agents take 158 s to start
        (scripts/bench_up.py); a wider gate than 8 measured no faster."""
        o = self.options
        gnmi = o.gnmi and gnmi_available()
        gate = asyncio.Semaphore(parallel)
        slots: list[HostedAgent | None] = [None] * len(self.topology.nodes)

        async def one(i: int, node) -> None:
            fixed_gnmi = node.gnmi_port if gnmi else None
            opts = AgentOptions(kind=node.kind, name=node.name, state_dir=o.state_root / node.name, listen=o.listen,
                                netconf_port=_netconf_port(node, i, o.base_port), topology=o.topology_path,
                                seed=o.seed, speed=o.speed, gnmi_port=int(fixed_gnmi) if fixed_gnmi else None,
                                gnmi_insecure=o.gnmi_insecure, share_process_secrets=True,
                                kme_port=0 if node.kind == "qkd" else None, restconf_port=0)
            async with gate:
                agent = Agent(opts)
                try:
                    await agent.start()
                except OSError as exc:
                    await agent.stop()
                    raise StartError(f"agent {node.name}: cannot listen on {o.listen}:{opts.netconf_port}: "
                                     f"{exc.strerror or exc}") from None
            kme014, restconf = getattr(agent, "kme014", None), getattr(agent, "restconf", None)
            hosted = HostedAgent(agent_endpoint(node, opts.state_dir, o.listen, agent.netconf_port,
                                                kme014.port if kme014 is not None else None,
                                                restconf.port if restconf is not None else None), agent=agent)
            if agent.gnmi_port is not None:
                hosted.serve_gnmi(agent.gnmi_port, self._ca_of(opts.state_dir, o.gnmi_insecure))
            slots[i] = hosted

        results = await asyncio.gather(*(one(i, node) for i, node in enumerate(self.topology.nodes.values())),
                                       return_exceptions=True)
        self.agents = [h for h in slots if h is not None]
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if gnmi:
            await self._start_gateway()
        return self.agents

    @staticmethod
    def _ca_of(state_dir: Path, insecure: bool) -> str | None:
        return None if insecure else _credentials_ca(state_dir)

    async def _start_gateway(self) -> None:
        from qstrata.agents.gnmi.gateway import start_gnmi_gateway

        o = self.options
        shared = [h for h in self.agents if h.endpoint.gnmi is None]
        if not shared:
            return
        port = self.topology.gnmi_gateway_port
        self.gateway = await start_gnmi_gateway([h.agent for h in shared], o.listen, port, o.state_root,
                                                insecure=o.gnmi_insecure)
        ca = str(self.gateway.ca_path) if getattr(self.gateway, "ca_path", None) else None
        for h in shared:
            h.serve_gnmi(self.gateway.port, ca)
        if ca is not None:  # what a gNMI client of each agent must trust, next to its login
            await asyncio.gather(*(asyncio.to_thread(update_credentials, h.state_dir, ca=ca) for h in shared))

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.close()
        for hosted in reversed(self.agents):
            if hosted.agent is not None:
                await hosted.agent.stop()


def _credentials_ca(state_dir: Path) -> str | None:
    """The CA a gNMI server wrote into its credentials.json (TLS), if any."""
    try:
        return json.loads((state_dir / CREDENTIALS_FILE).read_text(encoding="utf-8")).get("ca")
    except (OSError, ValueError):
        return None


def free_ports(host: str, count: int) -> list[int]:
    """Ports free right now (held together while picked, so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ProcessHost:
    """One `qstrata agent` process per node around one world service process, which holds the
    physical world and every node's twin (`agents/devices/remote/`): the agents drive their twins
    over its Unix socket (STATE_DIR/world.sock, mode 0600), so they share one plant and one clock
    as in one process. Started world first, then the agents; supervised (a dead child is
    restarted with back-off, `supervisor.py`); stopped agents first, then the world.

    If the world service dies, its agents lose their devices and stop (exit code 3); the
    supervisor restarts the service, gives it back the scenario's plant changes, and restarts
    the agents, which replay their saved configuration into the new twins."""

    def __init__(self, topology: Topology, options: HostOptions, start_timeout: float = 120.0,
                 say: Callable[[str], None] | None = None,
                 agent_down: Callable[[str, bool, str], None] | None = None) -> None:
        """`say` reports deaths and restarts; `agent_down(name, down, text)` hears when an agent's
        process dies (down) and when it serves again."""
        self.topology = topology
        self.options = options
        self.start_timeout = start_timeout
        self.agents: list[HostedAgent] = []
        self.agent_down = agent_down
        self.supervisor = Supervisor(say or (lambda text: log.info("%s", text)), watcher=self._watched)
        self.world: Child | None = None
        self.world_socket = _socket_path(options.state_root)
        self._plant: RemotePlant | None = None

    async def start(self) -> list[HostedAgent]:
        o = self.options
        nodes = list(self.topology.nodes.values())
        gnmi = o.gnmi and gnmi_available()
        address = f"unix:{self.world_socket}"
        world = [sys.executable, "-m", "qstrata.agents.devices.remote.service", "--socket", str(self.world_socket),
                 "--topology", str(o.topology_path), "--speed", str(o.speed), "--until-stdin-closes"]
        if o.seed is not None:
            world += ["--seed", str(o.seed)]
        self.world = await self.supervisor.start(ChildSpec(
            "world service", world, o.state_root / "world.log", ready=lambda: _unix_answers(self.world_socket),
            lifeline=True, start_timeout=self.start_timeout, restarted=self._world_restarted))
        spare = iter(free_ports(o.listen, 4 * len(nodes)))
        specs = []
        for i, node in enumerate(nodes):
            port = _netconf_port(node, i, o.base_port) or next(spare)
            gnmi_port = (node.gnmi_port or next(spare)) if gnmi else None
            state = o.state_root / node.name
            state.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "qstrata.agents.cli", "agent", "--kind", node.kind, "--name", node.name,
                   "--state-dir", str(state), "--listen", o.listen, "--netconf-port", str(port), "--world", address]
            if gnmi_port is not None:
                cmd += ["--gnmi-port", str(gnmi_port)] + (["--gnmi-insecure"] if o.gnmi_insecure else [])
            kme_port = next(spare) if node.kind == "qkd" else None
            if kme_port is not None:
                cmd += ["--kme-port", str(kme_port)]
            restconf_port = next(spare)
            cmd += ["--restconf-port", str(restconf_port)]
            hosted = HostedAgent(agent_endpoint(node, state, o.listen, port, kme_port, restconf_port))
            if gnmi_port is not None:
                hosted.serve_gnmi(gnmi_port, None)
            self.agents.append(hosted)
            specs.append((hosted, ChildSpec(f"agent {node.name}", cmd, state / "agent.log",
                                            ready=functools.partial(_agent_serves, hosted),
                                            start_timeout=self.start_timeout)))

        async def one(hosted: HostedAgent, spec: ChildSpec) -> None:
            hosted.process = await self.supervisor.start(spec)

        results = await asyncio.gather(*(one(h, spec) for h, spec in specs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        for h in self.agents:
            if h.endpoint.gnmi is not None and not o.gnmi_insecure:
                h.serve_gnmi(h.endpoint.gnmi.port, _credentials_ca(h.state_dir))
        self.supervisor.supervise()
        return self.agents

    def _watched(self, child: Child, down: bool, text: str) -> None:
        if self.agent_down is None:
            return
        for hosted in self.agents:
            if hosted.process is child:
                self.agent_down(hosted.name, down, text)

    def plant(self) -> RemotePlant:
        """The world service's plant, for the scenario (what it changes is given back to a
        restarted service)."""
        if self._plant is None:
            self._plant = RemotePlant(self.world_socket)
        return self._plant

    async def _world_restarted(self) -> None:
        if self._plant is not None and self._plant.journal:
            await self._plant.replay()
            self.supervisor.say(f"world service: {len(self._plant.journal)} scenario change(s) applied again")

    async def stop(self) -> None:
        """Supervision first (nothing restarts from here on), then the agents, then the world."""
        agents = [h.process for h in self.agents if h.process is not None]
        await self.supervisor.stop([agents] + ([[self.world]] if self.world is not None else []))
        if self.world_socket.parent != self.options.state_root:  # a short path of our own (see _socket_path)
            shutil.rmtree(self.world_socket.parent, ignore_errors=True)


UNIX_PATH_MAX = 107
"""Longest Unix socket path Linux takes (sun_path is 108 bytes with the terminating NUL)."""


def _socket_path(state_root: Path) -> Path:
    """STATE_DIR/world.sock, or a fresh private folder under the temporary directory when the state
    directory's path is too long for a Unix socket."""
    path = state_root / "world.sock"
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return path
    return Path(tempfile.mkdtemp(prefix="qstrata-world-")) / "world.sock"


async def _unix_answers(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    return True


async def _agent_serves(hosted: HostedAgent) -> bool:
    """The agent wrote its credentials and accepts TCP connections on its NETCONF port (and on its
    KME's and RESTCONF's, which it opens after NETCONF's)."""
    if not hosted.credentials.exists():
        return False
    e = hosted.endpoint
    for port in (e.netconf.port, *(urlsplit(s.url).port for s in (e.kme, e.restconf) if s is not None)):
        try:
            _, writer = await asyncio.open_connection(e.netconf.host, port)
        except OSError:
            return False
        writer.close()
    return True
