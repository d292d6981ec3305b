#!/usr/bin/env python3
"""Print the schema facts of a YANG module, one line per schema node.

The output has the format of the reference files in ../shared/reference/*/*.facts.tsv:

    # module <name> namespace <ns> prefix <prefix>
    # revision <date>                      (one line per revision, newest first as in the module)
    <path> TAB <keyword> TAB <rw|ro|> TAB <type> [TAB <extra>]...

* path: "/" joined node names from the top, without prefixes, including choice, case, input and
  output nodes (pyang creates implicit input/output nodes for rpcs that lack them, and lists them
  in the order pyang's schema tree has them).
* rw/ro: empty for rpc, action, notification, input and output; otherwise "rw" for configuration
  nodes and "ro" for everything else (state data, rpc input/output and notification content).
* type (leaf and leaf-list only, empty otherwise): the type as written, then its restrictions
  (fraction-digits=, range=, length=, pattern=, enum=, base=); when the type is a typedef, " <- "
  and the typedef's own type rendered the same way (recursively).  Union and bits members are not
  listed.
* extras, only when present, in this order: default=<arg> (empty for default ""), mandatory=<arg>,
  key=<arg>, min-elements=, max-elements=, ordered-by=<arg>, when="<xpath>" for every when
  statement of the node (pyang copies the when of a "uses" onto the nodes the uses adds at its
  level), and when(uses)="<xpath>" for the when of every uses statement the node comes from
  (so also the descendants of those nodes).

Nodes that the module adds to other modules through augment follow, with the augment's target
path as written (the reference modules have none).

With --identities the script prints instead the identities (each root identity with the ones
derived from it) and typedefs of the module, in the format of
../shared/reference/etsi-qkd-015/etsi-qkd-node-types.identities.txt.

Usage: .venv/bin/python scripts/yang_facts.py -p yang yang/etsi-qkd-sdn-node.yang
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pyang import context, repository, util
from pyang.error import err_level, err_to_str

NO_CONFIG_KEYWORDS = ("rpc", "action", "notification", "input", "output")
TYPE_RESTRICTIONS = ("fraction-digits", "range", "length", "pattern", "enum", "base")
EXTRA_KEYWORDS = ("default", "mandatory", "key", "min-elements", "max-elements", "ordered-by")


class YangError(Exception):
    """The module does not load or validate without errors."""


def load_module(module_file: str | Path, paths: list[str] | None = None):
    """Parse and validate one module with pyang; return the pyang module statement."""
    path = os.pathsep.join(str(p) for p in (paths or []))
    repo = repository.FileRepository(path)
    ctx = context.Context(repo)
    text = Path(module_file).read_text(encoding="utf-8")
    module = ctx.add_module(str(module_file), text)
    ctx.validate()
    errors = [
        f"{pos}: {err_to_str(tag, args)}"
        for pos, tag, args in ctx.errors
        if util.is_error(err_level(tag))
    ]
    if module is None or errors:
        raise YangError("\n".join(errors) or f"{module_file}: cannot be loaded")
    return module


def render_type(type_stmt) -> str:
    """`name restriction=...` and, for a typedef, ` <- ` and the typedef's type."""
    parts = [type_stmt.arg]
    for keyword in TYPE_RESTRICTIONS:
        for sub in type_stmt.search(keyword):
            parts.append(f"{keyword}={sub.arg}")
    text = " ".join(parts)
    typedef = getattr(type_stmt, "i_typedef", None)
    if typedef is not None:
        base = typedef.search_one("type")
        if base is not None:
            text += " <- " + render_type(base)
    return text


def node_line(stmt, path: str) -> str:
    keyword = stmt.keyword
    if keyword in NO_CONFIG_KEYWORDS:
        access = ""
    else:
        access = "rw" if getattr(stmt, "i_config", None) is True else "ro"
    type_stmt = stmt.search_one("type") if keyword in ("leaf", "leaf-list") else None
    columns = [path, keyword, access, render_type(type_stmt) if type_stmt is not None else ""]
    for extra in EXTRA_KEYWORDS:
        for sub in stmt.search(extra):
            columns.append(f"{extra}={sub.arg}")
    for when in stmt.search("when"):
        columns.append(f'when="{when.arg}"')
    for uses in getattr(stmt, "i_uses", None) or []:
        for when in uses.search("when"):
            columns.append(f'when(uses)="{when.arg}"')
    return "\t".join(columns)


def walk(stmt, path: str):
    yield node_line(stmt, path)
    for child in getattr(stmt, "i_children", None) or []:
        yield from walk(child, f"{path}/{child.arg}")


def facts_lines(module) -> list[str]:
    """The facts table of a validated pyang module statement, as a list of lines."""
    ns = module.search_one("namespace")
    prefix = module.search_one("prefix")
    lines = [
        f"# module {module.arg} namespace {ns.arg if ns else ''} prefix {prefix.arg if prefix else ''}"
    ]
    lines += [f"# revision {rev.arg}" for rev in module.search("revision")]
    for child in module.i_children:
        lines.extend(walk(child, f"/{child.arg}"))
    for augment in module.search("augment"):
        for child in getattr(augment, "i_children", None) or []:
            lines.extend(walk(child, f"{augment.arg}/{child.arg}"))
    return lines


def identities_lines(module) -> list[str]:
    """Identities (root: derived, ...) then typedefs, in the identities.txt reference format."""
    ns = module.search_one("namespace")
    prefix = module.search_one("prefix")
    revs = module.search("revision")
    lines = [
        f"# {module.arg} (ns {ns.arg if ns else ''}, prefix {prefix.arg if prefix else ''}, "
        f"rev {revs[0].arg if revs else ''}) — identities and typedefs"
    ]
    identities = module.search("identity")
    for root in identities:
        if root.search_one("base") is not None:
            continue
        derived = [
            ident.arg
            for ident in identities
            if any(util.split_identifier(b.arg)[1] == root.arg for b in ident.search("base"))
        ]
        lines.append(f"identity {root.arg}: {', '.join(derived)}")
    lines.append("")
    for typedef in module.search("typedef"):
        type_stmt = typedef.search_one("type")
        bases = " ".join(b.arg for b in type_stmt.search("base"))
        patterns = " ".join(p.arg for p in type_stmt.search("pattern"))
        lines.append(f"typedef {typedef.arg}: {type_stmt.arg} {bases} {patterns}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="YANG module file")
    parser.add_argument("-p", "--path", action="append", default=[],
                        help="directory searched for imported modules (repeatable, as in pyang)")
    parser.add_argument("--identities", action="store_true",
                        help="print identities and typedefs instead of the schema node facts")
    args = parser.parse_args(argv)
    paths = [p for arg in args.path for p in arg.split(os.pathsep)]
    try:
        module = load_module(args.module, paths)
    except (OSError, YangError) as exc:
        print(exc, file=sys.stderr)
        return 1
    lines = identities_lines(module) if args.identities else facts_lines(module)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
