"""gNMI's view of failures: a gRPC status code and a message.

The core raises `DatastoreError` in no protocol's vocabulary; this is the one place that
turns its kinds into gRPC codes (gNMI specification 3.4.7 for Set, 3.3.4 for Get), as the
NETCONF front end maps them to error-tags in its own package.
"""

from __future__ import annotations

import grpc
from qstrata.agents.datastore.errors import DatastoreError, ErrorKind


class GnmiError(Exception):
    """A request that fails with `code`; `message` is what the client reads."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> GnmiError:
    return GnmiError(grpc.StatusCode.INVALID_ARGUMENT, message)


INVALID_DATA = frozenset({ErrorKind.SYNTAX, ErrorKind.INVALID_VALUE, ErrorKind.UNKNOWN_NODE,
                          ErrorKind.UNKNOWN_NAMESPACE, ErrorKind.MISSING_KEY, ErrorKind.STATE_IN_CONFIG})
"""A value or path the schema does not allow: INVALID_ARGUMENT, in Set too (specification 3.4.7)."""


def from_datastore(exc: DatastoreError, *, in_set: bool = True) -> GnmiError:
    """A refused transaction. In Set a value the schema does not allow is INVALID_ARGUMENT and
    every other data or transaction failure is ABORTED (nothing was changed, per the
    specification); access control is PERMISSION_DENIED."""
    where = f" at {exc.path}" if exc.path else ""
    message = f"{exc.message}{where}"
    if exc.kind is ErrorKind.ACCESS_DENIED:
        return GnmiError(grpc.StatusCode.PERMISSION_DENIED, message)
    if exc.kind is ErrorKind.NOT_SUPPORTED:
        return GnmiError(grpc.StatusCode.UNIMPLEMENTED, message)
    if exc.kind in INVALID_DATA:
        return GnmiError(grpc.StatusCode.INVALID_ARGUMENT, message)
    if in_set:
        return GnmiError(grpc.StatusCode.ABORTED, message)
    if exc.kind in (ErrorKind.LOCKED, ErrorKind.IN_PROGRESS):
        return GnmiError(grpc.StatusCode.UNAVAILABLE, message)
    return GnmiError(grpc.StatusCode.INVALID_ARGUMENT, message)
