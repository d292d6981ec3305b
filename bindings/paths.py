"""Paths between YANG data paths (XPath with keys) and gNMI `Path` messages.

Pure functions. Conventions (gNMI path conventions and RFC 7951 naming): the first element is
module-qualified (``etsi-qkd-sdn-node:qkd_node``) and so is any element whose module differs from
its parent's; keys become `PathElem.key`; wildcards are ``*`` (any one element or key value) and
``...`` (any number of levels).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from gnmi_pb import gnmi_pb2


class PathSyntaxError(ValueError):
    """A path string that cannot be parsed; the message says where."""


def _split_segments(path: str, *, xpath: bool = True) -> list[str]:
    """Split on '/' outside brackets and quotes (gNMI strings: quotes and '[' in keys are literal)."""
    if not path.startswith("/"):
        raise PathSyntaxError(f"path must be absolute: {path!r}")
    segments: list[str] = []
    buf: list[str] = []
    depth = 0
    quote: str | None = None
    escaped = False
    for ch in path[1:]:
        if escaped:
            buf.append(ch)
            escaped = False
            continue
        if ch == "\\" and depth and quote is None:
            buf.append(ch)
            escaped = True
            continue
        if quote:
            if ch == quote:
                quote = None
            buf.append(ch)
            continue
        if ch in "'\"" and depth and xpath:
            quote = ch
        elif ch == "[" and (xpath or not depth):
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise PathSyntaxError(f"unbalanced ']' in {path!r}")
        elif ch == "/" and depth == 0:
            segments.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    if depth or quote:
        raise PathSyntaxError(f"unterminated predicate in {path!r}")
    if buf or path.endswith("/") and path != "/":
        segments.append("".join(buf))
    if any(s == "" for s in segments):
        if path.endswith("//") or "//" in path:
            raise PathSyntaxError(f"empty element in {path!r} (use ... for any depth)")
        raise PathSyntaxError(f"empty element in {path!r}")
    return segments


def _parse_predicates(segment: str, *, xpath: bool) -> tuple[str, dict[str, str]]:
    """``name[k='v'][j=w]`` -> (name, {k: v, j: w}). XPath values are quoted, gNMI ones escaped."""
    i = segment.find("[")
    if i < 0:
        return segment, {}
    name, rest = segment[:i], segment[i:]
    if not name:
        raise PathSyntaxError(f"empty element name in {segment!r}")
    keys: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        if rest[pos] != "[":
            raise PathSyntaxError(f"expected '[' in {segment!r}")
        eq = rest.find("=", pos)
        if eq < 0:
            raise PathSyntaxError(f"predicate without '=' in {segment!r}")
        key = rest[pos + 1 : eq].strip()
        pos = eq + 1
        if xpath and pos < len(rest) and rest[pos] in "'\"":
            q = rest[pos]
            end = rest.find(q, pos + 1)
            if end < 0:
                raise PathSyntaxError(f"unterminated quote in {segment!r}")
            value = rest[pos + 1 : end]
            pos = end + 1
            if pos >= len(rest) or rest[pos] != "]":
                raise PathSyntaxError(f"expected ']' in {segment!r}")
            pos += 1
        else:
            out: list[str] = []
            while pos < len(rest) and rest[pos] != "]":
                if rest[pos] == "\\" and pos + 1 < len(rest):
                    pos += 1
                out.append(rest[pos])
                pos += 1
            if pos >= len(rest):
                raise PathSyntaxError(f"expected ']' in {segment!r}")
            pos += 1
            value = "".join(out).strip() if xpath else "".join(out)
        if not key:
            raise PathSyntaxError(f"empty key name in {segment!r}")
        keys[key] = value
    return name, keys


def xpath_to_gnmi(path: str, origin: str = "") -> gnmi_pb2.Path:
    """A data path (``/m:a/b[k='v']/c``) or gNMI path string (``/m:a/b[k=v]/c``) as a `Path`.

    Leaf-list value predicates (``[.='v']``) are dropped: gNMI addresses the whole leaf-list.
    """
    if path in ("", "/"):
        return gnmi_pb2.Path(origin=origin)
    elems = []
    for seg in _split_segments(path):
        name, keys = _parse_predicates(seg, xpath=True)
        keys.pop(".", None)
        elems.append(gnmi_pb2.PathElem(name=name, key=keys))
    return gnmi_pb2.Path(elem=elems, origin=origin)


def gnmi_string_to_path(path: str, origin: str = "") -> gnmi_pb2.Path:
    """A gNMI path string with unquoted, backslash-escaped key values as a `Path`."""
    if path in ("", "/"):
        return gnmi_pb2.Path(origin=origin)
    elems = []
    for seg in _split_segments(path, xpath=False):
        name, keys = _parse_predicates(seg, xpath=False)
        elems.append(gnmi_pb2.PathElem(name=name, key=keys))
    return gnmi_pb2.Path(elem=elems, origin=origin)


def _quote(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise PathSyntaxError(f"key value holds both quote characters: {value!r}")


def gnmi_to_xpath(path: gnmi_pb2.Path, prefix: gnmi_pb2.Path | None = None) -> str:
    """A `Path` (joined under `prefix`) as an XPath: ``*`` stays, ``...`` becomes ``//``,
    key wildcards drop their predicate."""
    elems = list(prefix.elem if prefix is not None else []) + list(path.elem)
    out: list[str] = []
    for e in elems:
        if e.name == "...":
            out.append("/")
            continue
        preds = "".join(f"[{k}={_quote(v)}]" for k, v in sorted(e.key.items()) if v != "*")
        out.append(e.name + preds)
    text = "/" + "/".join(out)
    return text.replace("///", "//")


def gnmi_path_to_string(path: gnmi_pb2.Path) -> str:
    """The gNMI path string form (as gnmic prints it)."""
    parts = []
    for e in path.elem:
        keys = "".join(
            "[{}={}]".format(k, v.replace("\\", "\\\\").replace("]", "\\]")) for k, v in sorted(e.key.items())
        )
        parts.append(e.name + keys)
    return "/" + "/".join(parts)


def join(prefix: gnmi_pb2.Path | None, path: gnmi_pb2.Path) -> gnmi_pb2.Path:
    """`prefix` + `path` (gNMI requests carry a common prefix)."""
    if prefix is None or (not prefix.elem and not prefix.origin):
        return path
    return gnmi_pb2.Path(elem=list(prefix.elem) + list(path.elem), origin=path.origin or prefix.origin)


def has_wildcards(path: gnmi_pb2.Path) -> bool:
    return any(e.name in ("*", "...") or "*" in e.key.values() for e in path.elem)


# -- data paths as steps (NACM, error paths) -------------------------------------------------


class PathStep(NamedTuple):
    """One element of a data path: the node's module (None when the path leaves it implicit),
    its name, and its key predicates in order (``(".", value)`` for a leaf-list entry)."""

    module: str | None
    name: str
    keys: tuple[tuple[str, str], ...] = ()


def parse_data_path(path: str) -> tuple[PathStep, ...]:
    """Split a data path as libyang prints it and RFC 7951 / RFC 8341 write it
    (``/m:a/b[k='v']/c``, ``/m:a/m:b``, ``/``) into steps. Prefixes are returned as written
    (a module name, or whatever the author used); predicate key names lose any prefix.
    Raises `PathSyntaxError` for anything else (positional predicates, expressions)."""
    if path.strip() == "/":
        return ()
    steps = []
    for seg in _split_segments(path.strip()):
        name, keys = _parse_predicates(seg, xpath=True)
        module, _, local = name.rpartition(":")
        if not local or not all(part.replace("-", "").replace("_", "").replace(".", "").isalnum()
                                for part in (local, *((module,) if module else ()))):
            raise PathSyntaxError(f"not a node name: {name!r} in {path!r}")
        steps.append(PathStep(module or None, local,
                              tuple((k.rpartition(":")[2], v) for k, v in keys.items())))
    return tuple(steps)


def format_data_path(steps: Iterable[PathStep]) -> str:
    """The inverse of `parse_data_path` in libyang's style: a module prefix on the first step
    and wherever the module changes."""
    out = []
    parent_module = None
    for step in steps:
        prefix = f"{step.module}:" if step.module and step.module != parent_module else ""
        parent_module = step.module or parent_module
        out.append(prefix + step.name + "".join(f"[{k}={_quote(v)}]" for k, v in step.keys))
    return "/" + "/".join(out)
_FAST_SEGMENT = re.compile(r"/([^/\[\]'\"\\=]+)((?:\[[^/\[\]'\"\\=]+='[^'\\\[\]]*'\])*)")
_FAST_KEY = re.compile(r"\[([^=]+)='([^']*)'\]")


def split_data_path(path: str) -> list[tuple[str, dict[str, str]]]:
    """A data path (``/m:a/b[k='v']/c``) as (element name, {key: value}) pairs, in order.

    For consumers that index by schema path and keys (collectors) without building a `Path`.
    Paths as libyang prints them (single-quoted keys, no brackets or backslashes inside) take a
    regular-expression fast path, about 5x faster; anything else the full parser."""
    if path in ("", "/"):
        return []
    parts = _FAST_SEGMENT.findall(path)
    if parts and sum(len(name) + len(preds) + 1 for name, preds in parts) == len(path):
        return [(name, dict(_FAST_KEY.findall(preds)) if preds else {}) for name, preds in parts]
    return [_parse_predicates(seg, xpath=True) for seg in _split_segments(path)]


def prefixes(path: str) -> list[str]:
    """The data paths of a node's ancestors and of the node itself, outermost first
    (``/a``, ``/a/b[k='v']``, ``/a/b[k='v']/c``): for matching changes against what lies below
    a node without parsing each path again."""
    if path in ("", "/"):
        return []
    parts = _FAST_SEGMENT.findall(path)
    if parts and sum(len(name) + len(preds) + 1 for name, preds in parts) == len(path):
        out, end = [], 0
        for name, preds in parts:
            end += len(name) + len(preds) + 1
            out.append(path[:end])
        return out
    steps = split_data_path(path)
    return [join_data_path(steps[:n]) for n in range(1, len(steps) + 1)]


def schema_path(path: str) -> str:
    """A data path without its key predicates: the schema node it instantiates."""
    if "[" not in path:
        return path
    return "/" + "/".join(name for name, _ in split_data_path(path))


def join_data_path(elements: list[tuple[str, dict[str, str]]]) -> str:
    """The inverse of `split_data_path`: keys in the order given, values quoted for XPath."""
    if not elements:
        return "/"
    return "/" + "/".join(name + "".join(f"[{k}={_quote(v)}]" for k, v in keys.items()) for name, keys in elements)
