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


_A, _P, _U, _N, _I = (grpc.StatusCode.ABORTED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED,
                      grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT)

ERROR_KINDS = ErrorKind
"""The kinds this front end must answer: every one has a row in `ERROR_TABLE`."""
ERROR_TABLE: dict[ErrorKind, tuple[grpc.StatusCode, grpc.StatusCode]] = {
    # the core's kind: (status in Set, where nothing was changed (3.4.7); status elsewhere (Get 3.3.4));
    # a value or path the schema does not allow is INVALID_ARGUMENT in Set too (3.4.7)
    ErrorKind.SYNTAX: (_I, _I),
    ErrorKind.UNKNOWN_NODE: (_I, _I),
    ErrorKind.UNKNOWN_NAMESPACE: (_I, _I),
    ErrorKind.INVALID_VALUE: (_I, _I),
    ErrorKind.MISSING_KEY: (_I, _I),
    ErrorKind.MANDATORY: (_A, _I),
    ErrorKind.MISSING_CHOICE: (_A, _I),
    ErrorKind.DUPLICATE: (_A, _I),
    ErrorKind.NOT_UNIQUE: (_A, _I),
    ErrorKind.TOO_MANY: (_A, _I),
    ErrorKind.TOO_FEW: (_A, _I),
    ErrorKind.WHEN: (_A, _I),
    ErrorKind.MUST: (_A, _I),
    ErrorKind.INSTANCE_REQUIRED: (_A, _I),
    ErrorKind.STATE_IN_CONFIG: (_I, _I),
    ErrorKind.EXISTS: (_A, _I),
    ErrorKind.MISSING: (_A, _I),
    ErrorKind.LOCKED: (_A, _N),
    ErrorKind.LOCK_DENIED: (_A, _I),
    ErrorKind.NOT_LOCKED: (_A, _I),
    ErrorKind.IN_PROGRESS: (_A, _N),
    ErrorKind.ACCESS_DENIED: (_P, _P),
    ErrorKind.DEVICE_REFUSED: (_A, _I),
    ErrorKind.BAD_REQUEST: (_A, _I),
    ErrorKind.NOT_SUPPORTED: (_U, _U),
    ErrorKind.FAILED: (_A, _I),
    ErrorKind.OTHER: (_A, _I),
}


def from_datastore(exc: DatastoreError, *, in_set: bool = True) -> GnmiError:
    """A refused transaction, by `ERROR_TABLE`. In Set a value or path the schema does not allow is
    INVALID_ARGUMENT, any other data or transaction failure ABORTED (nothing was changed, per the
    specification); access control is PERMISSION_DENIED."""
    where = f" at {exc.path}" if exc.path else ""
    in_set_code, other_code = ERROR_TABLE[exc.kind]
    return GnmiError(in_set_code if in_set else other_code, f"{exc.message}{where}")
