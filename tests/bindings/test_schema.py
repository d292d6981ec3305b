"""The schema layer: published text vs. the text the validator compiles, and the context."""

from __future__ import annotations

import difflib
import shutil

import pytest
from qstrata.bindings.schema import (
    VALIDATOR_FIXES,
    YANG_DIR,
    Schema,
    SchemaError,
    get_schema,
    published_module_text,
    validator_module_text,
)
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

ETSI = "etsi-qkd-sdn-node"
NODE_ID = "00000000-0000-0000-0000-00000000000a"
LINK_ID = "00000000-0000-0000-0000-0000000000c1"
LINK_PATH = f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='{LINK_ID}']"


def _changed_lines(a: str, b: str) -> tuple[list[str], list[str]]:
    """Lines only in `a` and lines only in `b`, by a line diff."""
    removed, added = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False).get_opcodes():
        if op != "equal":
            removed += a.splitlines()[i1:i2]
            added += b.splitlines()[j1:j2]
    return removed, added


def test_validator_text_differs_only_in_the_listed_when_lines():
    published = published_module_text(ETSI)
    fixed = validator_module_text(ETSI)
    assert published != fixed
    removed, added = _changed_lines(published, fixed)
    fixes = VALIDATOR_FIXES[ETSI]
    # one changed line per occurrence of a published string, and each fix used at least once
    expected = sum(published.count(old) for old, _ in fixes)
    assert len(removed) == len(added) == expected
    for old, new in fixes:
        assert old.startswith("when ") and new.startswith("when ")
        assert any(old in line for line in removed), old
        assert any(new in line for line in added), new
    # every changed line is a `when` line whose only change is a listed replacement
    for before, after in zip(removed, added, strict=True):
        assert before.strip().startswith("when ")
        matching = [(old, new) for old, new in fixes if old in before]
        assert len(matching) == 1, before
        old, new = matching[0]
        assert before.replace(old, new) == after
    # the fixed text names the identities module-qualified, the published one does not
    assert "'etsi-qkdn-types:PHYS'" in fixed and "'etsi-qkdn-types:PHYS'" not in published


def test_modules_without_fixes_are_compiled_as_published():
    for name in get_schema().our_modules():
        if name not in VALIDATOR_FIXES:
            assert validator_module_text(name) == published_module_text(name)


def test_schema_text_serves_the_published_file():
    schema = get_schema()
    for name in schema.our_modules():
        assert schema.schema_text(name) == (YANG_DIR / f"{name}.yang").read_text(encoding="utf-8")
    assert "qkdl_type = 'PHYS'" in schema.schema_text(ETSI)
    # modules that are not ours come from libyang
    assert "module ietf-yang-library" in schema.schema_text("ietf-yang-library")


def test_get_schema_is_a_singleton():
    assert get_schema() is get_schema()
    assert DataTree().schema is get_schema()


def _node_with_link(link_type: str, **link: object) -> dict:
    entry = {
        "qkdl_id": LINK_ID,
        "qkdl_enable": True,
        "qkdl_type": f"etsi-qkd-node-types:{link_type}",
        **link,
    }
    return {"etsi-qkd-sdn-node:qkd_node": {"qkdn_id": NODE_ID, "qkd_links": {"qkd_link": [entry]}}}


PHYS_LEAVES = {
    "phys_channel_att": "10.5",
    "phys_wavelength": "1550",
    "phys_qkd_role": "etsi-qkd-node-types:TRANSMITTER",
}
QBER = {"qkdl_performance": {"phys_perf": [{"perf_type": "etsi-qkd-node-types:QBER", "value": "0.021"}]}}


def test_phys_link_with_phys_leaves_and_qber_validates():
    tree = DataTree.from_python(_node_with_link("PHYS", **PHYS_LEAVES, **QBER))
    assert tree.get(f"{LINK_PATH}/phys_wavelength").value() == "1550"
    qber = tree.get(f"{LINK_PATH}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:QBER']/value")
    assert qber is not None and str(qber.value()) == "0.021"


@pytest.mark.parametrize("leaf", sorted(PHYS_LEAVES))
def test_phys_leaf_on_virt_link_is_rejected_at_the_leaf(leaf):
    with pytest.raises(InvalidData) as err:
        DataTree.from_python(_node_with_link("VIRT", **{leaf: PHYS_LEAVES[leaf]}))
    paths = [i.path for i in err.value.issues]
    assert f"{LINK_PATH}/{leaf}" in paths
    assert any("When condition" in i.message for i in err.value.issues)


def test_phys_perf_on_virt_link_is_rejected():
    with pytest.raises(InvalidData) as err:
        DataTree.from_python(_node_with_link("VIRT", **QBER))
    assert any(i.path and i.path.startswith(f"{LINK_PATH}/qkdl_performance/phys_perf") for i in err.value.issues)


def test_virt_leaves_on_phys_link_are_rejected():
    with pytest.raises(InvalidData) as err:
        DataTree.from_python(_node_with_link("PHYS", virt_bandwidth=5000))
    assert f"{LINK_PATH}/virt_bandwidth" in [i.path for i in err.value.issues]


def _yang_copy(tmp_path):
    target = tmp_path / "yang"
    target.mkdir()
    for f in YANG_DIR.glob("*.yang"):
        shutil.copy(f, target)
    return target


def test_schema_over_an_unmodified_copy_loads(tmp_path):
    schema = Schema(_yang_copy(tmp_path))
    assert schema is not get_schema()
    assert set(schema.our_modules()) == set(get_schema().our_modules())
    DataTree.from_python(_node_with_link("PHYS", **PHYS_LEAVES), schema=schema)


@pytest.mark.parametrize("index", range(len(VALIDATOR_FIXES[ETSI])))
def test_schema_refuses_to_load_when_a_fix_no_longer_applies(tmp_path, index):
    yang = _yang_copy(tmp_path)
    path = yang / f"{ETSI}.yang"
    old, new = VALIDATOR_FIXES[ETSI][index]
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")  # as if the standard were corrected
    with pytest.raises(SchemaError, match="VALIDATOR_FIXES"):
        Schema(yang)
    with pytest.raises(SchemaError):
        validator_module_text(ETSI, yang)


def test_schema_error_for_a_broken_module(tmp_path):
    yang = _yang_copy(tmp_path)
    (yang / "qstrata-broken.yang").write_text("module qstrata-broken { this is not yang }\n", encoding="utf-8")
    with pytest.raises(SchemaError):
        Schema(yang)
