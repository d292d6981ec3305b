"""NETCONF over SSH (RFC 6242): the SSH server, its users and its host key.

This is the only module that imports asyncssh; everything above it sees a `SessionContext`
(who is connected, how to send and close) and implements a `SessionHandler` (what to do
with received bytes). Each SSH channel that asks for the ``netconf`` subsystem becomes one
NETCONF session with its own session-id; shells, commands and other subsystems are refused
with a message on stderr, so an operator typing ``ssh host`` learns what to do instead.

State lives in ``STATE_DIR``:

* ``ssh_host_ed25519_key`` -- the host key, generated on first start (mode 0600);
* ``users.json`` -- ``{username: {"password": "scrypt$N$r$p$salt$hash" | null,
  "groups": [...], "authorized_keys": ["ssh-ed25519 AAAA..."]}}``, re-read at every login so
  `add_user` takes effect without a restart;
* ``credentials.json`` -- written once, on first start, with the generated ``admin``
  password (mode 0600), because a fresh install must be reachable without a default
  password.

Limits protect the box: at most ``max_sessions`` connections and NETCONF sessions, a login
deadline, an idle deadline, a bound on failed passwords per connection. Transport failures
are logged at debug level, never as tracebacks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import inspect
import itertools
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import asyncssh

__all__ = [
    "CREDENTIALS_FILE",
    "HOST_KEY_FILE",
    "NETCONF_SUBSYSTEM",
    "USERS_FILE",
    "NetconfSSHServer",
    "SessionContext",
    "SessionFactory",
    "SessionHandler",
    "User",
    "add_user",
    "ensure_state",
    "hash_password",
    "load_users",
    "start_netconf_ssh_server",
    "verify_password",
]

logger = logging.getLogger("qstrata.netconf")

NETCONF_SUBSYSTEM = "netconf"
HOST_KEY_FILE = "ssh_host_ed25519_key"
USERS_FILE = "users.json"
CREDENTIALS_FILE = "credentials.json"

MAX_AUTH_ATTEMPTS = 6
"""Failed passwords tolerated on one connection before it is dropped."""

_READ_SIZE = 1 << 16
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1  # ~16 MiB, ~50 ms: slow for guessing
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_session_ids = itertools.count(1)


# -- users ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """One entry of ``users.json``. ``groups`` feed access control (NACM) upstream."""

    username: str
    password_hash: str | None = None
    groups: tuple[str, ...] = ()
    authorized_keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "password": self.password_hash,
            "groups": list(self.groups),
            "authorized_keys": list(self.authorized_keys),
        }


def hash_password(password: str) -> str:
    """Salted scrypt hash in the ``users.json`` format ``scrypt$N$r$p$salt_b64$hash_b64``."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, 32)
    return "$".join(("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)))


# Verified against when a user is unknown or has no password, so that costs a real scrypt run.
# Any well-formed value does; no password maps to this digest.
_DUMMY_HASH = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${'A' * 22}==${'A' * 43}="


def verify_password(password: str, stored: str | None) -> bool:
    """Check a password against a stored hash in constant time. Unknown users and users
    without a password cost the same scrypt run, so timing does not reveal which exist."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = (stored or _DUMMY_HASH).split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        actual = _scrypt(password, salt, int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        logger.warning("unusable password hash in %s; treating as no password", USERS_FILE)
        return False
    return hmac.compare_digest(actual, expected) and stored is not None


def load_users(state_dir: Path) -> dict[str, User]:
    """Read ``STATE_DIR/users.json``; an absent file means no users."""
    path = Path(state_dir) / USERS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of users")
    users = {}
    for name, entry in raw.items():
        entry = entry or {}
        users[name] = User(
            username=name,
            password_hash=entry.get("password"),
            groups=tuple(entry.get("groups") or ()),
            authorized_keys=tuple(entry.get("authorized_keys") or ()),
        )
    return users


def add_user(
    state_dir: Path,
    username: str,
    password: str | None = None,
    groups: Iterable[str] = (),
    authorized_keys: Iterable[str] = (),
) -> User:
    """Create or replace a user in ``STATE_DIR/users.json`` (atomically, mode 0600).

    ``password=None`` makes a key-only user. Each authorized key is an OpenSSH public key
    line (``ssh-ed25519 AAAA... comment``) and is checked here, so a typo fails now rather
    than at login.
    """
    if not username or any(ch.isspace() or ord(ch) < 32 for ch in username):
        raise ValueError(f"invalid username {username!r}")
    keys = tuple(line.strip() for line in authorized_keys if line.strip())
    for line in keys:
        try:
            asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ValueError(f"invalid authorized key for {username}: {exc}") from None
    state_dir = Path(state_dir)
    _ensure_dir(state_dir)
    user = User(
        username=username,
        password_hash=hash_password(password) if password is not None else None,
        groups=tuple(groups),
        authorized_keys=keys,
    )
    users = load_users(state_dir)
    users[username] = user
    _write_private(
        state_dir / USERS_FILE,
        json.dumps({name: u.to_json() for name, u in users.items()}, indent=2) + "\n",
    )
    return user


def ensure_state(state_dir: Path) -> None:
    """First-start bootstrap: create the host key and, when there is no ``users.json``, an
    ``admin`` user (group ``admin``) with a random password written to ``credentials.json``."""
    state_dir = Path(state_dir)
    _ensure_dir(state_dir)
    key_path = state_dir / HOST_KEY_FILE
    if not key_path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        _write_private(key_path, key.export_private_key().decode("ascii"))
        logger.info("generated SSH host key %s", key_path)
    elif key_path.stat().st_mode & 0o077:
        logger.warning("SSH host key %s is readable by group or others; chmod 600 it", key_path)
    if not (state_dir / USERS_FILE).exists():
        password = secrets.token_urlsafe(18)
        add_user(state_dir, "admin", password, groups=("admin",))
        credentials = state_dir / CREDENTIALS_FILE
        _write_private(credentials, json.dumps({"username": "admin", "password": password}) + "\n")
        logger.warning("created NETCONF user 'admin'; its password is in %s", credentials)


# -- sessions -------------------------------------------------------------------------------


class SessionHandler(Protocol):
    """What the NETCONF layer implements for one session.

    ``session_started`` is called once, before any data is read: send the server
    ``<hello>`` there (RFC 6241 s8.1: each peer sends its hello as soon as the session
    opens, without waiting for the other's). ``data_received`` gets raw channel bytes (feed
    them to a `Framer`). Both may be coroutines; the next bytes are not read until they
    return, which is the back-pressure on a client that sends faster than the server
    answers. ``connection_lost`` is called exactly once when the channel is gone, whoever
    closed it (``exc`` is None for a clean close). An exception from any of them is logged
    and closes the session.
    """

    def session_started(self) -> Awaitable[None] | None: ...

    def data_received(self, data: bytes) -> Awaitable[None] | None: ...

    def connection_lost(self, exc: BaseException | None) -> None: ...


@dataclass(eq=False)
class SessionContext:
    """What a session knows about its transport: who, which session-id, and how to write.

    ``send`` writes bytes and waits until the channel accepts more (flow control); it is a
    no-op once the session is closed. ``close`` flushes what was sent, then closes the
    channel; ``connection_lost`` follows. Both are coroutines. The server supplies
    ``send_fn``/``close_fn``; a test can build a context around fakes.
    """

    session_id: int
    username: str
    groups: tuple[str, ...]
    peer: tuple[str, int] | None
    send_fn: Callable[[bytes], Awaitable[None]] = field(repr=False)
    close_fn: Callable[[], Awaitable[None]] = field(repr=False)

    async def send(self, data: bytes) -> None:
        await self.send_fn(data)

    async def close(self) -> None:
        await self.close_fn()


SessionFactory = Callable[[SessionContext], SessionHandler]


# -- server ---------------------------------------------------------------------------------


class NetconfSSHServer:
    """A listening NETCONF/SSH server. Close it with `close` + `wait_closed`, `aclose`, or
    ``async with``; closing also disconnects every client."""

    def __init__(
        self,
        state_dir: Path,
        session_factory: SessionFactory,
        *,
        max_sessions: int,
        idle_timeout: float,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self._session_factory = session_factory
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[_Connection] = set()
        self._sessions: dict[int, SessionContext] = {}
        self._pending_channels = 0

    @property
    def port(self) -> int:
        """The TCP port listened on (useful after binding port 0)."""
        assert self._acceptor is not None
        return self._acceptor.get_port()

    @property
    def sessions(self) -> Mapping[int, SessionContext]:
        """Open NETCONF sessions by session-id (e.g. for ``<kill-session>``)."""
        return MappingProxyType(self._sessions)

    def close(self) -> None:
        """Stop listening and disconnect every client."""
        if self._acceptor is not None:
            self._acceptor.close()
        for connection in list(self._connections):
            connection.disconnect("server shutting down")

    async def wait_closed(self) -> None:
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
        for connection in list(self._connections):
            await connection.wait_closed()

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> NetconfSSHServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # bookkeeping used by _Connection and _run_channel

    def _channels_in_use(self) -> int:
        return len(self._sessions) + self._pending_channels

    async def _run_channel(
        self,
        connection: _Connection,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> None:
        connection.channel_started()
        channel = stdout.channel
        try:
            subsystem = channel.get_subsystem()
            if subsystem != NETCONF_SUBSYSTEM:
                _refuse_channel(channel, stderr, subsystem)
                return
            await self._run_session(connection, stdin, stdout)
        except Exception:  # a bug here must not leak past asyncssh as a traceback on stderr
            logger.exception("NETCONF channel from %s failed", connection.peer_text)
            with contextlib.suppress(Exception):
                channel.close()

    async def _run_session(
        self,
        connection: _Connection,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
    ) -> None:
        channel = stdout.channel
        session_id = next(_session_ids)
        closed = False
        reader = asyncio.current_task()
        reading = False

        async def send(data: bytes) -> None:
            if closed or channel.is_closing():
                return
            connection.touch()
            try:
                stdout.write(data)
                await stdout.drain()
            except (OSError, asyncssh.Error) as exc:
                logger.debug("session %d: send failed: %s", session_id, exc)

        async def close() -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            with contextlib.suppress(OSError, asyncssh.Error):
                channel.exit(0)  # flushes pending output, then closes
            if reading and reader is not None and reader is not asyncio.current_task():
                # Closed from elsewhere (kill-session): end the session now rather than when
                # the client acknowledges the close, so connection_lost frees its locks promptly.
                reader.cancel()

        user = load_users(self.state_dir).get(connection.username or "")
        context = SessionContext(
            session_id=session_id,
            username=connection.username or "",
            groups=user.groups if user else (),
            peer=connection.peer,
            send_fn=send,
            close_fn=close,
        )
        self._sessions[session_id] = context
        logger.info(
            "NETCONF session %d started for %s from %s", session_id, context.username, connection.peer_text
        )
        handler: SessionHandler | None = None
        error: BaseException | None = None
        try:
            handler = self._session_factory(context)
            with connection.busy():
                result = handler.session_started()
                if inspect.isawaitable(result):
                    await result
            while not closed:
                try:
                    reading = True
                    data = await stdin.read(_READ_SIZE)
                except asyncio.CancelledError:
                    if not closed or reader is None:
                        raise
                    reader.uncancel()
                    break
                except (asyncssh.BreakReceived, asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
                    continue  # meaningless for a subsystem
                except (OSError, asyncssh.Error) as exc:
                    error = exc
                    logger.debug("session %d: read failed: %s", session_id, exc)
                    break
                finally:
                    reading = False
                if not data:
                    break  # client sent EOF or the channel closed
                connection.touch()
                with connection.busy():
                    result = handler.data_received(data)
                    if inspect.isawaitable(result):
                        await result
        except Exception as exc:
            error = exc
            logger.exception("NETCONF session %d: handler failed; closing the session", session_id)
        finally:
            del self._sessions[session_id]
            await close()
            if handler is not None:
                try:
                    handler.connection_lost(error)
                except Exception:
                    logger.exception("NETCONF session %d: connection_lost failed", session_id)
            logger.info("NETCONF session %d ended", session_id)


def _refuse_channel(
    channel: asyncssh.SSHServerChannel[bytes], stderr: asyncssh.SSHWriter[bytes], subsystem: str | None
) -> None:
    if subsystem:
        what = f"subsystem '{subsystem}' is not available"
    elif channel.get_command():
        what = "command execution is not available"
    else:
        what = "interactive shells are not available"
    message = (
        f"qstrata: {what}; this server only offers the NETCONF subsystem "
        f"(connect with: ssh -s <host> {NETCONF_SUBSYSTEM}).\r\n"
    )
    logger.info("refused a non-NETCONF channel: %s", what)
    stderr.write(message.encode())
    channel.exit(1)


class _Connection(asyncssh.SSHServer):
    """One SSH connection: authentication against ``users.json`` and the connection limits."""

    def __init__(self, server: NetconfSSHServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None
        self._over_limit = False
        self._failed_passwords = 0
        self._pending_channels = 0
        self._busy = 0
        self._last_activity = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closed = asyncio.get_running_loop().create_future()
        self.username: str | None = None
        self.peer: tuple[str, int] | None = None

    @property
    def peer_text(self) -> str:
        return f"{self.peer[0]}:{self.peer[1]}" if self.peer else "?"

    # connection lifecycle

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        skip_ignore_packets(conn)
        peer = conn.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else None
        self._server._connections.add(self)
        self._over_limit = len(self._server._connections) > self._server.max_sessions
        logger.debug("SSH connection from %s", self.peer_text)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        self._server._pending_channels -= self._pending_channels
        self._pending_channels = 0
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if not self._closed.done():
            self._closed.set_result(None)
        logger.debug("SSH connection from %s closed: %s", self.peer_text, exc or "clean")

    def disconnect(self, reason: str, code: int = asyncssh.DISC_BY_APPLICATION) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.disconnect(code, reason)

    async def wait_closed(self) -> None:
        await self._closed

    # authentication

    def begin_auth(self, username: str) -> bool:
        if self._over_limit:
            logger.warning(
                "refusing SSH connection from %s: %d connections already open",
                self.peer_text,
                self._server.max_sessions,
            )
            raise asyncssh.DisconnectError(
                asyncssh.DISC_TOO_MANY_CONNECTIONS,
                f"too many sessions: this server allows {self._server.max_sessions}",
            )
        self.username = username
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        user = load_users(self._server.state_dir).get(username)
        stored = user.password_hash if user else None
        ok = await asyncio.to_thread(verify_password, password, stored)
        if ok:
            return True
        self._failed_passwords += 1
        logger.warning("failed password for %r from %s", username, self.peer_text)
        if self._failed_passwords >= MAX_AUTH_ATTEMPTS:
            raise asyncssh.DisconnectError(
                asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many authentication failures"
            )
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = load_users(self._server.state_dir).get(username)
        if user is None:
            return False
        offered = key.public_data
        for line in user.authorized_keys:
            try:
                if asyncssh.import_public_key(line).public_data == offered:
                    return True
            except (asyncssh.KeyImportError, ValueError):
                logger.warning("unparsable authorized key for %r in %s", username, USERS_FILE)
        return False

    def auth_completed(self) -> None:
        logger.info("%s authenticated from %s", self.username, self.peer_text)
        self.touch()
        self._schedule_idle_check(self._server.idle_timeout)

    # channels

    def session_requested(self) -> Callable[..., Awaitable[None]]:
        if self._server._channels_in_use() >= self._server.max_sessions:
            logger.warning("refusing a session from %s: session limit reached", self.peer_text)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_RESOURCE_SHORTAGE,
                f"too many sessions: this server allows {self._server.max_sessions}",
            )
        self._pending_channels += 1
        self._server._pending_channels += 1

        async def run(stdin: Any, stdout: Any, stderr: Any) -> None:
            await self._server._run_channel(self, stdin, stdout, stderr)

        return run

    def channel_started(self) -> None:
        if self._pending_channels:
            self._pending_channels -= 1
            self._server._pending_channels -= 1

    # idle timeout

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    @contextlib.contextmanager
    def busy(self) -> Any:
        """An RPC being processed is not idleness, however long it takes."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self.touch()

    def _schedule_idle_check(self, delay: float) -> None:
        if self._server.idle_timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(max(delay, 0.01), self._check_idle)

    def _check_idle(self) -> None:
        idle_for = time.monotonic() - self._last_activity
        timeout = self._server.idle_timeout
        if self._busy or idle_for < timeout:
            self._schedule_idle_check(timeout - idle_for if not self._busy else timeout)
            return
        logger.info("closing idle SSH connection from %s after %.0f s", self.peer_text, idle_for)
        self.disconnect(f"idle for more than {timeout:g} s")


async def start_netconf_ssh_server(
    host: str,
    port: int,
    state_dir: Path,
    session_factory: SessionFactory,
    *,
    max_sessions: int = 64,
    idle_timeout: float = 3600.0,
    login_timeout: float = 30.0,
    keepalive_interval: float = 30.0,
) -> NetconfSSHServer:
    """Listen for NETCONF over SSH on ``host:port`` (port 0 picks a free one: see
    `NetconfSSHServer.port`).

    Bootstraps ``state_dir`` on first start (`ensure_state`). For every channel that opens
    the ``netconf`` subsystem, ``session_factory(ctx)`` builds the session's handler.
    ``keepalive_interval`` probes silent clients, so a dead peer's session (and any lock it
    holds) goes away within a few intervals rather than at the idle timeout.
    """
    state_dir = Path(state_dir)
    ensure_state(state_dir)
    server = NetconfSSHServer(
        state_dir, session_factory, max_sessions=max_sessions, idle_timeout=idle_timeout
    )
    server._acceptor = await asyncssh.create_server(
        lambda: _Connection(server),
        host,
        port,
        server_host_keys=[str(state_dir / HOST_KEY_FILE)],
        encoding=None,
        login_timeout=login_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_count_max=3,
        allow_pty=False,
        agent_forwarding=False,
        x11_forwarding=False,
        kbdint_auth=False,
        host_based_auth=False,
        gss_host=None,
        server_version="qstrata",
        # AES-GCM runs in OpenSSL through `cryptography`; asyncssh's chacha20-poly1305 builds
        # a dozen cipher contexts per packet and cost ~12% of an rpc's server time here.
        encryption_algs=SERVER_ENCRYPTION_ALGS,
    )
    logger.info("NETCONF/SSH listening on %s:%d", host, server.port)
    return server


_EMPTY_IGNORE = (b"\0\0\0\0",)  # SSH string b""


def skip_ignore_packets(conn: asyncssh.SSHClientConnection | asyncssh.SSHServerConnection) -> None:
    """asyncssh precedes every packet with an empty SSH_MSG_IGNORE, a countermeasure for CBC
    ciphers (Bellare-Kohno-Namprempre). We offer no CBC cipher, so the extra packet only costs an
    encryption per reply; drop it on this connection. If asyncssh changes, this does nothing."""
    send_packet = conn.send_packet

    def without_ignore(pkttype: int, *args: bytes, handler=None) -> None:
        if pkttype == asyncssh.constants.MSG_IGNORE and args == _EMPTY_IGNORE:
            return
        send_packet(pkttype, *args, handler=handler)

    conn.send_packet = without_ignore  # type: ignore[method-assign]


SERVER_ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
"""SSH picks the client's first algorithm that the server also offers, so chacha20 is not
offered: every NETCONF client (OpenSSH, paramiko/ncclient, asyncssh) offers AES."""


# -- files ----------------------------------------------------------------------------------


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ensure_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically: readers never see half a file,
    and the secret never exists with looser permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
