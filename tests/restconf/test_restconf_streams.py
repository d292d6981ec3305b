"""RESTCONF event streams (RFC 8040 s6) never hold the agent: SIGTERM stops a `qstrata agent`
process at once with a stream open or just closed (it used to wait for the stream's 15 s
keep-alive), and a stream whose client went away ends then, not at its next write.

The first two run agent processes as a user does; the last runs an agent in this process, to
see its subscribers, and talks to it over real HTTPS on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
from agent_processes import AgentProcess, restconf_agent
from qstrata.agents.app import Agent, AgentOptions

STREAM = "/restconf/streams/NETCONF/json"
PROMPT_S = 2.0
"""How long SIGTERM may take to stop an agent (it takes some 50 ms; the keep-alive is 15 s)."""


def open_stream(agent: AgentProcess) -> requests.Response:
    """A stream whose response head has arrived: the agent has subscribed it."""
    creds = agent.credentials
    response = requests.get(agent.restconf + STREAM, verify=creds["ca"], auth=(creds["username"], creds["password"]),
                            headers={"Accept": "text/event-stream"}, stream=True, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
    return response


def seconds_to_stop(agent: AgentProcess) -> float:
    proc = agent.process
    assert proc is not None and proc.poll() is None
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(PROMPT_S * 3)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the agent still runs {PROMPT_S * 3:g} s after SIGTERM\n{agent.log_text(20)}")
    took = time.monotonic() - start
    assert code == 0, agent.log_text(20)
    return took


@pytest.mark.parametrize("client", ["open", "closed"])
def test_sigterm_stops_the_agent_at_once_with_a_stream(tmp_path: Path, client: str) -> None:
    with restconf_agent(tmp_path / "alice") as agent:
        stream = open_stream(agent)
        if client == "closed":
            stream.close()
            time.sleep(0.2)  # the agent sees the connection go (a keep-alive would find it 15 s later)
        try:
            took = seconds_to_stop(agent)
        finally:
            stream.close()
        assert took < PROMPT_S, f"SIGTERM took {took:.1f} s with a stream {client}"


# ---------------------------------------------------------------------------- a client that goes away


async def _peer_goes_away(state_dir: Path) -> None:
    agent = Agent(AgentOptions(kind="switch", name="sw1", state_dir=state_dir, netconf_port=0, twin=False,
                               restconf_port=0))
    await agent.start()
    try:
        hub = agent.restconf.routes.hub  # type: ignore[attr-defined]
        creds = json.loads((state_dir / "credentials.json").read_text())
        port = int(creds["restconf"].rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=creds["ca"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
        auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
        writer.write(f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                     f"Authorization: Basic {auth}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert len(hub.subscribers) == 1
        writer.close()
        gone = time.monotonic()
        while hub.subscribers and time.monotonic() - gone < PROMPT_S:
            await asyncio.sleep(0.02)
        assert not hub.subscribers, f"the stream outlived its client by {PROMPT_S:g} s (until its next keep-alive)"
    finally:
        await agent.stop()


def test_a_stream_ends_when_its_client_goes_away(tmp_path: Path) -> None:
    asyncio.run(_peer_goes_away(tmp_path / "sw1"))
