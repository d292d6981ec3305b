"""The KME front end's connection guard (`bindings/wire/connections.py`) with small limits, on a
real loopback server: how many connections still sending their first request head it holds,
which one a newcomer evicts, how long a head may take, and the cap on all connections. (The
same guard in front of a running KME, against slowloris: tests/kme/test_kme_network.py.)"""

from __future__ import annotations

import asyncio

from qstrata.bindings.wire.connections import ConnectionGuard, connection_limit


class Answer(asyncio.Protocol):
    """Stands for aiohttp's request handler: answers each complete head with one line."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(b"answer\n")  # type: ignore[attr-defined]


async def closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(100), within) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def scenario() -> None:
    guard = ConnectionGuard(max_connections=12, max_pending=4, head_timeout=1.0, eviction_age=0.3)
    server = await asyncio.get_running_loop().create_server(guard.factory(Answer), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def connect(source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))

    try:
        slow = [await connect("127.0.0.2") for _ in range(4)]
        for _, w in slow:
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        await asyncio.sleep(0.05)
        assert len(guard.pending) == 4
        too_soon = await connect()
        assert await closed(too_soon[0], 0.5), "the table is full and nobody is old enough to evict: dropped"
        await asyncio.sleep(0.3)
        good = await connect()
        assert await closed(slow[0][0], 0.5), "the newcomer evicts the oldest of the busiest source"
        assert not any([await closed(r, 0.05) for r, _ in slow[1:]])
        good[1].write(b"GET / HTTP/1.1\r\n\r\n")
        assert await good[0].readline() == b"answer\n"
        assert good not in guard.pending and len(guard.pending) == 3
        assert all([await closed(r, 1.5) for r, _ in slow[1:]]), "no head within the head timeout: cut"
        good[1].write(b"GET / HTTP/1.1\r\n\r\n")
        assert await good[0].readline() == b"answer\n", "a connection that sent its head stays"
        done = [good]
        for _ in range(11):
            conn = await connect()
            conn[1].write(b"GET / HTTP/1.1\r\n\r\n")
            assert await conn[0].readline() == b"answer\n"
            done.append(conn)
        assert len(guard.open) == 12
        extra = await connect()
        assert await closed(extra[0], 0.5), "beyond the cap on all connections: closed at once"
        assert guard.refused >= 3
        for _, w in done:
            w.close()
    finally:
        server.close()


def test_the_guard_bounds_pending_connections_and_time() -> None:
    asyncio.run(scenario())


def test_never_more_than_half_the_file_descriptors() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_limit(10**9) == soft // 2 and connection_limit(16) == 16
