"""Start-up at scale without weaker password hashing: agents of one process share one generated
admin password, hashed once (`SharedAdmin`), and a password proven against a stored hash is not
proven again by scrypt; a wrong or changed password still is, and still fails."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from qstrata.agents.access import users


@pytest.fixture
def scrypt_runs(monkeypatch) -> list[int]:
    """How many scrypt runs happened (the real function still runs)."""
    runs: list[int] = []
    real = users._scrypt

    def counted(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(users, "_scrypt", counted)
    return runs


def test_shared_admin_is_one_password_hashed_once(tmp_path: Path, scrypt_runs: list[int]) -> None:
    shared = users.SharedAdmin()
    dirs = [tmp_path / f"agent{i}" for i in range(5)]
    passwords = {users.ensure_admin(d, shared) for d in dirs}
    assert len(passwords) == 1 and len(next(iter(passwords))) >= 16
    assert len(scrypt_runs) == 1
    for d in dirs:
        admin = users.load_users(d)["admin"]
        assert admin.groups == ("admin",) and admin.password_hash.startswith("scrypt$16384$8$1$")
        assert json.loads((d / users.CREDENTIALS_FILE).read_text())["password"] in passwords
        assert (d / users.USERS_FILE).stat().st_mode & 0o777 == 0o600
    assert users.ensure_admin(dirs[0], shared) is None  # an existing state dir is left alone
    assert users.ensure_admin(tmp_path / "own") not in passwords  # without `shared`: a password of its own


def test_a_proven_password_is_not_hashed_again_and_wrong_ones_still_are(tmp_path: Path,
                                                                       scrypt_runs: list[int]) -> None:
    store = users.UserStore(tmp_path)
    store.add("ops", "first secret", groups=("ops",))
    scrypt_runs.clear()

    async def login(password: str) -> bool:
        return await store.authenticate_password("ops", password) is not None

    assert asyncio.run(login("first secret"))
    assert asyncio.run(login("first secret"))
    assert len(scrypt_runs) == 1
    assert not asyncio.run(login("wrong"))
    assert not asyncio.run(login("wrong"))
    assert len(scrypt_runs) == 3  # failures are never remembered: each guess costs a full scrypt
    assert not asyncio.run(store.authenticate_password("nobody", "first secret"))
    assert len(scrypt_runs) == 4

    store.add("ops", "second secret", groups=("ops",))  # a new hash: the old proof no longer counts
    scrypt_runs.clear()
    assert not asyncio.run(login("first secret"))
    assert asyncio.run(login("second secret"))
    assert len(scrypt_runs) == 2
