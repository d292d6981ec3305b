"""Structured validation errors from libyang.

libyang keeps its errors in the context; the Python bindings flatten them into one string. We
read them ourselves so every consumer (CLI, NETCONF rpc-error, gNMI status) gets the data path
with list keys, the message and the app tag, and can map them to its own error vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

_LOCATION = re.compile(r'^(?P<kind>Data|Schema) location "(?P<path>.*)"(?:, line number (?P<line>\d+))?\.?$')
_LINE_ONLY = re.compile(r"^Line number (?P<line>\d+)\.?$")


@dataclass(frozen=True, slots=True)
class DataIssue:
    """One problem with a data tree.

    `path` is a data path with list keys (``/m:top/list[key='v']/leaf``) when libyang knows the
    instance, else a schema path (`path_is_schema` true), else None.
    """

    message: str
    path: str | None = None
    path_is_schema: bool = False
    app_tag: str | None = None
    line: int | None = None
    code: str = "data"

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


def _c2s(value) -> str | None:
    return ffi.string(value).decode("utf-8", "replace") if value else None


def take_issues(ctx_cdata) -> list[DataIssue]:
    """Read and clear the errors libyang stored in a context."""
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
            issues.append(
                DataIssue(
                    message=message,
                    path=path,
                    path_is_schema=is_schema,
                    app_tag=_c2s(err.apptag),
                    line=line,
                    code=VECODE_NAMES.get(err.vecode, "other"),
                )
            )
        err = err.next
    lib.ly_err_clean(ctx_cdata, ffi.NULL)
    return issues


def raise_issues(ctx_cdata, fallback: str) -> None:
    """Raise `InvalidData` with the stored errors (or `fallback` when libyang stored none)."""
    issues = take_issues(ctx_cdata)
    raise InvalidData(issues or [DataIssue(fallback)])
