"""Who is calling: ``username`` / ``password`` call metadata checked against the agent's users.

The same `UserStore` and `LoginGuard` as NETCONF over SSH: one set of users, one failed-password
back-off per source address, one session cap (a Subscribe stream counts as a session). The
check itself, with its cache of recent successes, is `access.passwords.PasswordLogins`, shared
with RESTCONF.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from qstrata.agents.access.guard import LoginGuard
from qstrata.agents.access.passwords import PasswordLogins
from qstrata.agents.access.users import User, UserStore
from qstrata.bindings.wire.auth import metadata_login

from .errors import GnmiError

log = logging.getLogger("qstrata.gnmi")

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
        self.logins = PasswordLogins(users, guard)

    async def authenticate(self, metadata: tuple | None, peer: str) -> Principal:
        """The caller, or UNAUTHENTICATED (missing or wrong credentials)."""
        username, password = metadata_login(metadata)
        if not username or password is None:
            raise GnmiError(grpc.StatusCode.UNAUTHENTICATED,
                            "username and password call metadata are required")
        source = peer_source(peer)
        user = await self.logins.check(username, password, source)
        if user is None:
            log.warning("gNMI: failed password for %r from %s", username, source)
            raise GnmiError(grpc.StatusCode.UNAUTHENTICATED, "wrong username or password")
        return _principal(user)


def _principal(user: User) -> Principal:
    return Principal(user.username, tuple(user.groups))
