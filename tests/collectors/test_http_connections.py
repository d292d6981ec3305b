"""The collector's HTTP surfaces (the dashboard, the Prometheus endpoint) behind the KME's and
RESTCONF's `ConnectionGuard`, with its figures lowered to seconds, on real loopback servers and
curl as the client: connections that send nothing or an unfinished request head are closed after
the head bound while curl is served; a keep-alive connection is closed after the idle bound;
beyond the cap, connections are closed at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from collector_servers import HOST
from qstrata.bindings.wire.connections import ConnectionGuard
from qstrata.collectors.dashboard.api import DashboardData
from qstrata.collectors.dashboard.server import DashboardServer
from qstrata.collectors.outputs.prometheus import PrometheusOutput
from qstrata.collectors.pipeline import Pipeline

HEAD_S = 1.0
IDLE_S = 1.0
CAP = 40
SLACK_S = 1.5
"""How late a bound may act on a loaded 2-core machine."""


def small_guard() -> ConnectionGuard:
    return ConnectionGuard(max_connections=CAP, head_timeout=HEAD_S, idle_timeout=IDLE_S)


@contextlib.asynccontextmanager
async def dashboard(guard: ConnectionGuard) -> AsyncIterator[tuple[int, str]]:
    pipeline = Pipeline()
    await pipeline.start()
    server = DashboardServer(DashboardData(pipeline, None, None), HOST, 0, guard=guard)
    await server.start()
    try:
        yield server.port, "/api/health"
    finally:
        await server.stop()
        await pipeline.stop()


@contextlib.asynccontextmanager
async def prometheus(guard: ConnectionGuard) -> AsyncIterator[tuple[int, str]]:
    out = PrometheusOutput(HOST, 0, guard=guard)
    pipeline = Pipeline([out])
    await pipeline.start()
    try:
        yield out.port, "/metrics"
    finally:
        await pipeline.stop()


SURFACES = {"dashboard": dashboard, "prometheus": prometheus}


async def curl(port: int, path: str) -> str:
    proc = await asyncio.create_subprocess_exec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10",
                                                f"http://{HOST}:{port}{path}", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return out.decode()


async def open_many(port: int, n: int, first: bytes = b"") -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(HOST, port)
        if first:
            writer.write(first)
        conns.append((reader, writer))
    return conns


async def closed(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds (what it sent before is skipped)."""
    try:
        async with asyncio.timeout(max(within, 0.001)):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def run(surface: Callable, scenario: Callable) -> None:
    async def main() -> None:
        guard = small_guard()
        async with surface(guard) as (port, path):
            await scenario(guard, port, path)
    asyncio.run(main())


@pytest.mark.parametrize("surface", SURFACES)
def test_silent_connections_and_unfinished_heads_are_closed_after_the_head_bound(surface):
    async def scenario(guard: ConnectionGuard, port: int, path: str) -> None:
        start = asyncio.get_running_loop().time()
        conns = await open_many(port, 30) + await open_many(port, 5, first=b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert not any([await closed(r, 0.01) for r, _ in conns]), "nothing is closed before the bound"
        assert await curl(port, path) == "200", "a real client is served meanwhile"
        deadline = start + HEAD_S + SLACK_S
        assert all([await closed(r, deadline - asyncio.get_running_loop().time()) for r, _ in conns])
        assert not guard.open
        for _, w in conns:
            w.close()
    run(SURFACES[surface], scenario)


@pytest.mark.parametrize("surface", SURFACES)
def test_an_idle_keep_alive_connection_is_closed_after_the_idle_bound(surface):
    async def scenario(guard: ConnectionGuard, port: int, path: str) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        assert not await closed(reader, IDLE_S - 0.3), "kept alive for a while"
        assert await closed(reader, SLACK_S + 0.3), "then closed"
        writer.close()
    run(SURFACES[surface], scenario)


@pytest.mark.parametrize("surface", SURFACES)
def test_connections_beyond_the_cap_are_closed_at_once(surface):
    async def scenario(guard: ConnectionGuard, port: int, path: str) -> None:
        conns = await open_many(port, CAP + 20)
        await asyncio.sleep(0.2)
        refused = sum([await closed(r, 0.01) for r, _ in conns])
        assert refused == 20 and len(guard.open) == CAP
        for _, w in conns:
            w.close()
        await asyncio.sleep(0.1)
        assert await curl(port, path) == "200"
    run(SURFACES[surface], scenario)
