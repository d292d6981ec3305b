"""Structured validation errors from libyang.

libyang keeps its errors in the context; the Python bindings flatten them into one string. We
read them ourselves so every consumer (CLI, NETCONF rpc-error, gNMI status) gets the data path
with list keys, the message, the app tag and a protocol-neutral `IssueKind`, and maps the kind to
its own error vocabulary.

The kind comes from libyang's structured fields: the error-app-tag that libyang sets for
`unique`, `min/max-elements`, leafref `require-instance`, mandatory choices and `must`
(RFC 7950 s15); the validation error code (`LY_VECODE`: syntax, reference, data); and, within
the data code, which of libyang's fixed message templates (its `LY_VCODE_*` macros, one per
kind of violation) produced the message. That table is the one place that knows libyang's
wording; nothing downstream looks at message text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from _libyang import ffi, lib

# libyang validation error codes (LY_VECODE) by name, for callers that map them.
VECODE_NAMES = {
    0: "success",
    1: "syntax",
    2: "syntax-yang",
    3: "syntax-yin",
    4: "reference",
    5: "xpath",
    6: "semantics",
    7: "syntax-xml",
    8: "syntax-json",
    9: "data",
    10: "other",
}


class IssueKind(StrEnum):
    """What is wrong with data, independent of any protocol (RFC 7950 s15 in spirit)."""

    SYNTAX = "syntax"                        # not well-formed XML/JSON
    UNKNOWN_NODE = "unknown-node"            # no such schema node (or not allowed here)
    UNKNOWN_NAMESPACE = "unknown-namespace"  # no module with that namespace / name
    INVALID_VALUE = "invalid-value"          # type, pattern, range, length, identity, enum...
    MISSING_KEY = "missing-key"              # a list entry without one of its keys
    MANDATORY = "mandatory"                  # a mandatory node is missing
    MISSING_CHOICE = "missing-choice"        # no case of a mandatory choice
    DUPLICATE = "duplicate"                  # two instances of a single-instance node or entry
    NOT_UNIQUE = "not-unique"                # a `unique` statement is violated
    TOO_MANY = "too-many-elements"
    TOO_FEW = "too-few-elements"
    WHEN = "when"                            # a node whose `when` is false
    MUST = "must"                            # a `must` is violated (app tag: the module's or must-violation)
    INSTANCE_REQUIRED = "instance-required"  # a leafref / instance-identifier points at nothing
    STATE_IN_CONFIG = "state-in-config"      # config false data where configuration is expected
    EXISTS = "exists"                        # an edit creates data that already exists
    MISSING = "missing"                      # an edit deletes data that does not exist
    OTHER = "other"


# error-app-tags libyang sets itself (RFC 7950 s15); any other app tag comes from a module's must
_APP_TAG_KINDS = {
    "data-not-unique": IssueKind.NOT_UNIQUE,
    "too-many-elements": IssueKind.TOO_MANY,
    "too-few-elements": IssueKind.TOO_FEW,
    "instance-required": IssueKind.INSTANCE_REQUIRED,
    "missing-choice": IssueKind.MISSING_CHOICE,
    "must-violation": IssueKind.MUST,
}

# libyang's LY_VCODE_* data-validation templates (libyang 2.1 common.h), anchored, with the node
# name captured where the template has one
_DATA_TEMPLATES: tuple[tuple[re.Pattern[str], IssueKind], ...] = tuple(
    (re.compile(pattern), kind) for pattern, kind in (
        (r'^When condition "(?P<expr>.*)" not satisfied\.$', IssueKind.WHEN),
        (r'^Mandatory node "(?P<node>[^"]+)" instance does not exist\.$', IssueKind.MANDATORY),
        (r'^Mandatory choice "(?P<node>[^"]+)" data do not exist\.$', IssueKind.MISSING_CHOICE),
        (r'^Duplicate instance of "(?P<node>[^"]+)"\.$', IssueKind.DUPLICATE),
        (r'^List instance is missing its key "(?P<node>[^"]+)"\.$', IssueKind.MISSING_KEY),
        (r'^Unexpected data state node "(?P<node>[^"]+)" found\.$', IssueKind.STATE_IN_CONFIG),
        (r'^Unexpected data (?:\w+ )?node "(?P<node>[^"]+)" found\.$', IssueKind.UNKNOWN_NODE),
        (r'^Must condition "(?P<expr>.*)" not satisfied\.$', IssueKind.MUST),
    )
)
_REFERENCE_TEMPLATES: tuple[tuple[re.Pattern[str], IssueKind], ...] = tuple(
    (re.compile(pattern), kind) for pattern, kind in (
        (r'^No module (?:with namespace|named) "(?P<node>[^"]+)" in the context\.$', IssueKind.UNKNOWN_NAMESPACE),
        (r'^Node "(?P<node>[^"]+)" not found', IssueKind.UNKNOWN_NODE),
    )
)
_SYNTAX_CODES = frozenset({1, 2, 3, 7, 8})
_LOCATION = re.compile(r'^(?P<kind>Data|Schema) location "(?P<path>.*)"(?:, line number (?P<line>\d+))?\.?$')
_LINE_ONLY = re.compile(r"^Line number (?P<line>\d+)\.?$")


@dataclass(frozen=True, slots=True)
class DataIssue:
    """One problem with a data tree.

    `path` is a data path with list keys (``/m:top/list[key='v']/leaf``) when libyang knows the
    instance, else a schema path (`path_is_schema` true), else None. `node` names the offending
    node when the kind has one (the unknown element, the missing key or mandatory leaf).
    """

    message: str
    path: str | None = None
    path_is_schema: bool = False
    app_tag: str | None = None
    line: int | None = None
    code: str = "data"
    kind: IssueKind = IssueKind.OTHER
    node: str | None = field(default=None)

    def __str__(self) -> str:
        where = self.path or "/"
        return f"{where}: {self.message}"


class InvalidData(Exception):
    """Data that does not conform to the schema; carries every issue libyang reported."""

    def __init__(self, issues: list[DataIssue]) -> None:
        if not issues:
            issues = [DataIssue("invalid data")]
        super().__init__("; ".join(str(i) for i in issues))
        self.issues = issues


def classify(vecode: int, app_tag: str | None, message: str) -> tuple[IssueKind, str | None]:
    """(kind, offending node name) of one libyang error."""
    if app_tag:
        return _APP_TAG_KINDS.get(app_tag, IssueKind.MUST), None
    if vecode in _SYNTAX_CODES:
        return IssueKind.SYNTAX, None
    templates = _REFERENCE_TEMPLATES if vecode == 4 else _DATA_TEMPLATES if vecode == 9 else ()
    for pattern, kind in templates:
        m = pattern.match(message)
        if m:
            return kind, m.groupdict().get("node")
    if vecode == 4:
        return IssueKind.UNKNOWN_NODE, None
    if vecode == 9:
        return IssueKind.INVALID_VALUE, None  # the type plugins' findings: every other data error
    return IssueKind.OTHER, None


def _c2s(value) -> str | None:
    return ffi.string(value).decode("utf-8", "replace") if value else None


def take_issues(ctx_cdata) -> list[DataIssue]:
    """Read and clear the errors libyang stored in a context (per thread)."""
    issues: list[DataIssue] = []
    err = lib.ly_err_first(ctx_cdata)
    while err:
        if err.level == lib.LY_LLERR:
            message = _c2s(err.msg) or "invalid data"
            location = _c2s(err.path) or ""
            path, is_schema, line = None, False, None
            m = _LOCATION.match(location)
            if m:
                path = m.group("path")
                is_schema = m.group("kind") == "Schema"
                line = int(m.group("line")) if m.group("line") else None
            else:
                m2 = _LINE_ONLY.match(location)
                if m2:
                    line = int(m2.group("line"))
            app_tag = _c2s(err.apptag)
            kind, node = classify(err.vecode, app_tag, message)
            issues.append(
                DataIssue(
                    message=message,
                    path=path,
                    path_is_schema=is_schema,
                    app_tag=app_tag,
                    line=line,
                    code=VECODE_NAMES.get(err.vecode, "other"),
                    kind=kind,
                    node=node,
                )
            )
        err = err.next
    lib.ly_err_clean(ctx_cdata, ffi.NULL)
    return issues


def raise_issues(ctx_cdata, fallback: str) -> None:
    """Raise `InvalidData` with the stored errors (or `fallback` when libyang stored none)."""
    issues = take_issues(ctx_cdata)
    raise InvalidData(issues or [DataIssue(fallback)])
