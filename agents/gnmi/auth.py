"""Who is calling: ``username`` / ``password`` call metadata checked against the agent's users.

The same `UserStore` and `LoginGuard` as NETCONF over SSH: one set of users, one failed-password
back-off per source address, one session cap (a Subscribe stream counts as a session). A
password check costs one scrypt run (~50 ms, on purpose), so a success is remembered for a
minute, keyed by a hash of the password and invalidated when the user's entry changes: a Get
every 100 ms must not cost 50 ms of CPU each.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import grpc
from qstrata.agents.access.guard import LoginGuard
from qstrata.agents.access.users import User, UserStore
from qstrata.bindings.wire.auth import metadata_login

from .errors import GnmiError

log = logging.getLogger("qstrata.gnmi")

CACHE_SECONDS = 60.0
MAX_CACHED = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    groups: tuple[str, ...]


def peer_source(peer: str) -> str:
    """The address of a gRPC peer string (``ipv4:127.0.0.1:5555``, ``ipv6:[::1]:5555``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:rest.find("]")]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return peer


class Authenticator:
    def __init__(self, users: UserStore, guard: LoginGuard) -> None:
        self.users = users
        self.guard = guard
        self._cache: dict[tuple[str, bytes], tuple[float, str | None]] = {}

    async def authenticate(self, metadata: tuple | None, peer: str) -> Principal:
        """The caller, or UNAUTHENTICATED (missing or wrong credentials)."""
        username, password = metadata_login(metadata)
        if not username or password is None:
            raise GnmiError(grpc.StatusCode.UNAUTHENTICATED,
                            "username and password call metadata are required")
        digest = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        now = time.monotonic()
        cached = self._cache.get((username, digest))
        user = self.users.get(username)
        if cached is not None and cached[0] > now and user is not None and user.password_hash == cached[1]:
            return _principal(user)
        source = peer_source(peer)
        await self.guard.backoff.wait(source)
        user = await self.users.authenticate_password(username, password)
        if user is None:
            self.guard.backoff.failed(source, username)
            log.warning("gNMI: failed password for %r from %s", username, source)
            raise GnmiError(grpc.StatusCode.UNAUTHENTICATED, "wrong username or password")
        self.guard.backoff.succeeded(source, username)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[(username, digest)] = (now + CACHE_SECONDS, user.password_hash)
        return _principal(user)


def _principal(user: User) -> Principal:
    return Principal(user.username, tuple(user.groups))
