"""Access control (a subset of RFC 8341 NACM) enforced on every operation and on every diff.

Groups come from the users file. Built-in rule sets: `admin` and `read-write` may do anything;
`read-only` may read (get, get-config, get-schema), subscribe, and manage its own session.
Writes are checked on the computed change list, so NETCONF and gNMI are treated alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from qstrata.bindings.diff import Change

from .errors import DatastoreError, ErrorKind

WRITE_GROUPS = frozenset({"admin", "read-write"})
READ_ONLY_RPCS = frozenset({
    "get", "get-config", "get-schema", "create-subscription", "close-session", "lock", "unlock",
    "discard-changes", "validate",
})


def may_write(groups: Sequence[str]) -> bool:
    return bool(WRITE_GROUPS.intersection(groups))


def check_rpc(groups: Sequence[str], rpc_name: str) -> None:
    """Raise access-denied when `groups` may not invoke `rpc_name`."""
    if may_write(groups) or rpc_name in READ_ONLY_RPCS:
        return
    raise DatastoreError(ErrorKind.ACCESS_DENIED, f"access to {rpc_name!r} is denied for this user")


def check_changes(groups: Sequence[str], changes: Sequence[Change]) -> None:
    if changes and not may_write(groups):
        raise DatastoreError(ErrorKind.ACCESS_DENIED, "write access is denied for this user", changes[0].path)
