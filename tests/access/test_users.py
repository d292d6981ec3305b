"""Users and credentials (agents/access/users.py): file formats, caching, constant-cost checks."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import threading
from pathlib import Path

import asyncssh
import pytest
from qstrata.agents.access import users
from qstrata.agents.access.users import UserStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_add_user_validates_and_hashes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not base64"):
        users.add_user(tmp_path, "bob", authorized_keys=["ssh-ed25519 not-base64!"])
    with pytest.raises(ValueError, match="invalid username"):
        users.add_user(tmp_path, "bad name", password="x")
    with pytest.raises(ValueError, match="invalid username"):
        users.add_user(tmp_path, "", password="x")
    assert not (tmp_path / users.USERS_FILE).exists()  # nothing written for bad input
    user = users.add_user(tmp_path, "bob", password="s3cret", groups=["ops"])
    assert users.load_users(tmp_path)["bob"] == user
    assert users.verify_password("s3cret", user.password_hash)
    assert not users.verify_password("s3cret!", user.password_hash)
    assert not users.verify_password("", None)
    assert user.password_hash != users.hash_password("s3cret")  # salted
    assert mode(tmp_path / users.USERS_FILE) == 0o600
    with pytest.raises(ValueError, match="already exists"):
        users.add_user(tmp_path, "bob", password="other", replace=False)
    assert users.verify_password("s3cret", users.load_users(tmp_path)["bob"].password_hash)


def test_users_json_format_is_unchanged(tmp_path: Path) -> None:
    """State dirs written before the move keep working, and the file keeps its shape."""
    legacy = {"admin": {"password": users.hash_password("pw"), "groups": ["admin"], "authorized_keys": []},
              "old": {"password": None}}
    (tmp_path / users.USERS_FILE).write_text(json.dumps(legacy))
    store = UserStore(tmp_path)
    assert store.get("old") == users.User("old")
    users.add_user(tmp_path, "new", password="x", groups=["read-only"])
    written = json.loads((tmp_path / users.USERS_FILE).read_text())
    assert written["admin"] == legacy["admin"]
    assert set(written["new"]) == {"password", "groups", "authorized_keys"}


@pytest.mark.parametrize("algorithm", ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"])
def test_authorized_keys_are_compared_as_ssh_blobs(tmp_path: Path, algorithm: str) -> None:
    key = asyncssh.generate_private_key(algorithm, **({"key_size": 2048} if algorithm == "ssh-rsa" else {}))
    line = key.export_public_key().decode().strip() + " someone@host"
    assert users.check_authorized_key(line) == key.public_data
    users.add_user(tmp_path, "k", authorized_keys=[line, ""])
    store = UserStore(tmp_path)
    assert store.authorized_key("k", key.public_data).username == "k"
    other = asyncssh.generate_private_key("ssh-ed25519")
    assert store.authorized_key("k", other.public_data) is None
    assert store.authorized_key("nobody", key.public_data) is None


@pytest.mark.parametrize("line,message", [
    ("ssh-ed25519", "expected"),
    ("ssh-ed25519 AAAA", "truncated"),
    ("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "does not hold a ssh-rsa key"),
])
def test_bad_authorized_keys(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        users.check_authorized_key(line)


def test_store_rereads_on_change_and_keeps_the_last_good_copy(tmp_path: Path, caplog) -> None:
    store = UserStore(tmp_path)
    assert store.get("admin") is None  # no file: no users
    users.add_user(tmp_path, "admin", password="a", groups=["admin"])
    assert store.get("admin").groups == ("admin",)
    users.add_user(tmp_path, "viewer", password="v", groups=["read-only"])  # written behind the store's back
    assert store.get("viewer").groups == ("read-only",)
    (tmp_path / users.USERS_FILE).write_text("{ not json")
    with caplog.at_level(logging.ERROR, logger="qstrata.access"):
        assert store.get("viewer") is not None  # a botched edit does not lock everyone out
    assert "keeping the users read before" in caplog.text
    (tmp_path / users.USERS_FILE).unlink()
    assert store.get("viewer") is None


def test_password_checks_cost_one_scrypt_in_a_thread_whoever_asks(tmp_path: Path, monkeypatch) -> None:
    users.add_user(tmp_path, "bob", password="right", groups=["ops"])
    users.add_user(tmp_path, "keyonly", authorized_keys=[
        asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()])
    store = UserStore(tmp_path)
    calls: list[str] = []
    real = users._scrypt

    def counting(*args):
        calls.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(users, "_scrypt", counting)

    async def check(name: str, password: str):
        return await store.authenticate_password(name, password)

    assert asyncio.run(check("bob", "right")).username == "bob"
    assert asyncio.run(check("bob", "wrong")) is None
    assert asyncio.run(check("nobody", "right")) is None
    assert asyncio.run(check("keyonly", "")) is None
    assert len(calls) == 4  # unknown and key-only users cost the same as real ones
    assert threading.main_thread().name not in calls  # never on the event loop's thread


def test_bootstrap_admin_once_with_private_credentials(tmp_path: Path) -> None:
    password = users.ensure_admin(tmp_path)
    assert password and len(password) >= 16
    credentials = users.read_credentials(tmp_path)
    assert credentials == {"username": "admin", "password": password}
    assert mode(tmp_path / users.CREDENTIALS_FILE) == 0o600
    assert mode(tmp_path / users.USERS_FILE) == 0o600
    assert mode(tmp_path) == 0o700
    admin = users.load_users(tmp_path)["admin"]
    assert admin.groups == ("admin",) and users.verify_password(password, admin.password_hash)
    assert password not in (tmp_path / users.USERS_FILE).read_text()
    assert users.ensure_admin(tmp_path) is None  # an existing state dir is left alone
    assert users.read_credentials(tmp_path) == credentials


def test_credentials_are_extended_not_overwritten(tmp_path: Path) -> None:
    users.ensure_admin(tmp_path)
    before = users.read_credentials(tmp_path)
    users.update_credentials(tmp_path, ca="-----BEGIN CERTIFICATE-----...")
    after = users.read_credentials(tmp_path)
    assert after == {**before, "ca": "-----BEGIN CERTIFICATE-----..."}
    assert mode(tmp_path / users.CREDENTIALS_FILE) == 0o600


def test_concurrent_writers_lose_nobody(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            users.add_user(tmp_path, f"user{i}", password=None, groups=["read-only"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(users.load_users(tmp_path)) == sorted(f"user{i}" for i in range(12))


def test_delete_user(tmp_path: Path) -> None:
    users.add_user(tmp_path, "a", password="x")
    users.add_user(tmp_path, "b", password="y")
    store = UserStore(tmp_path)
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert sorted(store.users()) == ["b"]
