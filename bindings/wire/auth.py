"""How a client says who it is, as both sides read it.

gNMI carries the user in call metadata: ``username`` and ``password`` keys, as gnmic, pygnmi and
the agents' `Authenticator` use them; a client builds the metadata with `call_metadata`, a server
reads it back with `metadata_login`. RESTCONF carries it in HTTP Basic (RFC 7617):
`basic_authorization` writes the header, `basic_login` reads it. The check itself (users, password
hashes, the back-off) is the agent's own, in `qstrata.agents.access`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

__all__ = ["PASSWORD", "USERNAME", "basic_authorization", "basic_login", "call_metadata", "metadata_login"]

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


def basic_authorization(username: str, password: str) -> str:
    """An HTTP Basic Authorization header value (RFC 7617), user and password in UTF-8."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def basic_login(header: str) -> tuple[str, str] | None:
    """(username, password) of an Authorization header; None when it is not HTTP Basic. Raises
    ValueError when it is Basic but not the base64 of ``user:password`` in UTF-8."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic" or not credentials.strip():
        return None
    try:
        username, colon, password = binascii.a2b_base64(credentials.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not base64 of user:password") from None
    if not colon or not username:
        raise ValueError("not base64 of user:password")
    return username, password
