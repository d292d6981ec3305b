"""Agents that `qstrata up` hosts in one process share one SSH host key pair and one generated
admin password (generated once per process: start-up at scale), written into every agent's state
dir, so a restart serves the same keys and clients' known_hosts stay valid; every agent serves
NETCONF with the keys its state dir holds. A single `qstrata agent` has keys of its own.

Correctness, not timing: scripts/bench_up.py measures how long 500 agents take."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import asyncssh
import yaml
from agent_processes import stop_process
from up_process import start_up

AGENTS = 50
KEY_FILES = ("ssh_host_ed25519_key", "ssh_host_rsa_key")


def topology(n: int) -> dict:
    """`n` unconnected nodes of every kind."""
    kinds = ("qkd", "switch", "memory")
    return {"name": f"keys-{n}", "nodes": [{"name": f"n{i}", "kind": kinds[i % 3]} for i in range(n)]}


def up(state: Path, topo: Path) -> subprocess.Popen:
    """`qstrata up --bare --no-collector` in the background, once it says it runs."""
    return start_up(state, "--bare", "--no-collector", "--topology", str(topo), timeout=120)[0]


def public_keys(state_dir: Path) -> list[asyncssh.SSHKey]:
    return [asyncssh.read_private_key(state_dir / name).convert_to_public() for name in KEY_FILES]


async def netconf_hello(agent: dict, trusted: list[asyncssh.SSHKey], algorithm: str | None = None) -> str:
    """Log in with the agent's credentials, trusting only `trusted` host keys (a known_hosts),
    and read the server's <hello>; returns the host key algorithm the server proved."""
    cred = json.loads(Path(agent["credentials"]).read_text())
    options = {"server_host_key_algs": [algorithm]} if algorithm else {}
    async with asyncssh.connect(agent["netconf"]["host"], agent["netconf"]["port"], username=cred["username"],
                                password=cred["password"], known_hosts=(trusted, [], []), client_keys=None,
                                agent_path=None, config=None, **options) as conn:
        stdin, stdout, _ = await conn.open_session(subsystem="netconf", encoding=None)
        hello = b""
        while b"]]>]]>" not in hello:
            chunk = await asyncio.wait_for(stdout.read(1 << 16), 10)
            assert chunk, f"{agent['name']}: no <hello>"
            hello += chunk
        assert b"<session-id>" in hello
        stdin.close()
        return conn.get_server_host_key().get_algorithm()


async def every_agent_serves(agents: list[dict], known: dict[str, list[asyncssh.SSHKey]]) -> None:
    """Every agent proves one of the keys in `known[name]` (ed25519, the preferred one), and a few
    prove the RSA key too (clients that only know RSA)."""
    gate = asyncio.Semaphore(10)

    async def one(agent: dict, algorithm: str | None) -> str:
        async with gate:
            return await netconf_hello(agent, known[agent["name"]], algorithm)

    proved = await asyncio.gather(*(one(a, "ssh-ed25519") for a in agents),
                                  *(one(a, "rsa-sha2-256") for a in agents[:3]))
    assert proved == ["ssh-ed25519"] * len(agents) + ["ssh-rsa"] * 3


def test_agents_of_one_process_share_one_host_key_pair_kept_across_restarts(tmp_path, agent):
    topo = tmp_path / "topology.yaml"
    topo.write_text(yaml.safe_dump(topology(AGENTS)))
    state = tmp_path / "state"
    proc = up(state, topo)
    try:
        agents = json.loads((state / "endpoints.json").read_text())["agents"]
        assert len(agents) == AGENTS
        dirs = [Path(a["state_dir"]) for a in agents]
        files = {name: {(d / name).read_bytes() for d in dirs} for name in KEY_FILES}
        assert all(len(contents) == 1 for contents in files.values()), "one key pair per process"
        assert all((d / name).stat().st_mode & 0o777 == 0o600 for d in dirs for name in KEY_FILES)
        passwords = {json.loads(Path(a["credentials"]).read_text())["password"] for a in agents}
        assert len(passwords) == 1, "one generated admin password per process"
        known = {a["name"]: public_keys(Path(a["state_dir"])) for a in agents}  # each agent's own known_hosts
        asyncio.run(every_agent_serves(agents, known))
    finally:
        assert stop_process(proc) == 0

    proc = up(state, topo)  # a restart: same state dirs, same keys, known_hosts still valid
    try:
        agents = json.loads((state / "endpoints.json").read_text())["agents"]
        assert {name: {(Path(a["state_dir"]) / name).read_bytes() for a in agents} for name in KEY_FILES} == files
        asyncio.run(every_agent_serves(agents, known))
    finally:
        assert stop_process(proc) == 0

    single = agent("qkd", "alone")  # a `qstrata agent` process of its own: keys of its own
    shared = files["ssh_host_ed25519_key"] | files["ssh_host_rsa_key"]
    assert not {(single.state_dir / name).read_bytes() for name in KEY_FILES} & shared
    endpoint = {"name": "alone", "credentials": str(single.state_dir / "credentials.json"),
                "netconf": {"host": single.host, "port": single.port}}
    assert asyncio.run(netconf_hello(endpoint, public_keys(single.state_dir))) in ("ssh-ed25519", "ssh-rsa")
