"""bindings/generated: fresh with respect to yang/, and every constant names a real schema node."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from qstrata.bindings.generated import etsi_qkd_sdn_node as etsi
from qstrata.bindings.generated import qstrata_telemetry
from qstrata.bindings.schema import get_schema
from qstrata.bindings.tree import DataTree

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "bindings" / "generated"
SPECIAL = {"MODULE", "NAMESPACE", "NAME", "KEYS"}


def test_generated_files_are_fresh():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_paths.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"run .venv/bin/python scripts/gen_paths.py:\n{proc.stdout}{proc.stderr}"


def test_one_generated_module_per_yang_module():
    generated = {p.stem for p in GENERATED.glob("*.py")} - {"__init__"}
    assert generated == {name.replace("-", "_") for name in get_schema().our_modules()}


def test_entry_gives_the_data_path():
    link = etsi.qkd_node.qkd_links.qkd_link
    assert link.entry("x") == "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='x']"
    assert link.KEYS == ("qkdl_id",)
    assert link.PATH == "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link"
    assert link.qkdl_enable == "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link/qkdl_enable"
    assert etsi.MODULE == "etsi-qkd-sdn-node" and etsi.NAMESPACE == "urn:etsi:qkd:yang:etsi-qkd-node"
    # quotes in key values
    assert link.entry("it's") == "/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id=\"it's\"]"
    # below a list the parent's data path is passed in
    app = etsi.qkd_node.qkd_applications.qkd_app.entry("a")
    stats = etsi.qkd_node.qkd_applications.qkd_app.app_statistics.statistics.entry("t", parent=f"{app}/app_statistics")
    assert stats == f"{app}/app_statistics/statistics[end_time='t']"
    # every key, in the list's key order; a wrong count is a TypeError, as a generated signature was
    memory = qstrata_telemetry.telemetry.memories.memory
    assert memory.entry("mem-a", True) == ("/qstrata-telemetry:telemetry/memories/memory[node='mem-a']"
                                           "[memory-id='true']")
    with pytest.raises(TypeError, match="node, memory-id"):
        memory.entry("mem-a")


def test_entry_paths_address_data():
    uuid = "00000000-0000-0000-0000-0000000000c1"
    tree = DataTree()
    tree.set(etsi.qkd_node.qkdn_id, "00000000-0000-0000-0000-00000000000a")
    link = etsi.qkd_node.qkd_links.qkd_link.entry(uuid)
    tree.set(f"{link}/qkdl_enable", "false")
    tree.validate()
    assert tree.get(link).path() == link
    assert [n.value() for n in tree.find(etsi.qkd_node.qkd_links.qkd_link.qkdl_id)] == [uuid]


def _constants(obj, prefix: str):
    for name, value in vars(obj).items():
        if name.startswith("_") or name in SPECIAL:
            continue
        if isinstance(value, str):
            yield f"{prefix}.{name}", value
        elif inspect.isclass(value):
            yield from _constants(value, f"{prefix}.{name}")


def _generated_modules():
    return [importlib.import_module(f"qstrata.bindings.generated.{p.stem}")
            for p in sorted(GENERATED.glob("*.py")) if p.stem not in ("__init__", "_quote")]


@pytest.mark.parametrize("module", _generated_modules(), ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_generated_constant_resolves_in_the_schema(module):
    ctx = get_schema().ctx
    constants = list(_constants(module, module.__name__.rsplit(".", 1)[1]))
    if module.MODULE != "etsi-qkd-node-types":
        assert constants, f"{module.__name__} has no path constants"
    for name, path in constants:
        nodes = list(ctx.find_path(path))
        assert len(nodes) == 1, f"{name} = {path!r} resolves to {len(nodes)} nodes"
        last = path.rsplit("/", 1)[1].split(":")[-1]
        assert nodes[0].name() == last, f"{name} = {path!r} resolves to {nodes[0].name()}"
