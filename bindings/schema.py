"""The one libyang context every part of qstrata shares.

Modules come from `yang/` (ours, and the standard modules we serve) and from the IETF modules
that ship with pyang and libyang (never copies). The context is created once per process:
compiling it costs tens of milliseconds and every data tree is bound to it.

Published-schema defect. ETSI GS QKD 015 V2.1.1 compares an identityref with an unprefixed name
(``when "qkdl_type = 'PHYS'"``). XPath compares the canonical value ``etsi-qkd-node-types:PHYS``
with the literal ``PHYS``, so a strict validator rejects every ``phys_*`` leaf. A deviation cannot
change a ``when``. So clients are served the published text (``pyang -f tree``, ``get-schema``),
while the validator compiles a copy whose only difference is the module-qualified identity
(`VALIDATOR_FIXES`); `validator_module_text` refuses to load if a fix no longer applies, and a
test diffs the two texts.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import libyang
from _libyang import ffi, lib
from qstrata.yang import YANG_DIR  # the modules ship as package data of qstrata.yang

# Standard modules the agents serve besides ours; found in pyang's and libyang's module sets.
IETF_MODULES: tuple[str, ...] = (
    "ietf-netconf",
    "ietf-netconf-with-defaults",
    "ietf-netconf-monitoring",
    "ietf-netconf-notifications",
    "ietf-netconf-acm",
    "ietf-netconf-nmda",
    "ietf-yang-library",
    "ietf-origin",
)

# module -> ((published text, text the validator compiles), ...)
VALIDATOR_FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "etsi-qkd-sdn-node": (
        ("when \"qkdl_type = 'VIRT'\"", "when \"qkdl_type = 'etsi-qkdn-types:VIRT'\""),
        ("when \"qkdl_type = 'PHYS'\"", "when \"qkdl_type = 'etsi-qkdn-types:PHYS'\""),
        ("when \"../qkdl_type = 'PHYS'\"", "when \"../qkdl_type = 'etsi-qkdn-types:PHYS'\""),
    ),
}


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a front end needs to know about a schema node without touching libyang."""

    kind: str  # container, leaf, leaf-list, list, rpc, action, notification, choice, case, anydata
    keys: tuple[str, ...] = ()
    config: bool = True


_NODE_KINDS = {
    libyang.SNode.CONTAINER: "container", libyang.SNode.LEAF: "leaf", libyang.SNode.LEAFLIST: "leaf-list",
    libyang.SNode.LIST: "list", libyang.SNode.RPC: "rpc", libyang.SNode.ACTION: "action",
    libyang.SNode.NOTIF: "notification",
}


class SchemaError(Exception):
    """The modules in yang/ cannot be loaded; a packaging or authoring problem."""


def ietf_module_dirs() -> list[Path]:
    """Directories holding the IETF modules installed with pyang (share/yang/modules)."""
    dirs: list[Path] = []
    for prefix in {Path(sys.prefix), Path(sys.base_prefix), Path("/usr"), Path("/usr/local")}:
        base = prefix / "share" / "yang" / "modules"
        if base.is_dir():
            dirs.extend(sorted(p for p in base.iterdir() if p.is_dir()))
    return dirs


def module_files(yang_dir: Path = YANG_DIR) -> dict[str, Path]:
    """Our module files by module name (file names are ``NAME.yang``)."""
    return {p.stem.split("@")[0]: p for p in sorted(yang_dir.glob("*.yang"))}


def published_module_text(name: str, yang_dir: Path = YANG_DIR) -> str:
    """The module text clients see (get-schema, trees): exactly the file in yang/."""
    path = module_files(yang_dir).get(name)
    if path is None:
        raise KeyError(name)
    return path.read_text(encoding="utf-8")


def validator_module_text(name: str, yang_dir: Path = YANG_DIR) -> str:
    """The text the validator compiles: the published text with `VALIDATOR_FIXES` applied."""
    text = published_module_text(name, yang_dir)
    for published, fixed in VALIDATOR_FIXES.get(name, ()):
        if published not in text:
            raise SchemaError(f"{name}: expected published text {published!r} not found; update VALIDATOR_FIXES")
        text = text.replace(published, fixed)
    return text


_IMPORT = re.compile(r"^\s*import\s+([\w.-]+)", re.MULTILINE)
_IDENTITY = re.compile(r"^\s*identity\s+([\w.-]+)", re.MULTILINE)


def _with_imports(names: set[str], files: dict[str, Path]) -> list[str]:
    unknown = names - set(files)
    if unknown:
        raise SchemaError(f"unknown module(s) {', '.join(sorted(unknown))}; yang/ has {', '.join(files)}")
    todo, seen = list(names), set(names)
    while todo:
        for dep in _IMPORT.findall(files[todo.pop()].read_text(encoding="utf-8")):
            if dep in files and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return [n for n in files if n in seen]


_log_lock = threading.Lock()


def _store_errors_with_paths() -> None:
    """Keep libyang errors (with their data paths) for us to read, print nothing to stderr."""
    with _log_lock:
        lib.ly_set_log_clb(ffi.NULL, True)
        lib.ly_log_options(lib.LY_LOSTORE)


class Schema:
    """A compiled set of modules and what we know about them."""

    def __init__(self, yang_dir: Path = YANG_DIR, extra_modules: Iterable[str] = IETF_MODULES,
                 only: Iterable[str] | None = None) -> None:
        """`only` restricts our modules to those named (an agent serves its kind's modules),
        plus the yang/ modules they import."""
        _store_errors_with_paths()
        self.yang_dir = yang_dir
        search = ":".join(str(p) for p in [yang_dir, *ietf_module_dirs()])
        self.ctx = libyang.Context(search, disable_searchdir_cwd=True)
        self.files = module_files(yang_dir)
        if only is not None:
            self.files = {n: self.files[n] for n in _with_imports(set(only), self.files)}
        try:
            for name in extra_modules:
                mod = self.ctx.load_module(name)
                mod.feature_enable_all()
            # Modules with validator fixes are parsed from text first, so that imports of
            # them by other modules find the fixed copy already in the context.
            ordered = sorted(self.files, key=lambda n: (n not in VALIDATOR_FIXES, n))
            for name in ordered:
                if name in VALIDATOR_FIXES:
                    mod = self.ctx.parse_module_str(validator_module_text(name, yang_dir))
                else:
                    mod = self.ctx.get_module(name) if self._is_loaded(name) else self.ctx.load_module(name)
                mod.feature_enable_all()
        except libyang.LibyangError as exc:
            raise SchemaError(f"cannot load YANG modules from {yang_dir}: {exc}") from exc

    def _is_loaded(self, name: str) -> bool:
        try:
            self.ctx.get_module(name)
        except libyang.LibyangError:
            return False
        return True

    def module(self, name: str) -> libyang.Module:
        return self.ctx.get_module(name)

    def our_modules(self) -> list[str]:
        """Module names from yang/, in file order."""
        return list(self.files)

    def implemented_modules(self) -> list[libyang.Module]:
        return [m for m in self.ctx if m.implemented()]

    def namespace(self, module: str) -> str:
        return ffi.string(self.ctx.get_module(module).cdata.ns).decode()

    def revision(self, module: str) -> str | None:
        """The module's latest revision date, None when it has none."""
        return max((r.date() for r in self.ctx.get_module(module).revisions()), default=None)

    def organization(self, module: str) -> str | None:
        """The module's organization statement, whitespace folded (gNMI ModelData)."""
        org = self.ctx.get_module(module).cdata.org
        return " ".join(ffi.string(org).decode().split()) if org != ffi.NULL else None

    def node_info(self, schema_path: str) -> NodeInfo | None:
        """The schema node at a path without predicates (``/mod:top/child``), or None."""
        try:
            nodes = list(self.ctx.find_path(schema_path))
        except libyang.LibyangError:
            return None
        if len(nodes) != 1:
            return None
        node = nodes[0]
        keys = tuple(k.name() for k in node.keys()) if node.nodetype() == libyang.SNode.LIST else ()
        return NodeInfo(_NODE_KINDS.get(node.nodetype(), "other"), keys, not node.config_false())

    def identities_named(self, name: str) -> list[str]:
        """``module:identity`` of every identity called `name` (for "did you mean" hints)."""
        if not hasattr(self, "_identities"):
            table: dict[str, list[str]] = {}
            for module in self.implemented_modules():
                for name_ in _IDENTITY.findall(self.schema_text(module.name())):
                    table.setdefault(name_, []).append(f"{module.name()}:{name_}")
            self._identities = table
        return list(self._identities.get(name, ()))

    def is_yang11(self, name: str) -> bool:
        parsed = self.ctx.get_module(name).cdata.parsed
        return parsed != ffi.NULL and parsed.version == 2

    def yang_library(self, content_id: str) -> dict:
        """ietf-yang-library data (RFC 8525) as JSON-IETF; libyang's tree is freed here."""
        node = self.ctx.get_yanglib_data(content_id)
        try:
            return json.loads(node.print_mem("json", with_siblings=True))
        finally:
            node.free()

    def notification_xml(self, notification: dict) -> str:
        """A JSON-IETF notification (one top-level member) as XML, checked against the schema."""
        node = self.ctx.parse_op_mem("json", json.dumps(notification), dtype=libyang.DataType.NOTIF_YANG)
        try:
            return node.print_mem("xml", with_siblings=True)
        finally:
            node.free()

    def notification_matches(self, notification: dict, xpath: str) -> bool:
        """Does an XPath filter (RFC 8040 s4.8.4, module names as prefixes) select anything in a
        JSON-IETF notification? Raises ValueError for an invalid expression."""
        node = self.ctx.parse_op_mem("json", json.dumps(notification), dtype=libyang.DataType.NOTIF_YANG)
        try:
            return bool(node.eval_xpath(xpath))
        except libyang.LibyangError as exc:
            raise ValueError(str(exc).replace("cannot eva xpath", "invalid XPath")) from None
        finally:
            node.free()

    def schema_text(self, name: str) -> str:
        """Text for get-schema: the published file for our modules, libyang's print otherwise."""
        if name in self.files:
            return published_module_text(name, self.yang_dir)
        return self.ctx.get_module(name).print_mem("yang")


@functools.cache
def get_schema(modules: tuple[str, ...] | None = None) -> Schema:
    """The process-wide schema for a set of our modules (all of yang/ by default), created once."""
    return Schema(only=modules)
