"""Where a network's agents run: all in this process (one event loop, one shared world), or one
`qstrata agent` process each (`--processes`).

In one process the twins share one physical world, so a cross-connect on the switch agent moves
the light the QKD agents see. Separate processes each load their own copy of the world from the
same topology: the management plane is the same, but a change in one process's plant is not seen
by the twins of another (there is no plant shared between processes).

gNMI: in one process every agent is served through one gateway port (clients pick the agent with
`prefix.target`), unless the topology fixes a node's `gnmi_port`; with `--processes` each agent
gets its own port. Both only once the gNMI agent exists (`gnmi_available()`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qstrata.agents.access.users import CREDENTIALS_FILE, update_credentials
from qstrata.agents.app import Agent, AgentOptions
from qstrata.agents.devices.topology import Node, Topology

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
    name: str
    kind: str
    state_dir: Path
    host: str
    netconf_port: int
    gnmi_port: int | None = None
    gnmi_ca: str | None = None
    agent: Agent | None = None
    process: subprocess.Popen | None = None

    @property
    def credentials(self) -> Path:
        return self.state_dir / CREDENTIALS_FILE


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


class StartError(Exception):
    """An agent could not start; the message names it and says why."""


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
                                gnmi_insecure=o.gnmi_insecure, share_process_secrets=True)
            async with gate:
                agent = Agent(opts)
                try:
                    await agent.start()
                except OSError as exc:
                    await agent.stop()
                    raise StartError(f"agent {node.name}: cannot listen on {o.listen}:{opts.netconf_port}: "
                                     f"{exc.strerror or exc}") from None
            hosted = HostedAgent(node.name, node.kind, opts.state_dir, o.listen, agent.netconf_port, agent=agent)
            if agent.gnmi_port is not None:
                hosted.gnmi_port = agent.gnmi_port
                hosted.gnmi_ca = self._ca_of(opts.state_dir, o.gnmi_insecure)
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
        shared = [h for h in self.agents if h.gnmi_port is None]
        if not shared:
            return
        port = self.topology.gnmi_gateway_port
        self.gateway = await start_gnmi_gateway([h.agent for h in shared], o.listen, port, o.state_root,
                                                insecure=o.gnmi_insecure)
        ca = str(self.gateway.ca_path) if getattr(self.gateway, "ca_path", None) else None
        for h in shared:
            h.gnmi_port, h.gnmi_ca = self.gateway.port, ca
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
    """One `qstrata agent` process per node, started together and stopped with SIGTERM."""

    def __init__(self, topology: Topology, options: HostOptions, start_timeout: float = 120.0) -> None:
        self.topology = topology
        self.options = options
        self.start_timeout = start_timeout
        self.agents: list[HostedAgent] = []

    async def start(self) -> list[HostedAgent]:
        o = self.options
        nodes = list(self.topology.nodes.values())
        gnmi = o.gnmi and gnmi_available()
        spare = iter(free_ports(o.listen, 2 * len(nodes)))
        for i, node in enumerate(nodes):
            port = _netconf_port(node, i, o.base_port) or next(spare)
            gnmi_port = (node.gnmi_port or next(spare)) if gnmi else None
            state = o.state_root / node.name
            state.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "qstrata.agents.cli", "agent", "--kind", node.kind, "--name", node.name,
                   "--state-dir", str(state), "--listen", o.listen, "--netconf-port", str(port),
                   "--topology", str(o.topology_path), "--speed", str(o.speed)]
            if o.seed is not None:
                cmd += ["--seed", str(o.seed)]
            if gnmi_port is not None:
                cmd += ["--gnmi-port", str(gnmi_port)] + (["--gnmi-insecure"] if o.gnmi_insecure else [])
            logfile = open(state / "agent.log", "ab")  # noqa: SIM115 (the child owns it from here)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            logfile.close()
            self.agents.append(HostedAgent(node.name, node.kind, state, o.listen, port, gnmi_port, process=proc))
        await asyncio.gather(*(self._ready(h) for h in self.agents))
        for h in self.agents:
            if h.gnmi_port is not None and not o.gnmi_insecure:
                h.gnmi_ca = _credentials_ca(h.state_dir)
        return self.agents

    async def _ready(self, hosted: HostedAgent) -> None:
        """Until the agent accepts TCP connections on its NETCONF port and wrote its credentials."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        assert hosted.process is not None
        while loop.time() < deadline:
            if hosted.process.poll() is not None:
                tail = (hosted.state_dir / "agent.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise StartError(f"agent {hosted.name} exited with {hosted.process.returncode}: " + " / ".join(tail))
            if hosted.credentials.exists():
                try:
                    _, writer = await asyncio.open_connection(hosted.host, hosted.netconf_port)
                except OSError:
                    pass
                else:
                    writer.close()
                    return
            await asyncio.sleep(0.2)
        raise StartError(f"agent {hosted.name} did not listen on {hosted.host}:{hosted.netconf_port} "
                         f"within {self.start_timeout:g} s (log: {hosted.state_dir / 'agent.log'})")

    async def stop(self) -> None:
        procs = [h.process for h in self.agents if h.process is not None and h.process.poll() is None]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while any(p.poll() is None for p in procs) and loop.time() < deadline:
            await asyncio.sleep(0.1)
        for p in procs:
            if p.poll() is None:
                log.warning("agent pid %d did not stop within 15 s: killed", p.pid)
                p.kill()
                p.wait()
