"""The datastore's refusals, in no protocol's vocabulary.

A `DatastoreError` has a kind, the data path it is about, a message, and the YANG app tag when
there is one. Each front end maps kinds to its own codes at its edge, in one table keyed by
`ErrorKind` (``ERROR_TABLE`` in `agents/netconf/errors.py`, `agents/gnmi/errors.py`...; a test
fails a kind without a row in any of them), as netopeer2 maps sysrepo's SR_ERR_* codes. Data problems keep the kind libyang's error told us
(`qstrata.bindings.validate.IssueKind`); the rest are transaction and session failures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from qstrata.bindings.validate import DataIssue, InvalidData, IssueKind


class ErrorKind(StrEnum):
    # what is wrong with the data (same values as IssueKind)
    SYNTAX = IssueKind.SYNTAX.value
    UNKNOWN_NODE = IssueKind.UNKNOWN_NODE.value
    UNKNOWN_NAMESPACE = IssueKind.UNKNOWN_NAMESPACE.value
    INVALID_VALUE = IssueKind.INVALID_VALUE.value
    MISSING_KEY = IssueKind.MISSING_KEY.value
    MANDATORY = IssueKind.MANDATORY.value
    MISSING_CHOICE = IssueKind.MISSING_CHOICE.value
    DUPLICATE = IssueKind.DUPLICATE.value
    NOT_UNIQUE = IssueKind.NOT_UNIQUE.value
    TOO_MANY = IssueKind.TOO_MANY.value
    TOO_FEW = IssueKind.TOO_FEW.value
    WHEN = IssueKind.WHEN.value
    MUST = IssueKind.MUST.value
    INSTANCE_REQUIRED = IssueKind.INSTANCE_REQUIRED.value
    STATE_IN_CONFIG = IssueKind.STATE_IN_CONFIG.value
    EXISTS = IssueKind.EXISTS.value
    MISSING = IssueKind.MISSING.value
    # transactions and sessions
    LOCKED = "locked"                  # another session holds a lock on the target
    LOCK_DENIED = "lock-denied"        # a lock cannot be granted
    NOT_LOCKED = "not-locked"          # unlock of something not locked
    IN_PROGRESS = "in-progress"        # a transaction or confirmed commit of another session is under way
    ACCESS_DENIED = "access-denied"    # NACM said no
    DEVICE_REFUSED = "device-refused"  # a device driver vetoed the change
    BAD_REQUEST = "bad-request"        # a parameter the operation cannot use (unknown datastore, bad persist-id...)
    NOT_SUPPORTED = "not-supported"
    FAILED = "failed"                  # anything else
    OTHER = IssueKind.OTHER.value


class DatastoreError(Exception):
    """A refused operation; nothing was changed."""

    def __init__(self, kind: ErrorKind, message: str, path: str | None = None, *, app_tag: str | None = None,
                 info: Mapping[str, str] | None = None, issues: Sequence[DataIssue] = (),
                 node: str | None = None) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.path = path
        self.app_tag = app_tag
        self.info = dict(info or {})
        self.issues = tuple(issues)
        self.node = node
        """The offending node's name when the kind has one (unknown element, missing key)."""

    def __repr__(self) -> str:
        return f"DatastoreError({self.kind.value!r}, {self.message!r}, {self.path!r})"


def from_invalid(exc: InvalidData) -> DatastoreError:
    """The first issue decides the kind; every issue travels along (continue-on-error, CLI)."""
    first = exc.issues[0]
    return DatastoreError(ErrorKind(first.kind.value), first.message, first.path, app_tag=first.app_tag,
                          issues=exc.issues, node=first.node)
