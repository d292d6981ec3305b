"""Users, credentials and groups, shared by every front end (NETCONF, gNMI, RESTCONF).

State lives in ``STATE_DIR``:

* ``users.json`` -- ``{username: {"password": "scrypt$N$r$p$salt$hash" | null,
  "groups": [...], "authorized_keys": ["ssh-ed25519 AAAA... comment"]}}`` (mode 0600). A
  `UserStore` caches it and re-reads it when the file changes, so a user added while an agent
  runs (by `add_user` or ``qstrata user add``) can log in without a restart.
* ``credentials.json`` -- a JSON object written on first start with the generated ``admin``
  password (mode 0600), because a fresh install must be reachable without a default password.
  Other front ends add their own keys to it (gNMI adds ``"ca"``); `update_credentials` merges,
  so nobody loses another's keys.

Nothing here speaks a protocol: authorized keys are kept as OpenSSH public key lines and
compared as SSH wire blobs (`User.public_key_blobs`), so this module needs no SSH library.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "ADMIN_GROUP",
    "ADMIN_USER",
    "CREDENTIALS_FILE",
    "USERS_FILE",
    "SharedAdmin",
    "User",
    "UserStore",
    "add_user",
    "check_authorized_key",
    "check_username",
    "delete_user",
    "ensure_admin",
    "hash_password",
    "load_users",
    "process_admin",
    "read_credentials",
    "update_credentials",
    "verify_password",
    "verify_password_async",
    "write_private",
]

logger = logging.getLogger("qstrata.access")

USERS_FILE = "users.json"
CREDENTIALS_FILE = "credentials.json"
ADMIN_USER = "admin"
ADMIN_GROUP = "admin"

_LOCK_FILE = ".users.lock"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1  # ~16 MiB, ~50 ms: slow for guessing
_SCRYPT_MAXMEM = 64 * 1024 * 1024


# -- users ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """One entry of ``users.json``. ``groups`` feed access control (NACM external groups)."""

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

    def public_key_blobs(self) -> frozenset[bytes]:
        """The authorized keys as SSH wire blobs (what a client's public key is compared with).
        Unparsable lines are skipped with a warning: they can never match."""
        blobs = set()
        for line in self.authorized_keys:
            try:
                blobs.add(check_authorized_key(line))
            except ValueError as exc:
                logger.warning("unusable authorized key for %r in %s: %s", self.username, USERS_FILE, exc)
        return frozenset(blobs)


def check_username(username: str) -> None:
    """Usernames travel in SSH, gRPC metadata, NACM and log lines: no spaces or control chars."""
    if not username or len(username) > 128 or any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in username):
        raise ValueError(f"invalid username {username!r}: 1-128 characters, no spaces or control characters")


def check_authorized_key(line: str) -> bytes:
    """Check an OpenSSH public key line (``TYPE BASE64 [comment]``); return its wire blob.

    The blob must decode and name the same algorithm as the line, so a typo fails when the
    user is added rather than silently at login."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected 'TYPE BASE64-KEY [comment]'")
    kind, data = parts[0], parts[1]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key data of {kind} is not base64") from None
    if len(blob) < 4:
        raise ValueError("key data is truncated")
    (size,) = struct.unpack(">I", blob[:4])
    if len(blob) < 4 + size or blob[4 : 4 + size] != kind.encode("ascii", "replace"):
        raise ValueError(f"key data does not hold a {kind} key")
    if len(blob) <= 4 + size:
        raise ValueError(f"{kind} key has no key material")
    return blob


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


_VERIFIED_MAX = 1024
_VERIFIED_KEY = secrets.token_bytes(32)
_verified: set[tuple[str, bytes]] = set()
"""(stored hash, keyed digest of a password that matched it): logins that already paid scrypt."""


async def verify_password_async(password: str, stored: str | None) -> bool:
    """`verify_password` in a worker thread: scrypt costs ~50 ms and must not stall the loop.

    A password that matched a stored hash is remembered for the process's life (as a keyed
    digest, never in clear), so the next login with that password against that same hash skips
    scrypt: the agents of one process share their ``admin`` hash (`SharedAdmin`), and a
    controller or collector logging into 500 of them would otherwise spend 25 s of CPU proving
    one password. Only successes are remembered: a wrong password still costs a full scrypt, so
    guessing is no faster, and a changed password (new salt, new hash) is never matched."""
    token = (stored, hmac.digest(_VERIFIED_KEY, password.encode("utf-8"), "sha256")) if stored else None
    if token is not None and token in _verified:
        return True
    ok = await asyncio.to_thread(verify_password, password, stored)
    if ok and token is not None:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified.add(token)
    return ok


def _parse_users(raw: object, path: Path) -> dict[str, User]:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of users")
    users = {}
    for name, entry in raw.items():
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: user {name!r} is not a JSON object")
        users[name] = User(
            username=name,
            password_hash=entry.get("password"),
            groups=tuple(entry.get("groups") or ()),
            authorized_keys=tuple(entry.get("authorized_keys") or ()),
        )
    return users


def load_users(state_dir: Path) -> dict[str, User]:
    """Read ``STATE_DIR/users.json``; an absent file means no users."""
    path = Path(state_dir) / USERS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return _parse_users(raw, path)


class UserStore:
    """``STATE_DIR/users.json``, cached: `get` stats the file and re-reads it only when it
    changed (inode, size or mtime), so every login sees users added at run time at the cost of
    one ``stat``. A file that became unreadable or invalid keeps the last good copy (logged):
    a botched manual edit must not lock everyone out of a running agent."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._stamp: tuple[int, int, int] | None = None
        self._users: Mapping[str, User] = MappingProxyType({})

    @property
    def path(self) -> Path:
        return self.state_dir / USERS_FILE

    def users(self) -> Mapping[str, User]:
        """Every user, by name (read-only view of the current file)."""
        self._refresh()
        return self._users

    def get(self, username: str) -> User | None:
        return self.users().get(username)

    def __iter__(self) -> Iterator[User]:
        return iter(self.users().values())

    def add(self, username: str, password: str | None = None, **options: Any) -> User:
        """`add_user` (groups, authorized_keys, replace as there) in this store's directory, seen
        by the next `get` even when the file's inode, size and mtime happen to match."""
        user = add_user(self.state_dir, username, password, **options)
        self._stamp = None
        return user

    def delete(self, username: str) -> bool:
        """See `delete_user`."""
        deleted = delete_user(self.state_dir, username)
        self._stamp = None
        return deleted

    async def authenticate_password(self, username: str, password: str) -> User | None:
        """The user when the password is right, else None. Always costs one scrypt run in a
        worker thread (unknown users and key-only users too), so timing reveals nothing."""
        user = self.get(username)
        ok = await verify_password_async(password, user.password_hash if user else None)
        return user if ok and user is not None else None

    def authorized_key(self, username: str, blob: bytes) -> User | None:
        """The user when ``blob`` (an SSH public key in wire format) is one of its keys."""
        user = self.get(username)
        if user is not None and blob in user.public_key_blobs():
            return user
        return None

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._users = None, MappingProxyType({})
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            users = load_users(self.state_dir)
        except (OSError, ValueError) as exc:
            logger.error("cannot read %s (%s); keeping the users read before", self.path, exc)
            return
        self._stamp, self._users = stamp, MappingProxyType(users)


def add_user(
    state_dir: Path,
    username: str,
    password: str | None = None,
    groups: Iterable[str] = (),
    authorized_keys: Iterable[str] = (),
    *,
    replace: bool = True,
) -> User:
    """Create (or, with ``replace``, overwrite) a user in ``STATE_DIR/users.json``, atomically
    and mode 0600, under a lock so concurrent writers do not lose each other's users.

    ``password=None`` makes a key-only user. Each authorized key is an OpenSSH public key line
    and is checked here. Raises ValueError for a bad name or key, or an existing user when
    ``replace`` is false."""
    check_username(username)
    keys = tuple(line.strip() for line in authorized_keys if line.strip())
    for line in keys:
        try:
            check_authorized_key(line)
        except ValueError as exc:
            raise ValueError(f"invalid authorized key for {username}: {exc}") from None
    group_names = tuple(dict.fromkeys(g.strip() for g in groups if g.strip()))
    for group in group_names:
        if any(ch.isspace() or ord(ch) < 32 for ch in group):
            raise ValueError(f"invalid group name {group!r}")
    user = User(
        username=username,
        password_hash=hash_password(password) if password is not None else None,
        groups=group_names,
        authorized_keys=keys,
    )
    _put_user(Path(state_dir), user, replace=replace)
    return user


def _put_user(state_dir: Path, user: User, *, replace: bool) -> None:
    _ensure_dir(state_dir)
    with _users_lock(state_dir):
        users = load_users(state_dir)
        if not replace and user.username in users:
            raise ValueError(f"user {user.username!r} already exists")
        users[user.username] = user
        _write_users(state_dir, users)


def delete_user(state_dir: Path, username: str) -> bool:
    """Remove a user from ``users.json``; False when there was no such user. Sessions the user
    has open stay open; new logins are refused."""
    state_dir = Path(state_dir)
    with _users_lock(state_dir):
        users = load_users(state_dir)
        if users.pop(username, None) is None:
            return False
        _write_users(state_dir, users)
    return True


def _write_users(state_dir: Path, users: Mapping[str, User]) -> None:
    write_private(
        state_dir / USERS_FILE,
        json.dumps({name: u.to_json() for name, u in users.items()}, indent=2) + "\n",
    )


# -- credentials ----------------------------------------------------------------------------


def read_credentials(state_dir: Path) -> dict[str, Any]:
    """``STATE_DIR/credentials.json`` as a dict (empty when absent)."""
    try:
        raw = json.loads((Path(state_dir) / CREDENTIALS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{Path(state_dir) / CREDENTIALS_FILE}: expected a JSON object")
    return raw


def update_credentials(state_dir: Path, **entries: Any) -> Path:
    """Add or replace keys of ``credentials.json`` (mode 0600, atomic), keeping the others:
    each front end owns its own keys (``username``/``password`` here, ``ca`` for gNMI)."""
    state_dir = Path(state_dir)
    _ensure_dir(state_dir)
    path = state_dir / CREDENTIALS_FILE
    with _users_lock(state_dir):
        current = read_credentials(state_dir)
        current.update(entries)
        write_private(path, json.dumps(current, indent=2) + "\n")
    return path


class SharedAdmin:
    """One generated ``admin`` password, hashed once, for every agent of a process that uses it
    (``qstrata up`` hosts hundreds of agents in one process: a scrypt hash each cost 25 s of
    CPU at 500 agents). The agents share an owner and a state root already, so one password
    protects them as well as many would; each state dir still gets its own ``users.json`` and
    ``credentials.json``, so a restart or a later password change stays per agent.
    Thread-safe: agents bootstrap their state dirs in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secret: tuple[str, str] | None = None

    def password_and_hash(self) -> tuple[str, str]:
        with self._lock:
            if self._secret is None:
                password = secrets.token_urlsafe(18)
                self._secret = (password, hash_password(password))
            return self._secret


@functools.cache
def process_admin() -> SharedAdmin:
    """This process's shared ``admin`` password."""
    return SharedAdmin()


def ensure_admin(state_dir: Path, shared: SharedAdmin | None = None) -> str | None:
    """First-start bootstrap: when there is no ``users.json``, create ``admin`` (group
    ``admin``) with a random password (`shared`'s when given) and record it in
    ``credentials.json``. Returns the password when one was created, else None (an existing
    state dir is left alone)."""
    state_dir = Path(state_dir)
    _ensure_dir(state_dir)
    if (state_dir / USERS_FILE).exists():
        return None
    if shared is None:
        password = secrets.token_urlsafe(18)
        add_user(state_dir, ADMIN_USER, password, groups=(ADMIN_GROUP,))
    else:
        password, password_hash = shared.password_and_hash()
        _put_user(state_dir, User(ADMIN_USER, password_hash, (ADMIN_GROUP,)), replace=True)
    path = update_credentials(state_dir, username=ADMIN_USER, password=password)
    logger.warning("created user %r; its password is in %s", ADMIN_USER, path)
    return password


# -- files ----------------------------------------------------------------------------------


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ensure_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextlib.contextmanager
def _users_lock(state_dir: Path) -> Iterator[None]:
    """An exclusive advisory lock for read-modify-write of the state dir's JSON files (an agent
    and ``qstrata user add`` may write at the same time)."""
    _ensure_dir(state_dir)
    fd = os.open(state_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically: readers never see half a file,
    and a secret never exists with looser permissions."""
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
