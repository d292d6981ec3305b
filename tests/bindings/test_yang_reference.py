"""The YANG modules in yang/ against the published schemas, and the examples against the modules.

* etsi-qkd-sdn-node and optical-switch: `pyang -f tree` equals the reference tree exactly and the
  facts table of scripts/yang_facts.py holds every line of the reference facts (and no other);
  the identities and typedefs of etsi-qkd-node-types match the reference listing.  The reference
  lives beside the checkout in ../shared/reference; these checks are skipped without it.
* Every module in yang/*.yang passes `pyang --strict` and loads in yanglint.
* Every example in yang/examples/ (valid-<module>-<what>.xml|json, invalid-...) is checked with
  yanglint against all modules of yang/: valid ones must load, invalid ones must fail with the data
  path and message recorded in yang/examples/expected-errors.tsv.  The ETSI examples are validated against a copy of
  etsi-qkd-sdn-node whose `when` conditions compare qkdl_type with the qualified identity
  ('etsi-qkdn-types:PHYS'): the published conditions name it unprefixed, so a strict validator
  rejects every phys_*/virt_* leaf.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
YANG = ROOT / "yang"
EXAMPLES = YANG / "examples"
EXPECTED_ERRORS = EXAMPLES / "expected-errors.tsv"
FACTS_SCRIPT = ROOT / "scripts" / "yang_facts.py"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
PYANG = [sys.executable, "-m", "pyang"]
YANGLINT = shutil.which("yanglint")
TIMEOUT = 120

# module -> (reference directory, stem of the reference files)
REFERENCE_MODULES = {
    "etsi-qkd-sdn-node": "etsi-qkd-015",
    "optical-switch": "optical-switch",
}
IDENTITIES_MODULE = "etsi-qkd-node-types"
IDENTITIES_REFERENCE = ("etsi-qkd-015", "etsi-qkd-node-types.identities.txt")

# The published `when` expressions (kept as is in yang/) and their qualified form.
ETSI_MODULE = "etsi-qkd-sdn-node"
ETSI_WHEN_FIXES = {
    "when \"qkdl_type = 'VIRT'\"": "when \"qkdl_type = 'etsi-qkdn-types:VIRT'\"",
    "when \"qkdl_type = 'PHYS'\"": "when \"qkdl_type = 'etsi-qkdn-types:PHYS'\"",
    "when \"../qkdl_type = 'PHYS'\"": "when \"../qkdl_type = 'etsi-qkdn-types:PHYS'\"",
}

LOCATION_RE = re.compile(r'\((?:Data location|Schema location|Path) "((?:[^"\\]|\\.)*)"')

YANG_MODULES = sorted(p.stem for p in YANG.glob("*.yang"))
EXAMPLE_FILES = sorted(
    p.name
    for p in EXAMPLES.glob("*")
    if p.suffix in (".xml", ".json") and p.name.startswith(("valid-", "invalid-"))
)


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)


def module_file(name: str) -> Path:
    return YANG / f"{name}.yang"


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(
            f"../shared/reference is absent: {REFERENCE} not found (the published-schema facts "
            "live beside the checkout; nothing to compare against)"
        )
    return REFERENCE


@pytest.fixture(scope="module")
def pyang_results():
    """`pyang --strict -f tree -p yang` of a module, run once per module and cached."""
    cache: dict[str, subprocess.CompletedProcess] = {}

    def get(name: str) -> subprocess.CompletedProcess:
        if name not in cache:
            cache[name] = run([*PYANG, "--strict", "-f", "tree", "-p", str(YANG), str(module_file(name))])
        return cache[name]

    return get


@pytest.fixture(scope="module")
def yang_facts():
    spec = importlib.util.spec_from_file_location("yang_facts", FACTS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loaded_modules(yang_facts):
    """pyang module statements loaded through scripts/yang_facts.py, once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = yang_facts.load_module(module_file(name), [str(YANG)])
        return cache[name]

    return get


@pytest.fixture(scope="module")
def fixed_etsi_dir(tmp_path_factory) -> Path:
    """A copy of etsi-qkd-sdn-node whose when conditions use the qualified identity names."""
    text = module_file(ETSI_MODULE).read_text(encoding="utf-8")
    for published, fixed in ETSI_WHEN_FIXES.items():
        assert published in text, f"published when expression {published} missing from {ETSI_MODULE}.yang"
        text = text.replace(published, fixed)
    directory = tmp_path_factory.mktemp("fixed-when")
    (directory / f"{ETSI_MODULE}.yang").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def expected_errors() -> dict[str, tuple[str, str]]:
    entries: dict[str, tuple[str, str]] = {}
    if EXPECTED_ERRORS.exists():
        for line in EXPECTED_ERRORS.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) >= 3:
                entries[fields[0]] = (fields[1], fields[2])
    return entries


# ----------------------------------------------------------------------------------------------
# published schemas


@pytest.mark.parametrize("name", sorted(REFERENCE_MODULES))
def test_tree_matches_reference(name, reference, pyang_results):
    expected = (reference / REFERENCE_MODULES[name] / f"{name}.tree.txt").read_text(encoding="utf-8")
    result = pyang_results(name)
    assert result.returncode == 0, result.stderr
    if result.stdout != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                result.stdout.splitlines(keepends=True),
                fromfile=f"reference/{name}.tree.txt",
                tofile=f"pyang -f tree yang/{name}.yang",
            )
        )
        pytest.fail(f"pyang tree of yang/{name}.yang differs from the reference:\n{diff}")


def _by_path(lines):
    table: dict[str, list[str]] = {}
    for line in lines:
        table.setdefault(line.split("\t", 1)[0], []).append(line)
    return table


@pytest.mark.parametrize("name", sorted(REFERENCE_MODULES))
def test_facts_match_reference(name, reference, loaded_modules, yang_facts):
    ref_lines = [
        line
        for line in (reference / REFERENCE_MODULES[name] / f"{name}.facts.tsv")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip()
    ]
    ours = yang_facts.facts_lines(loaded_modules(name))
    missing = [line for line in ref_lines if line not in set(ours)]
    extra = [line for line in ours if line not in set(ref_lines)]
    if missing or extra:
        ours_by_path = _by_path(extra)
        report = []
        for line in missing:
            path = line.split("\t", 1)[0]
            report.append(f"- reference: {line!r}")
            for other in ours_by_path.pop(path, []):
                report.append(f"+ ours:      {other!r}")
        for lines in ours_by_path.values():
            report.extend(f"+ ours only: {line!r}" for line in lines)
        pytest.fail(
            f"facts of yang/{name}.yang differ from the reference "
            f"({len(missing)} reference lines not reproduced, {len(extra)} lines of ours not in it):\n"
            + "\n".join(report)
        )


def _parse_identities(lines):
    header = lines[0] if lines and lines[0].startswith("#") else ""
    identities: dict[str, set[str]] = {}
    typedefs: dict[str, str] = {}
    for line in lines:
        if line.startswith("identity "):
            root, _, derived = line[len("identity "):].partition(":")
            identities[root.strip()] = {d.strip() for d in derived.split(",") if d.strip()}
        elif line.startswith("typedef "):
            tname, _, definition = line[len("typedef "):].partition(":")
            typedefs[tname.strip()] = " ".join(definition.split())
    return header, identities, typedefs


def test_identities_and_typedefs_match_reference(reference, loaded_modules, yang_facts):
    ref_dir, ref_file = IDENTITIES_REFERENCE
    expected = _parse_identities((reference / ref_dir / ref_file).read_text(encoding="utf-8").splitlines())
    ours = _parse_identities(yang_facts.identities_lines(loaded_modules(IDENTITIES_MODULE)))
    assert ours[0] == expected[0], "module name, namespace, prefix or revision differ"
    assert ours[1] == expected[1], "identities differ"
    assert ours[2] == expected[2], "typedefs differ"


# ----------------------------------------------------------------------------------------------
# all modules


@pytest.mark.parametrize("name", YANG_MODULES)
def test_pyang_strict(name, pyang_results):
    result = pyang_results(name)
    errors = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert result.returncode == 0 and not errors, f"pyang --strict -p yang yang/{name}.yang:\n{result.stderr}"


@pytest.mark.skipif(YANGLINT is None, reason="yanglint is not installed")
@pytest.mark.parametrize("name", YANG_MODULES)
def test_yanglint_loads(name):
    result = run([YANGLINT, "-p", str(YANG), str(module_file(name))])
    assert result.returncode == 0, f"yanglint -p yang yang/{name}.yang:\n{result.stderr}"


# ----------------------------------------------------------------------------------------------
# examples


def example_module(file_name: str) -> str:
    """The module named in valid-<module>-<what>.xml: the longest module name that fits."""
    stem = file_name.split("-", 1)[1]
    candidates = [m for m in YANG_MODULES if stem.startswith(m + "-")]
    assert candidates, f"{file_name}: no module yang/<module>.yang matches valid|invalid-<module>-<what>"
    return max(candidates, key=len)


IMPORT_RE = re.compile(r'\bimport\s+"?([\w.-]+)"?\s*\{[^}]*?\bprefix\s+"?([\w.-]+)"?', re.S)
TARGET_RE = re.compile(r'\b(?:augment|deviation)\s+"?/([\w.-]+):')


def _module_links(name: str) -> tuple[dict[str, str], set[str]]:
    """(prefix -> imported module, modules whose schema this one augments or deviates)."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", module_file(name).read_text(encoding="utf-8"), flags=re.S)
    imports = {prefix: module for module, prefix in IMPORT_RE.findall(text)}
    return imports, {imports[p] for p in TARGET_RE.findall(text) if p in imports}


def example_schema(name: str) -> list[str]:
    """The yang/ modules to implement for an example of module `name`: the module, the yang/ modules
    it imports (so that their identities and leafref targets are implemented) and the yang/ modules
    that augment or deviate any of these (e.g. qstrata-optical-switch for optical-switch), to a
    fixed point."""
    links = {m: _module_links(m) for m in YANG_MODULES}
    schema = {name}
    while True:
        grown = set(schema)
        for module in schema:
            grown |= {m for m in links[module][0].values() if m in links}
        grown |= {m for m, (_, targets) in links.items() if targets & schema}
        if grown == schema:
            return sorted(schema)
        schema = grown


@pytest.mark.skipif(YANGLINT is None, reason="yanglint is not installed")
@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_example(file_name, fixed_etsi_dir, expected_errors):
    modules = example_schema(example_module(file_name))
    files = [fixed_etsi_dir / f"{m}.yang" if m == ETSI_MODULE else module_file(m) for m in modules]
    search = ["-p", str(fixed_etsi_dir), "-p", str(YANG)]
    result = run([YANGLINT, *search, *map(str, files), str(EXAMPLES / file_name)])
    output = result.stdout + result.stderr
    if file_name.startswith("valid-"):
        assert result.returncode == 0, f"{file_name} should be valid:\n{output}"
        return
    assert result.returncode != 0, f"{file_name} should be rejected by yanglint but loads"
    assert file_name in expected_errors, (
        f"{file_name} has no line in yang/examples/expected-errors.tsv "
        "(file<TAB>data path<TAB>message substring)"
    )
    path, message = expected_errors[file_name]
    locations = LOCATION_RE.findall(output)
    assert path in locations, f"{file_name}: expected error at {path!r}, yanglint reported {locations}:\n{output}"
    assert message in output, f"{file_name}: expected {message!r} in the error:\n{output}"
