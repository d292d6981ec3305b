"""RFC 8040 s4.8 query parameters: read strictly, checked against the method, as plain values.
Pure. Every refusal is a 400 invalid-value naming the parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import RestconfError, bad_request

# parameter -> methods it applies to (RFC 8040 s4.8 table)
PARAMETERS: dict[str, frozenset[str]] = {
    "content": frozenset({"GET", "HEAD"}),
    "depth": frozenset({"GET", "HEAD"}),
    "fields": frozenset({"GET", "HEAD"}),
    "filter": frozenset({"GET", "HEAD"}),
    "insert": frozenset({"POST", "PUT"}),
    "point": frozenset({"POST", "PUT"}),
    "start-time": frozenset({"GET", "HEAD"}),
    "stop-time": frozenset({"GET", "HEAD"}),
    "with-defaults": frozenset({"GET", "HEAD"}),
}
CAPABILITY_URIS: tuple[str, ...] = (
    "urn:ietf:params:restconf:capability:defaults:1.0?basic-mode=explicit",
    "urn:ietf:params:restconf:capability:depth:1.0",
    "urn:ietf:params:restconf:capability:fields:1.0",
    "urn:ietf:params:restconf:capability:filter:1.0",
    "urn:ietf:params:restconf:capability:replay:1.0",
    "urn:ietf:params:restconf:capability:with-defaults:1.0",
    "urn:ietf:params:restconf:capability:yang-patch:1.0",
)
"""What ietf-restconf-monitoring advertises (RFC 8040 s9.1.2, RFC 8072 s4)."""
WITH_DEFAULTS = ("report-all", "trim", "explicit", "report-all-tagged")
MAX_DEPTH = 65535
_IDENT = r"[A-Za-z_][A-Za-z0-9_.-]*"
_API_ID = re.compile(rf"(?:{_IDENT}:)?{_IDENT}")
_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


@dataclass
class Query:
    content: str = "all"
    depth: int | None = None
    fields: list[tuple[tuple[str | None, str], ...]] | None = None
    """Relative paths of (module or None, name) steps."""
    filter: str | None = None
    insert: str | None = None
    point: str | None = None
    start_time: str | None = None
    stop_time: str | None = None
    with_defaults: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_query(items: list[tuple[str, str]], method: str, *, stream: bool = False) -> Query:
    """`items`: the query's (name, value) pairs in order, already percent-decoded."""
    seen: set[str] = set()
    query = Query()
    for name, value in items:
        allowed = PARAMETERS.get(name)
        if allowed is None:
            raise bad_request(f"unknown query parameter {name!r} (this server knows "
                              f"{', '.join(sorted(PARAMETERS))})", tag="unknown-attribute",
                              info={"bad-attribute": name})
        if name in seen:
            raise bad_request(f"query parameter {name!r} is given twice", info={"bad-attribute": name})
        seen.add(name)
        if method not in allowed:
            raise bad_request(f"query parameter {name!r} does not apply to {method}", info={"bad-attribute": name})
        if name in ("filter", "start-time", "stop-time") and not stream:
            raise bad_request(f"query parameter {name!r} applies to event streams only", info={"bad-attribute": name})
        _read(query, name, value)
    if query.stop_time and not query.start_time:
        raise bad_request("stop-time needs a start-time (RFC 8040 s4.8.8)", info={"bad-attribute": "stop-time"})
    if query.point is not None and query.insert not in ("before", "after"):
        raise bad_request("point is only used with insert=before or insert=after", info={"bad-attribute": "point"})
    if query.insert in ("before", "after") and query.point is None:
        raise bad_request(f"insert={query.insert} needs a point", tag="missing-attribute",
                          info={"bad-attribute": "point"})
    return query


def _read(query: Query, name: str, value: str) -> None:
    if name == "content":
        if value not in ("all", "config", "nonconfig"):
            raise bad_request(f"content must be all, config or nonconfig, not {value[:40]!r}",
                              info={"bad-attribute": name})
        query.content = value
    elif name == "depth":
        if value == "unbounded":
            query.depth = None
            return
        if not value.isdigit() or not 1 <= int(value) <= MAX_DEPTH:
            raise bad_request(f"depth must be unbounded or an integer from 1 to {MAX_DEPTH}, not {value[:40]!r}",
                              info={"bad-attribute": name})
        query.depth = int(value)
    elif name == "fields":
        query.fields = parse_fields(value)
    elif name == "with-defaults":
        if value not in WITH_DEFAULTS:
            raise bad_request(f"with-defaults must be one of {', '.join(WITH_DEFAULTS)}, not {value[:40]!r}",
                              info={"bad-attribute": name})
        query.with_defaults = value
    elif name == "insert":
        if value not in ("first", "last", "before", "after"):
            raise bad_request(f"insert must be first, last, before or after, not {value[:40]!r}",
                              info={"bad-attribute": name})
        query.insert = value
    elif name == "point":
        query.point = value
    elif name in ("start-time", "stop-time"):
        if not _DATE.fullmatch(value):
            raise bad_request(f"{name} must be a date-and-time (2024-01-31T12:00:00Z), not {value[:40]!r}",
                              info={"bad-attribute": name})
        setattr(query, name.replace("-", "_"), value)
    elif name == "filter":
        if not value.strip():
            raise bad_request("filter must be an XPath expression", info={"bad-attribute": name})
        query.filter = value


def parse_fields(text: str) -> list[tuple[tuple[str | None, str], ...]]:
    """RFC 8040 s4.8.3: ``a(b;c/d);e`` -> [(a, b), (a, c, d), (e,)], each step (module, name)."""
    if len(text) > 4096:
        raise bad_request("the fields expression is longer than 4096 characters", info={"bad-attribute": "fields"})
    pos = 0

    def fail(why: str) -> RestconfError:
        return bad_request(f"fields {text[:80]!r}: {why} at character {pos + 1}", info={"bad-attribute": "fields"})

    def path() -> list[tuple[str | None, str]]:
        nonlocal pos
        steps = []
        while True:
            m = _API_ID.match(text, pos)
            if m is None:
                raise fail("a node name is expected")
            module, _, name = m.group().rpartition(":")
            steps.append((module or None, name))
            pos = m.end()
            if pos < len(text) and text[pos] == "/":
                pos += 1
                continue
            return steps

    def expr(depth: int) -> list[tuple[tuple[str | None, str], ...]]:
        nonlocal pos
        if depth > 16:
            raise fail("nested too deeply")
        out: list[tuple[tuple[str | None, str], ...]] = []
        while True:
            steps = path()
            if pos < len(text) and text[pos] == "(":
                pos += 1
                for inner in expr(depth + 1):
                    out.append((*steps, *inner))
                if pos >= len(text) or text[pos] != ")":
                    raise fail("')' is expected")
                pos += 1
            else:
                out.append(tuple(steps))
            if pos < len(text) and text[pos] == ";":
                pos += 1
                continue
            return out

    result = expr(0)
    if pos != len(text):
        raise fail("unexpected character")
    return result


def query_items(pairs: Mapping[str, str] | list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
