"""How a client says who it is, as both sides read it.

gNMI carries the user in call metadata: ``username`` and ``password`` keys, as gnmic, pygnmi and
the agents' `Authenticator` use them. A client builds the metadata with `call_metadata`; a server
reads it back with `metadata_login`. The check itself (users, password hashes, the back-off) is
the agent's own, in `qstrata.agents.access` and `qstrata.agents.gnmi.auth`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PASSWORD", "USERNAME", "call_metadata", "metadata_login"]

USERNAME = "username"
PASSWORD = "password"


def call_metadata(username: str | None, password: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata of a call made as `username` (none without a user: an insecure, open agent)."""
    return ((USERNAME, username), (PASSWORD, password or "")) if username else ()


def metadata_login(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str | None, str | None]:
    """(username, password) a call carries; either is None when missing. A binary password is
    read as UTF-8."""
    values = {k: v for k, v in (metadata or ()) if k in (USERNAME, PASSWORD)}
    username, password = values.get(USERNAME), values.get(PASSWORD)
    if isinstance(username, bytes):
        username = username.decode("utf-8", "replace")
    if isinstance(password, bytes):
        password = password.decode("utf-8", "replace")
    return username or None, password
