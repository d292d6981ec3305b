"""NETCONF over SSH (RFC 6242): the SSH server and its host keys.

This, `host_keys` and `ssh_algorithms` are the only agent modules that import asyncssh; everything above them
sees a `SessionContext` (who is connected, how to send and close) and implements a
`SessionHandler` (what to do with received bytes). Each SSH channel that asks for the
``netconf`` subsystem becomes one NETCONF session with its own session-id; shells, commands and
other subsystems are refused with a message on stderr, so an operator typing ``ssh host``
learns what to do instead. A ``pty-req`` is accepted and ignored (OpenSSH ``ssh -tt`` and
scrapli's system transport send one before asking for the subsystem); nothing is translated,
the channel stays binary.

Host keys live in ``STATE_DIR``, made on first start (mode 0600; see `host_keys`, also for
agents sharing a process): ``ssh_host_ed25519_key`` and ``ssh_host_rsa_key`` (3072 bits, for
clients that only know RSA; signatures rsa-sha2-256 and rsa-sha2-512: no SHA-1 anywhere unless a
legacy client is named, see `ssh_algorithms`). Users,
passwords and groups are the access service's (`qstrata.agents.access.users`); login
protection is its `LoginGuard`:

* authentication must finish within ``login_timeout``; connections still authenticating are
  bounded by ``max_unauthenticated`` (beyond it a newcomer evicts a stale one or is dropped at
  once), so silent TCP connections cannot lock users out;
* failed passwords are delayed per source address (exponential back-off), and a connection
  is dropped after `MAX_AUTH_ATTEMPTS` failures;
* only authenticated connections and NETCONF sessions count against ``max_sessions`` and
  ``max_sessions_per_user``;
* a session whose client has not completed its ``<hello>`` within ``hello_timeout`` is closed,
  and so is a logged-in connection that has had no live NETCONF session for as long (it holds
  a per-user slot); a connection idle for ``idle_timeout`` is dropped.

Transport failures are logged at debug level, never as tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import asyncssh
from qstrata.agents.access.guard import GuardOptions, LimitExceeded, LoginGuard, Slot
from qstrata.agents.access.users import SharedAdmin, UserStore, ensure_admin
from qstrata.agents.netconf.host_keys import (
    HOST_KEY_FILE,
    HOST_KEY_FILES,
    RSA_HOST_KEY_FILE,
    SharedHostKeys,
    ensure_host_keys,
    load_host_keys,
)
from qstrata.agents.netconf.ssh_algorithms import SshAlgorithms

__all__ = [
    "HOST_KEY_FILE",
    "HOST_KEY_FILES",
    "NETCONF_SUBSYSTEM",
    "RSA_HOST_KEY_FILE",
    "NetconfSSHServer",
    "SessionContext",
    "SessionFactory",
    "SessionHandler",
    "ensure_host_keys",
    "start_netconf_ssh_server",
]

logger = logging.getLogger("qstrata.netconf")

NETCONF_SUBSYSTEM = "netconf"

MAX_AUTH_ATTEMPTS = 6
"""Failed passwords tolerated on one connection before it is dropped."""

_READ_SIZE = 1 << 16
_session_ids = itertools.count(1)


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
    channel; ``connection_lost`` follows. Both are coroutines. ``established`` tells the
    transport that the hello exchange is complete, which stops the hello timeout. The server
    supplies the functions; a test can build a context around fakes.
    """

    session_id: int
    username: str
    groups: tuple[str, ...]
    peer: tuple[str, int] | None
    send_fn: Callable[[bytes], Awaitable[None]] = field(repr=False)
    close_fn: Callable[[], Awaitable[None]] = field(repr=False)
    established_fn: Callable[[], None] = field(default=lambda: None, repr=False)

    async def send(self, data: bytes) -> None:
        await self.send_fn(data)

    async def close(self) -> None:
        await self.close_fn()

    def established(self) -> None:
        self.established_fn()


SessionFactory = Callable[[SessionContext], SessionHandler]


# -- server ---------------------------------------------------------------------------------


class NetconfSSHServer:
    """A listening NETCONF/SSH server. Close it with `close` + `wait_closed`, `aclose`, or
    ``async with``; closing also disconnects every client."""

    def __init__(
        self,
        users: UserStore,
        session_factory: SessionFactory,
        guard: LoginGuard,
        *,
        idle_timeout: float,
        hello_timeout: float,
        algorithms: SshAlgorithms | None = None,
    ) -> None:
        self.users = users
        self.algorithms = algorithms or SshAlgorithms()
        self.guard = guard
        self.idle_timeout = idle_timeout
        self.hello_timeout = hello_timeout
        self._session_factory = session_factory
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[_Connection] = set()
        self._sessions: dict[int, SessionContext] = {}

    @property
    def state_dir(self) -> Path:
        return self.users.state_dir

    @property
    def max_sessions(self) -> int:
        return self.guard.options.max_sessions

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

    async def _run_channel(
        self,
        connection: _Connection,
        pending: _PendingChannel,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> None:
        channel = stdout.channel
        try:
            subsystem = channel.get_subsystem()
            if subsystem != NETCONF_SUBSYSTEM:
                _refuse_channel(channel, stderr, subsystem)
                return
            await self._run_session(connection, pending, stdin, stdout)
        except Exception:  # a bug here must not leak past asyncssh as a traceback on stderr
            logger.exception("NETCONF channel from %s failed", connection.peer_text)
            with contextlib.suppress(Exception):
                channel.close()
        finally:
            connection.channel_ended(pending)

    async def _run_session(
        self,
        connection: _Connection,
        pending: _PendingChannel,
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
                # Closed from elsewhere (kill-session, hello timeout): end the session now rather
                # than when the client acknowledges the close, so connection_lost frees its locks
                # promptly.
                reader.cancel()

        def hello_expired() -> None:
            logger.info("NETCONF session %d from %s: no <hello> within %g s; closing", session_id,
                        connection.peer_text, self.hello_timeout)
            asyncio.ensure_future(close())

        pending.on_expiry(hello_expired)
        user = self.users.get(connection.username or "")
        context = SessionContext(
            session_id=session_id,
            username=connection.username or "",
            groups=user.groups if user else (),
            peer=connection.peer,
            send_fn=send,
            close_fn=close,
            established_fn=lambda: connection.session_established(pending),
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


class _PendingChannel:
    """One session channel from open to close: its session slot and its hello deadline. The
    deadline runs from the channel's opening, so a client that opens channels and never asks
    for the subsystem (or never sends its hello) does not hold slots either."""

    def __init__(self, slot: Slot, channel: asyncssh.SSHServerChannel, hello_timeout: float,
                 ended: Callable[[_PendingChannel], None]) -> None:
        self.slot = slot
        self.channel = channel
        self.live = False
        """The client's <hello> came: a NETCONF session runs on this channel."""
        self._ended = ended
        self._expiry: Callable[[], None] = self._close_channel
        self._timer: asyncio.TimerHandle | None = None
        if hello_timeout > 0:
            self._timer = asyncio.get_running_loop().call_later(hello_timeout, self._expired)

    def on_expiry(self, callback: Callable[[], None]) -> None:
        self._expiry = callback

    def established(self) -> None:
        self.live = True
        self._stop_timer()

    def release(self) -> None:
        self._stop_timer()
        self.slot.release()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        self._expiry()

    def _close_channel(self) -> None:
        logger.info("closing an SSH channel that did not start a NETCONF session in time")
        with contextlib.suppress(Exception):
            self.channel.close()
        self._ended(self)


class _Connection(asyncssh.SSHServer):
    """One SSH connection: authentication against the user store, and the guard's limits."""

    def __init__(self, server: NetconfSSHServer) -> None:
        self._server = server
        self._guard = server.guard
        self._conn: asyncssh.SSHServerConnection | None = None
        self._failed_passwords = 0
        self._login_slot: Slot | None = None
        self._channels: set[_PendingChannel] = set()
        self._sessionless_timer: asyncio.TimerHandle | None = None
        self._busy = 0
        self._last_activity = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closed = asyncio.get_running_loop().create_future()
        self.username: str | None = None
        self.peer: tuple[str, int] | None = None

    @property
    def peer_text(self) -> str:
        return f"{self.peer[0]}:{self.peer[1]}" if self.peer else "?"

    @property
    def source(self) -> str:
        return self.peer[0] if self.peer else "?"

    # connection lifecycle

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        skip_ignore_packets(conn)
        peer = conn.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else None
        self._server.algorithms.apply(conn, self.peer_text)
        self._server._connections.add(self)
        admitted, evicted = self._guard.pending.admit(self, self.source)
        if evicted is not None:
            logger.warning("dropping unauthenticated SSH connection from %s to make room for %s",
                           evicted.peer_text, self.peer_text)
            evicted.disconnect("too many unauthenticated connections", asyncssh.DISC_TOO_MANY_CONNECTIONS)
        if not admitted:
            logger.warning("dropping SSH connection from %s: %d connections are still authenticating",
                           self.peer_text, self._guard.pending.limit)
            # After asyncssh has sent its version line, so the client can read the reason.
            asyncio.get_running_loop().call_soon(
                self.disconnect, "too many unauthenticated connections", asyncssh.DISC_TOO_MANY_CONNECTIONS)
            return
        logger.debug("SSH connection from %s", self.peer_text)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        self._guard.pending.done(self)
        if self._login_slot is not None:
            self._login_slot.release()
        for pending in list(self._channels):
            self.channel_ended(pending)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._sessionless_timer is not None:
            self._sessionless_timer.cancel()
            self._sessionless_timer = None
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
        self.username = username
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        waited = await self._guard.backoff.wait(self.source)
        if waited:
            logger.info("delayed a password attempt from %s by %.1f s after failures", self.peer_text, waited)
        user = await self._server.users.authenticate_password(username, password)
        if user is None:
            self._guard.backoff.failed(self.source, username)
            self._failed_passwords += 1
            logger.warning("failed password for %r from %s", username, self.peer_text)
            if self._failed_passwords >= MAX_AUTH_ATTEMPTS:
                raise asyncssh.DisconnectError(
                    asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many authentication failures"
                )
            return False
        self._guard.backoff.succeeded(self.source, username)
        self._check_login(username)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._server.users.authorized_key(username, key.public_data) is None:
            return False
        self._check_login(username)
        return True

    def _check_login(self, username: str) -> None:
        """Refuse, with the reason, a login beyond the session limits: checked once the
        credentials are proven, so unauthenticated clients learn nothing and hold nothing."""
        try:
            self._guard.connections.check(username)
        except LimitExceeded as exc:
            logger.warning("refusing login of %r from %s: %s", username, self.peer_text, exc.reason)
            raise asyncssh.DisconnectError(asyncssh.DISC_TOO_MANY_CONNECTIONS, exc.reason) from None

    def auth_completed(self) -> None:
        self._guard.pending.done(self)
        try:
            self._login_slot = self._guard.connections.acquire(self.username or "")
        except LimitExceeded as exc:  # another login won the race for the last slot
            logger.warning("refusing login of %r from %s: %s", self.username, self.peer_text, exc.reason)
            self.disconnect(exc.reason, asyncssh.DISC_TOO_MANY_CONNECTIONS)
            return
        logger.info("%s authenticated from %s", self.username, self.peer_text)
        self.touch()
        self._schedule_idle_check(self._server.idle_timeout)
        self._expect_session()

    # channels

    def session_requested(self) -> tuple[asyncssh.SSHServerChannel, Callable[..., Awaitable[None]]]:
        try:
            slot = self._guard.sessions.acquire(self.username or "")
        except LimitExceeded as exc:
            logger.warning("refusing a session of %r from %s: %s", self.username, self.peer_text, exc.reason)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_RESOURCE_SHORTAGE, exc.reason) from None
        assert self._conn is not None
        channel = self._conn.create_server_channel(encoding=None)
        pending = _PendingChannel(slot, channel, self._server.hello_timeout, self.channel_ended)
        self._channels.add(pending)

        async def run(stdin: Any, stdout: Any, stderr: Any) -> None:
            await self._server._run_channel(self, pending, stdin, stdout, stderr)

        return channel, run

    def channel_ended(self, pending: _PendingChannel) -> None:
        if pending in self._channels:
            self._channels.discard(pending)
            pending.release()
            if pending.live and not self._closed.done():
                self._expect_session()

    def session_established(self, pending: _PendingChannel) -> None:
        pending.established()
        if self._sessionless_timer is not None:
            self._sessionless_timer.cancel()
            self._sessionless_timer = None

    # a connection without a session

    def _expect_session(self) -> None:
        """An authenticated connection holds a per-user slot: one that has no NETCONF session
        (none opened, none said hello, or the last one ended) is closed after the hello timeout,
        not the idle timeout, so clients that log in and go quiet cannot lock their user out."""
        timeout = self._server.hello_timeout
        if timeout <= 0 or self._sessionless_timer is not None or any(p.live for p in self._channels):
            return
        self._sessionless_timer = asyncio.get_running_loop().call_later(timeout, self._sessionless_expired)

    def _sessionless_expired(self) -> None:
        self._sessionless_timer = None
        if any(p.live for p in self._channels):
            return
        logger.info("closing SSH connection from %s: no NETCONF session within %g s", self.peer_text,
                    self._server.hello_timeout)
        self.disconnect(f"no NETCONF session within {self._server.hello_timeout:g} s")

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
    max_sessions_per_user: int | None = 32,
    max_unauthenticated: int = 32,
    idle_timeout: float = 3600.0,
    login_timeout: float = 10.0,
    hello_timeout: float = 30.0,
    keepalive_interval: float = 30.0,
    guard: LoginGuard | None = None,
    users: UserStore | None = None,
    shared_host_keys: SharedHostKeys | None = None,
    shared_admin: SharedAdmin | None = None,
    legacy_clients: tuple[str, ...] = (),
) -> NetconfSSHServer:
    """Listen for NETCONF over SSH on ``host:port`` (port 0 picks a free one: see
    `NetconfSSHServer.port`).

    Bootstraps ``state_dir`` on first start (host keys; the ``admin`` user when there is no
    ``users.json``). For every channel that opens the ``netconf`` subsystem,
    ``session_factory(ctx)`` builds the session's handler. ``guard`` and ``users`` are the
    agent's shared access service (built from the limits given here when omitted).
    ``keepalive_interval`` probes silent clients, so a dead peer's session (and any lock it
    holds) goes away within a few intervals rather than at the idle timeout. A timeout of 0
    disables it. ``shared_host_keys`` and ``shared_admin`` make a first start use the process's
    host key pair and ``admin`` password rather than new ones (agents hosted in one process).
    ``legacy_clients`` name old SSH clients offered SHA-1 algorithms too (see `ssh_algorithms`).
    """
    state_dir = Path(state_dir)
    host_keys = await asyncio.to_thread(_bootstrap, state_dir, shared_host_keys, shared_admin)
    guard = guard or LoginGuard(GuardOptions(
        max_sessions=max_sessions,
        max_sessions_per_user=max_sessions_per_user,
        max_unauthenticated=max_unauthenticated,
    ))
    algorithms = SshAlgorithms(tuple(legacy_clients))
    server = NetconfSSHServer(
        users or UserStore(state_dir), session_factory, guard,
        idle_timeout=idle_timeout, hello_timeout=hello_timeout, algorithms=algorithms,
    )
    server._acceptor = await asyncssh.create_server(
        lambda: _Connection(server),
        host,
        port,
        server_host_keys=host_keys,
        encoding=None,
        login_timeout=login_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_count_max=3,
        allow_pty=True,  # accepted and ignored: see the module docstring
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        kbdint_auth=False,
        host_based_auth=False,
        gss_host=None,
        server_version="qstrata",
        # AES-GCM runs in OpenSSL through `cryptography`; asyncssh's chacha20-poly1305 builds
        # a dozen cipher contexts per packet and cost ~12% of an rpc's server time here.
        encryption_algs=SERVER_ENCRYPTION_ALGS,
        **algorithms.server_options(),
    )
    logger.info("NETCONF/SSH listening on %s:%d", host, server.port)
    return server


def _bootstrap(state_dir: Path, shared_host_keys: SharedHostKeys | None,
               shared_admin: SharedAdmin | None) -> list[Any]:
    """A first start's host keys and ``admin`` user, and the keys to serve; in a worker thread,
    as generating or checking an RSA key and hashing a password take 0.05-1 s each."""
    paths = ensure_host_keys(state_dir, shared_host_keys)
    ensure_admin(state_dir, shared_admin)
    return load_host_keys(paths, shared_host_keys)


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
