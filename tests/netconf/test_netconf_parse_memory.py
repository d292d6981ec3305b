"""What parsing a request may cost the agent's memory (issue 21, section 4).

Before: one 11 MiB <rpc> holding a million attributes, under the 16 MiB message cap and refused as
malformed, took the agent from 79 to 406 MB, four in parallel to 1.5 GB, and the memory was never
given back. The safe XML parser now refuses a request whose tree would cost more than a bounded
multiple of its size before libxml2 builds anything, and the agent hands freed memory back after
a big request.
"""

from __future__ import annotations

import asyncio

import pytest
from netconf_helpers import open_session
from qstrata.bindings.wire.netconf_client import BASE, Reply

MIB = 1 << 20
BOMB_ATTRIBUTES = 1_000_000


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return int(fh.read().split(f"{field}:")[1].split()[0]) / 1024


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "parse-memory", twin=False)


def attribute_bomb() -> bytes:
    """An rpc body whose one element carries a million distinct attributes: about 11 MiB."""
    attributes = " ".join(f"a{i}=''" for i in range(BOMB_ATTRIBUTES))
    return f"<get {attributes}/>".encode()


def test_four_attribute_bombs_in_parallel_cost_a_bounded_multiple_and_are_given_back(node) -> None:
    body = attribute_bomb()
    assert 10 * MIB < len(body) < 16 * MIB  # inside the message cap: only the parser can stop it
    pid = node.process.pid

    async def run() -> tuple[float, list[Reply], float]:
        clients = [await open_session(node) for _ in range(4)]
        try:
            for client in clients:  # warm the sessions and the allocator
                await client.rpc("<get-config><source><running/></source></get-config>")
            before = _status_mb(pid, "VmRSS")
            replies = await asyncio.gather(*(client.rpc(body, timeout=120) for client in clients))
            await clients[0].rpc("<get-config><source><running/></source></get-config>")
            return before, replies, _status_mb(pid, "VmRSS")
        finally:
            for client in clients:
                await client.close()

    before, replies, after = asyncio.run(run())
    peak = _status_mb(pid, "VmHWM")
    for reply in replies:
        assert [e.findtext(f"{{{BASE}}}error-tag") for e in reply.errors] == ["malformed-message"], reply.raw[:300]
    sent_mb = 4 * len(body) / MIB
    assert peak - before < 4 * sent_mb, f"RSS peaked at {peak:.0f} MB from {before:.0f} MB for {sent_mb:.0f} MB sent"
    assert after - before < 20, f"RSS went from {before:.0f} to {after:.0f} MB and stayed"
    for reply in replies:
        assert "attributes" in reply.error_summary(), reply.raw[:300]  # the parser says what it refused
