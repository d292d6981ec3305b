"""RESTCONF's view of failures: RFC 8040 section 7 error-tags, their HTTP statuses, and the
``ietf-restconf:errors`` body in JSON (RFC 7951) or XML.

The core raises `DatastoreError` in no protocol's vocabulary; `ERROR_TABLE` is the one table that
turns each `ErrorKind` into an RFC 8040 error-tag (and the RFC 7950 s15 error-app-tag), keyed by
the kind like the NETCONF and gNMI tables (the front ends' convention: ``ERROR_KINDS`` and
``ERROR_TABLE``, checked for a row per kind by the tests), and `STATUS` gives each tag its HTTP
status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from qstrata.agents.datastore.errors import DatastoreError, ErrorKind, from_invalid
from qstrata.bindings.validate import InvalidData

RESTCONF_NS = "urn:ietf:params:xml:ns:yang:ietf-restconf"

STATUS: dict[str, int] = {
    # RFC 8040 s7, table "error-tag to status code"
    "in-use": 409,
    "invalid-value": 400,
    "too-big": 413,
    "missing-attribute": 400,
    "bad-attribute": 400,
    "unknown-attribute": 400,
    "bad-element": 400,
    "unknown-element": 400,
    "unknown-namespace": 400,
    "access-denied": 403,
    "lock-denied": 409,
    "resource-denied": 409,
    "rollback-failed": 500,
    "data-exists": 409,
    "data-missing": 409,
    "operation-not-supported": 501,
    "operation-failed": 500,
    "partial-operation": 500,
    "malformed-message": 400,
    "missing-element": 400,
}

ERROR_KINDS = ErrorKind
"""The kinds this front end must answer: every one has a row in `ERROR_TABLE`."""
ERROR_TABLE: dict[ErrorKind, tuple[str, str | None]] = {
    # kind: (error-tag, default error-app-tag)
    ErrorKind.SYNTAX: ("malformed-message", None),
    ErrorKind.UNKNOWN_NODE: ("unknown-element", None),
    ErrorKind.UNKNOWN_NAMESPACE: ("unknown-namespace", None),
    ErrorKind.INVALID_VALUE: ("invalid-value", None),
    ErrorKind.MISSING_KEY: ("missing-element", None),
    ErrorKind.MANDATORY: ("missing-element", None),
    ErrorKind.MISSING_CHOICE: ("data-missing", "missing-choice"),
    ErrorKind.DUPLICATE: ("bad-element", None),
    ErrorKind.NOT_UNIQUE: ("operation-failed", "data-not-unique"),
    ErrorKind.TOO_MANY: ("operation-failed", "too-many-elements"),
    ErrorKind.TOO_FEW: ("operation-failed", "too-few-elements"),
    ErrorKind.WHEN: ("unknown-element", None),
    ErrorKind.MUST: ("operation-failed", "must-violation"),
    ErrorKind.INSTANCE_REQUIRED: ("data-missing", "instance-required"),
    ErrorKind.STATE_IN_CONFIG: ("unknown-element", None),
    ErrorKind.EXISTS: ("data-exists", None),
    ErrorKind.MISSING: ("data-missing", None),
    ErrorKind.LOCKED: ("in-use", None),
    ErrorKind.LOCK_DENIED: ("lock-denied", None),
    ErrorKind.NOT_LOCKED: ("operation-failed", None),
    ErrorKind.IN_PROGRESS: ("in-use", None),
    ErrorKind.ACCESS_DENIED: ("access-denied", None),
    ErrorKind.DEVICE_REFUSED: ("operation-failed", None),
    ErrorKind.BAD_REQUEST: ("invalid-value", None),
    ErrorKind.NOT_SUPPORTED: ("operation-not-supported", None),
    ErrorKind.FAILED: ("operation-failed", None),
    ErrorKind.OTHER: ("operation-failed", None),
}

_PROTOCOL_TAGS = frozenset({"in-use", "lock-denied", "malformed-message", "unknown-namespace"})


@dataclass
class RestconfError(Exception):
    """One error of an ``ietf-restconf:errors`` reply. `status` overrides the tag's own (404 for
    a missing resource is invalid-value, 401 an access-denied without credentials, ...)."""

    tag: str
    message: str
    path: str | None = None
    status: int | None = None
    error_type: str | None = None
    app_tag: str | None = None
    info: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    more: list[RestconfError] = field(default_factory=list)
    """Further errors reported with this one (a datastore error with several issues)."""

    def __post_init__(self) -> None:
        if self.tag not in STATUS:
            raise ValueError(f"{self.tag!r} is not an RFC 8040 error-tag")
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return self.status or STATUS[self.tag]

    @property
    def type(self) -> str:
        return self.error_type or ("protocol" if self.tag in _PROTOCOL_TAGS else "application")


def bad_request(message: str, tag: str = "invalid-value", **kw) -> RestconfError:
    return RestconfError(tag, message, error_type=kw.pop("error_type", "protocol"), **kw)


def not_found(message: str, path: str | None = None) -> RestconfError:
    return RestconfError("invalid-value", message, path, status=404, error_type="protocol")


def from_core(exc: DatastoreError | InvalidData) -> RestconfError:
    """A refused transaction or unreadable data: the first issue decides the status, every
    issue is reported."""
    if isinstance(exc, InvalidData):
        exc = from_invalid(exc)
    errors = []
    for i, issue in enumerate(exc.issues or (None,)):
        first = i == 0 or issue is None
        kind = exc.kind if first else ErrorKind(issue.kind.value)
        tag, default_app_tag = ERROR_TABLE[kind]
        app_tag = (exc.app_tag if first else issue.app_tag) or default_app_tag
        info = dict(exc.info) if first else {}
        node = exc.node if first else issue.node
        if node and tag in ("unknown-element", "missing-element", "bad-element") and "bad-element" not in info:
            info["bad-element"] = node
        errors.append(RestconfError(tag, exc.message if first else issue.message, exc.path if first else issue.path,
                                    app_tag=app_tag, info=info))
    head = errors[0]
    head.more = errors[1:]
    return head


def errors_json(error: RestconfError) -> bytes:
    """RFC 8040 s7.1 in RFC 7951 JSON."""
    out = []
    for e in (error, *error.more):
        entry: dict = {"error-type": e.type, "error-tag": e.tag}
        if e.app_tag:
            entry["error-app-tag"] = e.app_tag
        if e.path:
            entry["error-path"] = e.path
        entry["error-message"] = e.message
        if e.info:
            entry["error-info"] = dict(e.info)
        out.append(entry)
    return json.dumps({"ietf-restconf:errors": {"error": out}}).encode()


def errors_xml(error: RestconfError, namespace_of: Callable[[str], str | None]) -> bytes:
    """RFC 8040 s7.1 in XML; the module names an error-path uses are declared as its prefixes."""
    parts = [f'<errors xmlns="{RESTCONF_NS}">']
    for e in (error, *error.more):
        parts.append(f"<error><error-type>{e.type}</error-type><error-tag>{e.tag}</error-tag>")
        if e.app_tag:
            parts.append(f"<error-app-tag>{escape(e.app_tag)}</error-app-tag>")
        if e.path:
            decl = "".join(f' xmlns:{m}="{escape(ns)}"' for m, ns in _path_namespaces(e.path, namespace_of))
            parts.append(f"<error-path{decl}>{escape(e.path)}</error-path>")
        parts.append(f'<error-message xml:lang="en">{escape(e.message)}</error-message>')
        if e.info:
            parts.append("<error-info>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in e.info.items())
                         + "</error-info>")
        parts.append("</error>")
    parts.append("</errors>")
    return "".join(parts).encode()


def _path_namespaces(path: str, namespace_of: Callable[[str], str | None]) -> Iterable[tuple[str, str]]:
    seen = set()
    for token in path.replace("[", "/").split("/"):
        if ":" in token:
            module = token.split(":", 1)[0].strip("'\" ")
            ns = namespace_of(module) if module not in seen else None
            seen.add(module)
            if ns:
                yield module, ns
