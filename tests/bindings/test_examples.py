"""Every instance document in yang/examples/: valid ones validate and survive every conversion,
invalid ones fail with the data path and message listed in expected-errors.tsv."""

from __future__ import annotations

from pathlib import Path

import pytest
from qstrata.bindings.codecs import gnmi
from qstrata.bindings.schema import YANG_DIR
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

EXAMPLES = YANG_DIR / "examples"
EXPECTED = EXAMPLES / "expected-errors.tsv"


def _examples(kind: str) -> list[Path]:
    return sorted(p for p in EXAMPLES.glob(f"{kind}-*") if p.suffix in (".xml", ".json"))


def _fmt(path: Path) -> str:
    return path.suffix[1:]


def _expected_errors() -> dict[str, list[tuple[str, str]]]:
    expected: dict[str, list[tuple[str, str]]] = {}
    if not EXPECTED.exists():
        return expected
    for number, line in enumerate(EXPECTED.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        assert len(cols) == 3, f"expected-errors.tsv:{number}: want 3 tab-separated columns, got {cols!r}"
        expected.setdefault(cols[0], []).append((cols[1], cols[2]))
    return expected


VALID = _examples("valid")
INVALID = _examples("invalid")
ids = [p.name for p in VALID]


def test_there_are_examples():
    assert VALID and INVALID


@pytest.mark.parametrize("path", VALID, ids=ids)
def test_valid_example_validates(path):
    tree = DataTree.parse(path.read_text(encoding="utf-8"), _fmt(path))
    assert not tree.is_empty()


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_example_fails_with_the_expected_issue(path):
    expected = _expected_errors().get(path.name)
    assert expected, f"{path.name} has no line in {EXPECTED.name} (file, data path, message substring)"
    with pytest.raises(InvalidData) as err:
        DataTree.parse(path.read_text(encoding="utf-8"), _fmt(path))
    issues = err.value.issues
    for want_path, want_message in expected:
        assert any(i.path == want_path and want_message in i.message for i in issues), (
            f"no issue at {want_path} containing {want_message!r}; got: " + "; ".join(map(str, issues))
        )


def test_every_expected_error_names_an_existing_invalid_example():
    names = {p.name for p in INVALID}
    for name in _expected_errors():
        assert name in names, f"{EXPECTED.name} names {name}, which is not an invalid-* example"


@pytest.mark.parametrize("path", VALID, ids=ids)
def test_valid_example_round_trips_through_json_and_gnmi(path):
    first = DataTree.parse(path.read_text(encoding="utf-8"), _fmt(path))
    xml = first.print("xml")
    assert xml

    via_json = DataTree.parse(first.print("json"), "json")
    assert via_json.print("xml") == xml

    updates = gnmi.tree_to_updates(via_json)
    assert updates
    rebuilt = gnmi.updates_to_tree(updates)
    rebuilt.validate()
    assert rebuilt.print("xml") == xml
    assert rebuilt.diff(first) == [] and first.diff(rebuilt) == []
