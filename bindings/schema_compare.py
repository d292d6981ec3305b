"""Compare a module as a server publishes it (RFC 6022 <get-schema>) with ours, node by node.

Text comparison would flag every reworded description; what a client depends on is the schema
tree: each node's path, kind, type, config/state, mandatory, default, units, keys, when/must. Both
texts are compiled by libyang (the only place allowed to touch it) in a context of their own,
resolving imports from the fetched texts first, then from the IETF modules we ship, and each node is
reduced to one comparable line.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import libyang

from .schema import ietf_module_dirs

__all__ = ["NodeDifference", "SchemaCompareError", "compare_module", "schema_nodes"]


class SchemaCompareError(Exception):
    """A text does not compile (the message is libyang's)."""


@dataclass(frozen=True)
class NodeDifference:
    path: str
    ours: str | None
    theirs: str | None

    def __str__(self) -> str:
        if self.ours is None:
            return f"{self.path}: only theirs ({self.theirs})"
        if self.theirs is None:
            return f"{self.path}: missing (ours: {self.ours})"
        return f"{self.path}: ours {self.ours} / theirs {self.theirs}"


def schema_nodes(texts: Mapping[str, str], module: str) -> dict[str, str]:
    """{schema path: description} for every data node of `module` compiled from `texts` (module
    name -> YANG text; imports not among them come from the shipped IETF modules)."""
    with tempfile.TemporaryDirectory(prefix="qstrata-schema-") as tmp:
        for name, text in texts.items():
            (Path(tmp) / f"{name}.yang").write_text(text)
        search = ":".join([tmp, *(str(d) for d in ietf_module_dirs())])
        ctx = libyang.Context(search, disable_searchdir_cwd=True)
        try:
            try:
                mod = ctx.load_module(module)
            except libyang.LibyangError as exc:
                raise SchemaCompareError(f"{module} does not compile: {exc}") from None
            nodes = {node.schema_path(): _describe(node) for node in _walk(mod.children())}
            for typedef in mod.typedefs():
                nodes[f"/{module}:typedef {typedef.name()}"] = f"typedef; units {typedef.units() or '-'}"
            for name, bases in _IDENTITY.findall(texts.get(module, "")):
                nodes[f"/{module}:identity {name}"] = "identity; base " + (bases or "-")
            return nodes
        finally:
            ctx.destroy()


_IDENTITY = re.compile(r"\bidentity\s+([\w.-]+)\s*\{(?:[^{}]*?\bbase\s+([\w:.-]+)\s*;)?")
"""Identities are not in libyang's Python API; names and first base are read from the text."""


def compare_module(ours: Mapping[str, str], theirs: Mapping[str, str], module: str) -> list[NodeDifference]:
    """The nodes whose description differs, is missing on their side, or is only on theirs."""
    a, b = schema_nodes(ours, module), schema_nodes(theirs, module)
    return [NodeDifference(path, a.get(path), b.get(path))
            for path in sorted(set(a) | set(b)) if a.get(path) != b.get(path)]


def _walk(nodes) -> Iterator[libyang.SNode]:
    for node in nodes:
        yield node
        if isinstance(node, libyang.SContainer | libyang.SList):
            yield from _walk(node.children())


def _describe(node: libyang.SNode) -> str:
    parts = [node.keyword(), "config false" if node.config_false() else "config true"]
    if isinstance(node, libyang.SLeaf | libyang.SLeafList):
        t = node.type()
        parts.append(f"type {t.name()}")
        if t.basename() == "enumeration":
            parts.append("enums " + ",".join(sorted(e.name() for e in t.all_enums())))
        ranges, lengths, patterns = list(t.all_ranges()), list(t.all_lengths()), list(t.all_patterns())
        if ranges:
            parts.append("range " + "|".join(map(str, ranges)))
        if lengths:
            parts.append("length " + "|".join(map(str, lengths)))
        if patterns:
            parts.append("pattern " + "|".join(str(p[0]) for p in patterns))
        if node.units():
            parts.append(f"units {node.units()}")
    if isinstance(node, libyang.SLeaf):
        if node.mandatory():
            parts.append("mandatory")
        if node.default() is not None:
            parts.append(f"default {node.default()}")
    if isinstance(node, libyang.SList):
        parts.append("keys " + ",".join(k.name() for k in node.keys()))
    if isinstance(node, libyang.SContainer) and node.presence():
        parts.append("presence")
    whens = list(node.when_conditions())
    if whens:
        parts.append("when " + " & ".join(whens))
    musts = list(node.must_conditions())
    if musts:
        parts.append("must " + " & ".join(musts))
    return "; ".join(parts)
