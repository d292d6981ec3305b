"""Fixtures for the collector tests: real nats-server and prometheus processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_procs import AgentProcess
from collector_servers import NatsServer, PrometheusServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh `nats-server -js` with its own store directory, stopped after the test."""
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """``prometheus([host:port, ...])`` starts Debian's prometheus scraping those targets every second."""
    started: list[PrometheusServer] = []

    def start(targets: list[str], interval: float = 1.0) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(started)}", targets, interval).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """``agents(name, kind="memory", insecure=False, wait=True)`` starts a real `qstrata agent` with
    gNMI on a fixed free port; every one is stopped after the test."""
    started: list[AgentProcess] = []

    def start(name: str, kind: str = "memory", *, insecure: bool = False, wait: bool = True) -> AgentProcess:
        agent = AgentProcess(tmp_path / "agents", name, kind, insecure=insecure).start(wait=wait)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
