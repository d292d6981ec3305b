"""NETCONF over SSH: a real asyncssh client against the server on 127.0.0.1.

The session handler here is a stand-in for the NETCONF session: it sends a hello, reads the
client's, switches to chunked framing when both speak base:1.1, and echoes every later
message back (``close-session`` closes). That is enough to exercise auth, subsystem
routing, framing across the transport, and the limits.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest
from qstrata.agents.access import users
from qstrata.agents.netconf import ssh
from qstrata.bindings.wire.framing import Framer

T = TypeVar("T")

BASE_1_1 = b"urn:ietf:params:netconf:base:1.1"
CLIENT_HELLO = (
    b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    b"<capability>urn:ietf:params:netconf:base:1.0</capability>"
    b"<capability>urn:ietf:params:netconf:base:1.1</capability>"
    b"</capabilities></hello>"
)


class EchoSession:
    """Answers a hello, then echoes messages in the negotiated framing."""

    def __init__(self, ctx: ssh.SessionContext, seen: list[ssh.SessionContext]) -> None:
        self.ctx = ctx
        self.framer = Framer()
        self.hello_done = False
        seen.append(ctx)

    async def session_started(self) -> None:
        hello = (
            b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
            b"<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities>"
            b"<session-id>%d</session-id></hello>" % self.ctx.session_id
        )
        await self.ctx.send(self.framer.frame(hello))

    async def data_received(self, data: bytes) -> None:
        for message in self.framer.feed(data):
            await self._handle(message)

    async def _handle(self, message: bytes) -> None:
        if not self.hello_done:
            self.hello_done = True
            later = self.framer.use_chunked() if BASE_1_1 in message else self.framer.use_end_of_message()
            for queued in later:
                await self._handle(queued)
            return
        await self.ctx.send(self.framer.frame(b"echo:" + message))
        if b"close-session" in message:
            await self.ctx.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


async def start(state_dir: Path, seen: list[ssh.SessionContext] | None = None, **limits: Any):
    seen = [] if seen is None else seen
    return await ssh.start_netconf_ssh_server(
        "127.0.0.1", 0, state_dir, lambda ctx: EchoSession(ctx, seen), **limits
    )


def connect(server: ssh.NetconfSSHServer, **kwargs: Any):
    options: dict[str, Any] = {
        "known_hosts": None,
        "client_keys": None,
        "agent_path": None,
        "config": None,
        "preferred_auth": "publickey,password",
    }
    options.update(kwargs)
    return asyncssh.connect("127.0.0.1", server.port, **options)


def admin_credentials(state_dir: Path) -> dict[str, str]:
    return json.loads((state_dir / users.CREDENTIALS_FILE).read_text())


async def read_until(stream: asyncssh.SSHReader[bytes], marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = await stream.read(65536)
        if not chunk:
            raise AssertionError(f"EOF before {marker!r}; got {data!r}")
        data += chunk
    return data


def test_first_start_creates_private_state(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with await start(tmp_path):
            pass

    run(scenario)
    for name in (users.CREDENTIALS_FILE, *ssh.HOST_KEY_FILES, users.USERS_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    credentials = admin_credentials(tmp_path)
    assert credentials["username"] == "admin" and len(credentials["password"]) >= 16
    admin = users.load_users(tmp_path)["admin"]
    assert admin.groups == ("admin",)
    assert admin.password_hash.startswith("scrypt$")
    assert credentials["password"] not in (tmp_path / users.USERS_FILE).read_text()
    # A second start keeps the same password and host key.
    keys_before = [(tmp_path / name).read_bytes() for name in ssh.HOST_KEY_FILES]
    run(scenario)
    assert admin_credentials(tmp_path) == credentials
    assert [(tmp_path / name).read_bytes() for name in ssh.HOST_KEY_FILES] == keys_before


def test_password_auth_hello_and_chunked_echo(tmp_path: Path) -> None:
    seen: list[ssh.SessionContext] = []

    async def scenario() -> None:
        async with await start(tmp_path, seen) as server:
            creds = admin_credentials(tmp_path)
            async with connect(server, username=creds["username"], password=creds["password"]) as conn:
                process = await conn.create_process(subsystem="netconf", encoding=None)
                hello = await read_until(process.stdout, b"]]>]]>")
                assert b"<session-id>" in hello and BASE_1_1 in hello
                # The client's hello and its first (chunked) rpc in one write.
                rpc = b'<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'
                client = Framer()
                process.stdin.write(client.frame(CLIENT_HELLO) + b"\n#%d\n%s\n##\n" % (len(rpc), rpc))
                client.feed(hello)
                client.use_chunked()
                reply = await read_until(process.stdout, b"\n##\n")
                assert client.feed(reply) == [b"echo:" + rpc]
                assert list(server.sessions) == [seen[0].session_id]
                close = b'<rpc message-id="2"><close-session/></rpc>'
                process.stdin.write(client.frame(close))
                reply = await read_until(process.stdout, b"\n##\n")
                assert client.feed(reply) == [b"echo:" + close]
                assert await process.stdout.read() == b""  # server closed the channel
                await process.wait_closed()
            ctx = seen[0]
            assert (ctx.username, ctx.groups, ctx.peer[0]) == ("admin", ("admin",), "127.0.0.1")
            assert ctx.session_id >= 1
            for _ in range(50):
                if not server.sessions:
                    break
                await asyncio.sleep(0.01)
            assert not server.sessions

    run(scenario)


def test_wrong_password_and_unknown_user_are_denied(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with await start(tmp_path) as server:
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(server, username="admin", password="not-the-password"):
                    pass
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(server, username="nobody", password="whatever"):
                    pass

    run(scenario)


def test_public_key_auth_after_add_user(tmp_path: Path) -> None:
    seen: list[ssh.SessionContext] = []
    key = asyncssh.generate_private_key("ssh-ed25519")
    other = asyncssh.generate_private_key("ssh-ed25519")

    async def scenario() -> None:
        async with await start(tmp_path, seen) as server:
            # Added while the server runs: users.json is read at each login.
            users.add_user(
                tmp_path, "alice", groups=("operator",), authorized_keys=[key.export_public_key().decode()]
            )
            async with connect(server, username="alice", client_keys=[key]) as conn:
                process = await conn.create_process(subsystem="netconf", encoding=None)
                await read_until(process.stdout, b"]]>]]>")
                process.stdin.write_eof()
                await process.wait_closed()
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(server, username="alice", client_keys=[other]):
                    pass
            # A key-only user has no password.
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(server, username="alice", password=""):
                    pass

    run(scenario)
    assert (seen[0].username, seen[0].groups) == ("alice", ("operator",))


def test_exec_shell_and_other_subsystems_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with await start(tmp_path) as server:
            creds = admin_credentials(tmp_path)
            async with connect(server, username="admin", password=creds["password"]) as conn:
                result = await conn.run("cat /etc/passwd", encoding=None)
                assert result.exit_status == 1
                assert b"only offers the NETCONF subsystem" in result.stderr
                assert result.stdout == b""
                shell = await conn.create_process(encoding=None)
                assert b"interactive shells are not available" in await shell.stderr.read()
                await shell.wait_closed()
                assert shell.exit_status == 1
                other = await conn.create_process(subsystem="yang-push", encoding=None)
                assert b"subsystem 'yang-push' is not available" in await other.stderr.read()
                await other.wait_closed()
                with pytest.raises(asyncssh.ChannelOpenError):  # no file transfer either
                    await conn.start_sftp_client()
                assert not server.sessions

    run(scenario)


def test_max_sessions_is_enforced(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with await start(tmp_path, max_sessions=2) as server:
            password = admin_credentials(tmp_path)["password"]
            first = await connect(server, username="admin", password=password)
            second = await connect(server, username="admin", password=password)
            with pytest.raises(asyncssh.DisconnectError, match="too many sessions"):
                async with connect(server, username="admin", password=password):
                    pass
            # Channels count too: two sessions on the first connection use up the limit.
            one = await first.create_process(subsystem="netconf", encoding=None)
            two = await first.create_process(subsystem="netconf", encoding=None)
            with pytest.raises(asyncssh.ChannelOpenError, match="too many sessions"):
                await second.create_process(subsystem="netconf", encoding=None)
            one.stdin.write_eof()
            await one.wait_closed()
            second.close()
            await second.wait_closed()
            for _ in range(100):  # the freed slots are reusable
                if len(server.sessions) < 2:
                    break
                await asyncio.sleep(0.01)
            async with connect(server, username="admin", password=password) as third:
                process = await third.create_process(subsystem="netconf", encoding=None)
                await read_until(process.stdout, b"]]>]]>")
            two.close()
            first.close()
            await first.wait_closed()

    run(scenario)


def test_idle_sessions_are_closed(tmp_path: Path) -> None:
    lost: list[BaseException | None] = []

    class Recording(EchoSession):
        def connection_lost(self, exc: BaseException | None) -> None:
            lost.append(exc)

    async def scenario() -> None:
        seen: list[ssh.SessionContext] = []
        server = await ssh.start_netconf_ssh_server(
            "127.0.0.1", 0, tmp_path, lambda ctx: Recording(ctx, seen), idle_timeout=0.3
        )
        async with server:
            password = admin_credentials(tmp_path)["password"]
            async with connect(server, username="admin", password=password) as conn:
                process = await conn.create_process(subsystem="netconf", encoding=None)
                await read_until(process.stdout, b"]]>]]>")
                await asyncio.wait_for(conn.wait_closed(), 5)
            assert not server.sessions

    run(scenario)
    assert len(lost) == 1


def test_handler_failure_closes_session_without_traceback_to_client(tmp_path: Path) -> None:
    class Broken(EchoSession):
        async def data_received(self, data: bytes) -> None:
            raise RuntimeError("bug in the session")

    async def scenario() -> None:
        seen: list[ssh.SessionContext] = []
        server = await ssh.start_netconf_ssh_server("127.0.0.1", 0, tmp_path, lambda ctx: Broken(ctx, seen))
        async with server:
            password = admin_credentials(tmp_path)["password"]
            async with connect(server, username="admin", password=password) as conn:
                process = await conn.create_process(subsystem="netconf", encoding=None)
                await read_until(process.stdout, b"]]>]]>")
                process.stdin.write(b"<hello/>]]>]]>")
                rest = await process.stdout.read()
                assert b"Traceback" not in rest and b"RuntimeError" not in rest
                assert await process.stderr.read() == b""
                await process.wait_closed()
            assert not server.sessions

    run(scenario)


def test_closing_another_session_ends_it_promptly(tmp_path: Path) -> None:
    """What <kill-session> needs: session A closes session B by id; B's handler hears
    connection_lost and B's client sees the channel close."""
    lost: list[int] = []
    servers: list[ssh.NetconfSSHServer] = []

    class Killer(EchoSession):
        async def _handle(self, message: bytes) -> None:
            if self.hello_done and message.startswith(b"kill:"):
                await servers[0].sessions[int(message[5:])].close()
            await super()._handle(message)

        def connection_lost(self, exc: BaseException | None) -> None:
            lost.append(self.ctx.session_id)

    async def scenario() -> None:
        seen: list[ssh.SessionContext] = []
        server = await ssh.start_netconf_ssh_server("127.0.0.1", 0, tmp_path, lambda ctx: Killer(ctx, seen))
        servers.append(server)
        async with server:
            password = admin_credentials(tmp_path)["password"]
            async with connect(server, username="admin", password=password) as conn:
                victim = await conn.create_process(subsystem="netconf", encoding=None)
                await read_until(victim.stdout, b"]]>]]>")
                killer = await conn.create_process(subsystem="netconf", encoding=None)
                await read_until(killer.stdout, b"]]>]]>")
                victim_id, killer_id = (ctx.session_id for ctx in seen)
                killer.stdin.write(b"<hello/>]]>]]>kill:%d]]>]]>" % victim_id)
                assert await victim.stdout.read() == b""
                await victim.wait_closed()
                assert lost == [victim_id]
                assert list(server.sessions) == [killer_id]

    run(scenario)
