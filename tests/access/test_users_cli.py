"""`qstrata user add|list|delete`, run as a subprocess the way operators run it, against a live agent."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest
from ncclient.transport.errors import AuthenticationError, SSHError
from qstrata.agents.access import users

QSTRATA = Path(sys.executable).with_name("qstrata")


def qstrata(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), "user", *map(str, args)], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "user-admin", twin=False)


def test_users_added_while_the_agent_runs_can_log_in(node, connect) -> None:
    added = qstrata("add", "ops", "--state-dir", node.state_dir, "--group", "read-only", "--password-stdin",
                    stdin="ops-secret-1\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "created user ops (groups: read-only; password)"
    m = connect(node, "ops", "ops-secret-1")
    assert m.get_config(source="running").data_ele is not None

    generated = qstrata("add", "gen", "--state-dir", node.state_dir, "--group", "read-write")
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.splitlines()[-1].removeprefix("password: ")
    assert len(password) >= 16 and "shown once" in generated.stderr
    assert password not in (node.state_dir / users.USERS_FILE).read_text()
    assert connect(node, "gen", password).connected

    listed = qstrata("list", "--state-dir", node.state_dir, "--json")
    assert listed.returncode == 0
    assert {u["username"]: (u["groups"], u["password"]) for u in json.loads(listed.stdout)} == {
        "admin": (["admin"], True), "ops": (["read-only"], True), "gen": (["read-write"], True)}
    assert "scrypt" not in listed.stdout
    table = qstrata("list", "--state-dir", node.state_dir)
    assert table.stdout.splitlines()[0].split() == ["user", "groups", "login"]

    deleted = qstrata("delete", "gen", "--state-dir", node.state_dir)
    assert deleted.returncode == 0 and deleted.stdout.strip() == "deleted user gen"
    with pytest.raises((AuthenticationError, SSHError)):
        connect(node, "gen", password)


def test_key_only_user(node, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    pub = tmp_path / "id_ed25519.pub"
    pub.write_bytes(key.export_public_key())
    added = qstrata("add", "robot", "--state-dir", node.state_dir, "--no-password", "--authorized-key", pub)
    assert added.returncode == 0, added.stderr
    assert "1 key" in added.stdout and "password:" not in added.stdout

    async def login() -> bytes:
        async with asyncssh.connect(node.host, node.port, username="robot", client_keys=[key], known_hosts=None,
                                    agent_path=None, config=None) as conn:
            stdin, stdout, _ = await conn.open_session(subsystem="netconf", encoding=None)
            data = b""
            while b"]]>]]>" not in data:
                data += await stdout.read(65536)
            return data

    assert b"<session-id>" in asyncio.run(asyncio.wait_for(login(), 30))


@pytest.mark.parametrize("args,stdin,message", [
    (["add", "admin"], None, "user 'admin' already exists (use --replace to overwrite it)"),
    (["add", "bad name"], None, "invalid username 'bad name'"),
    (["add", "k", "--no-password"], None, "--no-password needs at least one --authorized-key"),
    (["add", "k", "--authorized-key", "ssh-ed25519 AAAA"], None, "invalid authorized key for k: key data is truncated"),
    (["add", "k", "--authorized-key", "/nonexistent/id.pub"], None, "cannot read /nonexistent/id.pub"),
    (["add", "k", "--password-stdin"], "", "no password on standard input"),
    (["delete", "nobody"], None, "no user 'nobody' in"),
])
def test_errors_are_one_clear_line(node, args, stdin, message) -> None:
    before = (node.state_dir / users.USERS_FILE).read_bytes()
    proc = qstrata(*args, "--state-dir", node.state_dir, stdin=stdin)
    assert proc.returncode == 1, proc
    assert proc.stderr.startswith(f"qstrata user: {message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert (node.state_dir / users.USERS_FILE).read_bytes() == before  # nothing changed


def test_missing_state_dir_and_usage_errors(tmp_path: Path) -> None:
    missing = qstrata("list", "--state-dir", tmp_path / "nowhere")
    assert missing.returncode == 1 and "no users.json in" in missing.stderr
    usage = qstrata("add", "--state-dir", tmp_path)
    assert usage.returncode == 2 and "username" in usage.stderr
    both = qstrata("add", "x", "--state-dir", tmp_path, "--password-stdin", "--no-password")
    assert both.returncode == 2 and "not allowed with" in both.stderr
