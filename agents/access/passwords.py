"""Password logins for front ends that get a username and password with every request (gNMI call
metadata, RESTCONF's HTTP Basic): checked against the agent's users behind its failed-password
back-off, the same `UserStore` and `LoginGuard` as NETCONF over SSH.

A password check costs one scrypt run (~50 ms, on purpose), so a success is remembered for a
minute, keyed by a hash of the password and invalidated when the user's entry changes: a poll
every 100 ms must not cost 50 ms of CPU each. Failures are never cached: each one waits out the
source's back-off first.
"""

from __future__ import annotations

import hashlib
import time

from .guard import LoginGuard
from .users import User, UserStore

CACHE_SECONDS = 60.0
MAX_CACHED = 1024


class PasswordLogins:
    def __init__(self, users: UserStore, guard: LoginGuard) -> None:
        self.users = users
        self.guard = guard
        self._cache: dict[tuple[str, bytes], tuple[float, str | None]] = {}

    async def check(self, username: str, password: str, source: str) -> User | None:
        """The user, or None for a wrong username or password (recorded against `source`)."""
        digest = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        now = time.monotonic()
        cached = self._cache.get((username, digest))
        user = self.users.get(username)
        if cached is not None and cached[0] > now and user is not None and user.password_hash == cached[1]:
            return user
        await self.guard.backoff.wait(source)
        user = await self.users.authenticate_password(username, password)
        if user is None:
            self.guard.backoff.failed(source, username)
            return None
        self.guard.backoff.succeeded(source, username)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[(username, digest)] = (now + CACHE_SECONDS, user.password_hash)
        return user
