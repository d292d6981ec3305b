"""The `qstrata` console script, run as a subprocess the way operators and CI run it."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qstrata.bindings.schema import YANG_DIR, module_files

QSTRATA = Path(sys.executable).with_name("qstrata")
EXAMPLES = YANG_DIR / "examples"
VALID = sorted(p for p in EXAMPLES.glob("valid-*") if p.suffix in (".xml", ".json"))
INVALID = sorted(p for p in EXAMPLES.glob("invalid-*") if p.suffix in (".xml", ".json"))
REFERENCE_TREE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "etsi-qkd-015" / "etsi-qkd-sdn-node.tree.txt"
NS = "urn:etsi:qkd:yang:etsi-qkd-node"
NODE_ID = "00000000-0000-0000-0000-00000000000a"
TIME_LIMIT = 10.0  # seconds, generous for a loaded CI machine; a bad file takes ~0.1 s


def qstrata(*args: str | Path, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run([str(QSTRATA), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return proc, time.monotonic() - start


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_console_script_exists():
    assert QSTRATA.exists(), f"{QSTRATA} missing: pip install -e . into the venv"


def test_validate_valid_examples_exits_0():
    proc, _ = qstrata("validate", *VALID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _lines(proc.stdout) == [f"{p}: valid" for p in VALID]
    assert proc.stderr == ""
    quiet, _ = qstrata("validate", "-q", *VALID)
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_validate_invalid_examples_prints_one_line_per_error():
    proc, _ = qstrata("validate", *INVALID)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    by_file: dict[str, list[tuple[str, str]]] = {}
    for line in _lines(proc.stdout):
        file, where, message = line.split(": ", 2)
        assert where.startswith("/"), line
        assert message.strip(), line
        by_file.setdefault(file, []).append((where, message))
    assert sorted(by_file) == sorted(map(str, INVALID))
    # one error per line: the same error does not come twice
    for file, errors in by_file.items():
        assert len(errors) == len(set(errors)), file


def test_validate_mixed_files_reports_each_and_fails():
    proc, _ = qstrata("validate", VALID[0], INVALID[0])
    assert proc.returncode == 1
    assert f"{VALID[0]}: valid" in proc.stdout
    assert f"{INVALID[0]}: /" in proc.stdout


def _write_bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, substring of the one-line error)."""
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, data: bytes | str, expect: str) -> None:
        path = tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        files[name] = (path, expect)

    noise = random.Random(7).randbytes(4096)
    add("random.bin", b"\x00" + noise, "neither XML nor JSON")
    add("random.xml", noise, "UTF-8")
    add("random.json", b"{" + noise, "UTF-8")
    node = f'{{"etsi-qkd-sdn-node:qkd_node": {{"qkdn_id": "{NODE_ID}"}}}}'
    add("truncated.json", node[:-7], "JSON")
    add("trailing.json", node + ' {"x": 1} garbage', "JSON")
    add("deep.json", "[" * 100_000 + "]" * 100_000, "JSON")
    add("deep-restconf.json", '{"ietf-restconf:data": ' + "[" * 100_000, "JSON")
    add("deep-data.xml", '<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">' + "<a>" * 100_000, "XML")
    lol = "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' if i else '<!ENTITY lol0 "lol">' for i in range(10))
    add("billion-laughs.xml",
        f'<?xml version="1.0"?><!DOCTYPE qkd_node [{lol}]>'
        f'<qkd_node xmlns="{NS}"><qkdn_id>{NODE_ID}</qkdn_id><qkdn_location_id>&lol9;</qkdn_location_id></qkd_node>',
        "DTD")
    add("xxe.xml",
        '<?xml version="1.0"?><!DOCTYPE qkd_node [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f'<qkd_node xmlns="{NS}"><qkdn_id>{NODE_ID}</qkdn_id><qkdn_location_id>&xxe;</qkdn_location_id></qkd_node>',
        "DTD")
    add("dtd.xml",
        f'<?xml version="1.0"?>\n<!doctype qkd_node SYSTEM "qkd.dtd">\n<qkd_node xmlns="{NS}"><qkdn_id>{NODE_ID}</qkdn_id></qkd_node>',
        "DTD")
    add("undefined-entity.xml",
        f'<qkd_node xmlns="{NS}"><qkdn_id>{NODE_ID}</qkdn_id><qkdn_location_id>&nope;</qkdn_location_id></qkd_node>',
        "not well-formed XML: Entity 'nope' not defined")
    add("latin-1.xml",
        f'<qkd_node xmlns="{NS}"><qkdn_id>{NODE_ID}</qkdn_id><qkdn_location_id>caf'.encode() + b"\xe9"
        + b"</qkdn_location_id></qkd_node>",
        "UTF-8")
    add("not-xml.xml", "<<<>>>", "/")
    big = tmp / "big.xml"
    with big.open("wb") as fh:  # a valid qkd_node padded with whitespace to 100 MB
        fh.write(f'<qkd_node xmlns="{NS}"><qkdn_id>{NODE_ID}</qkdn_id>'.encode())
        chunk = b" " * (1 << 20)
        for _ in range(100):
            fh.write(chunk)
        fh.write(b"</qkd_node>")
    files["big.xml"] = (big, "limit")
    files["missing.xml"] = (tmp / "missing.xml", "No such file")
    (tmp / "a-directory.xml").mkdir()
    files["a-directory.xml"] = (tmp / "a-directory.xml", "directory")
    return files


BAD_NAMES = ["random.bin", "random.xml", "random.json", "truncated.json", "trailing.json", "deep.json",
             "deep-restconf.json", "deep-data.xml",
             "billion-laughs.xml", "xxe.xml", "dtd.xml", "undefined-entity.xml", "latin-1.xml", "not-xml.xml",
             "big.xml", "missing.xml", "a-directory.xml"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Iterator[dict[str, tuple[Path, str]]]:
    files = _write_bad_files(tmp_path_factory.mktemp("bad"))
    assert sorted(files) == sorted(BAD_NAMES)
    yield files
    files["big.xml"][0].unlink()  # pytest keeps the last runs' tmp dirs: do not keep 100 MB each


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_file_gives_a_clean_one_line_error(bad_files, name):
    path, expect = bad_files[name]
    proc, elapsed = qstrata("validate", path, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output
    lines = _lines(output)
    assert len(lines) == 1, output[:2000]
    assert lines[0].startswith(f"{path}: ")
    assert expect in lines[0]
    assert len(lines[0]) < 500
    assert "root:" not in output  # nothing of /etc/passwd
    assert elapsed < TIME_LIMIT, f"{name} took {elapsed:.1f} s"


def test_big_file_under_a_raised_limit_is_read(bad_files):
    path, _ = bad_files["big.xml"]
    proc, _ = qstrata("validate", "--max-size", str(path.stat().st_size), path)
    assert proc.returncode == 0, proc.stdout[:500] + proc.stderr[:500]


def test_small_limit_is_enforced():
    proc, _ = qstrata("validate", "--max-size", "10", VALID[0])
    assert proc.returncode == 1 and "10 byte limit" in proc.stdout


def test_usage_errors_exit_2():
    proc, _ = qstrata("validate")
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc, _ = qstrata("no-such-command")
    assert proc.returncode == 2


def test_yang_tree_matches_the_reference():
    if not REFERENCE_TREE.exists():
        pytest.skip(f"reference tree not available ({REFERENCE_TREE} is absent: shared/ not checked out beside the repo)")
    proc, _ = qstrata("yang", "tree", "etsi-qkd-sdn-node")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == REFERENCE_TREE.read_text(encoding="utf-8")


def test_yang_tree_of_all_modules():
    proc, _ = qstrata("yang", "tree")
    assert proc.returncode == 0, proc.stderr
    printed = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("module: ")}
    # pyang prints no tree for a module without data nodes (etsi-qkd-node-types: identities only),
    # and shows a module that only augments another printed module inside that module's tree
    texts = {name: (YANG_DIR / f"{name}.yang").read_text() for name in module_files()}
    with_nodes = {name for name, text in texts.items() if "container " in text and "augment " not in text}
    augment_only = {name for name, text in texts.items() if "augment " in text and name not in printed}
    assert with_nodes <= printed <= set(module_files())
    assert "etsi-qkd-sdn-node" in printed
    for name in augment_only:
        prefix = texts[name].split("prefix", 1)[1].split(";", 1)[0].strip().strip('"')
        assert f" {prefix}:" in proc.stdout, f"{name}'s augment is not in the tree"


def test_yang_tree_unknown_module_exits_2():
    proc, _ = qstrata("yang", "tree", "no-such-module")
    assert proc.returncode == 2
    assert "unknown module no-such-module" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_yang_list_lists_every_module():
    proc, _ = qstrata("yang", "list")
    assert proc.returncode == 0, proc.stderr
    listed = {}
    for line in _lines(proc.stdout):
        name_rev, namespace = line.split("\t")
        name, rev = name_rev.split("@")
        listed[name] = (rev, namespace)
    assert sorted(listed) == sorted(p.stem for p in YANG_DIR.glob("*.yang"))
    assert listed["etsi-qkd-sdn-node"] == ("2022-01-30", NS)


def test_cli_does_not_need_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(QSTRATA), "validate", str(VALID[0])], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
