"""`qstrata conform --restconf URL` as a user runs it, against one agent process with its twin:
every RC- check passes (hostile ones included), the report carries the evidence, and mistakes on
the command line are one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from agent_processes import free_port, restconf_agent

QSTRATA = Path(sys.executable).with_name("qstrata")
KNOWN_FAILS_ON_OURS: dict[str, str] = {}
"""Server defects this kit finds on ours, each with the start of the reason it fails with: none
now (every RC- check passes on our agent). When a new one is found, list it here and fix it."""


def conform(*args: str, cwd: Path | None = None, timeout: float = 240) -> tuple[int, str, str]:
    proc = subprocess.run([str(QSTRATA), "conform", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    with restconf_agent(tmp_path_factory.mktemp("rc-conform") / "alice") as agent:
        yield agent


def test_every_rc_check_passes_on_our_agent(alice, tmp_path):
    creds = alice.state_dir / "credentials.json"
    out = tmp_path / "rc.json"
    code, stdout, stderr = conform("--restconf", alice.restconf, "--credentials", str(creds), "--hostile",
                                   "--report", str(out), "--report", str(tmp_path / "rc.html"))
    report = json.loads(out.read_text())
    got = {r["id"]: r for r in report["results"]}
    assert got and all(k.startswith("RC-") for k in got), "a RESTCONF-only run runs RC- checks only"
    bad = {k: (r["verdict"], r["reason"]) for k, r in got.items()
           if r["verdict"] != "pass" and not (k in KNOWN_FAILS_ON_OURS and r["reason"].startswith(KNOWN_FAILS_ON_OURS[k]))}
    assert not bad and code == (1 if KNOWN_FAILS_ON_OURS else 0), stdout + stderr
    assert all(got[k]["verdict"] == "fail" for k in KNOWN_FAILS_ON_OURS), "fixed: remove it from KNOWN_FAILS_ON_OURS"
    assert {"RC-ROOT-001", "RC-YPATCH-002", "RC-ETAG-001", "RC-STREAM-001", "RC-HOST-002"} <= set(got)
    assert report["targets"]["restconf"] == alice.restconf and report["device"]["restconf_root"] == "/restconf"
    etag = got["RC-ETAG-001"]["evidence"]["exchanges"]
    conditional = [e for e in etag if "If-None-Match" in e["sent"]]
    assert conditional and conditional[0]["received"].startswith("HTTP 304")


def test_the_run_leaves_no_test_entry(alice):
    import requests

    creds = alice.credentials
    r = requests.get(alice.restconf + "/restconf/data/etsi-qkd-sdn-node:qkd_node/qkd_links", verify=False,
                     auth=(creds["username"], creds["password"]), headers={"Accept": "application/yang-data+json"})
    assert r.status_code in (200, 404)
    from qstrata.agents.conform.profiles import test_id
    assert not any(test_id(n) in r.text for n in (1, 2, 3))


def test_command_line_mistakes_are_one_line(tmp_path):
    code, _, stderr = conform("--restconf", "ftp://127.0.0.1:1", "--user", "u", "--password", "p")
    assert code == 2 and stderr.strip() == "qstrata conform: --restconf ftp://127.0.0.1:1: expected a URL, " \
                                           "https://HOST:PORT", stderr
    code, _, stderr = conform("--restconf", f"https://127.0.0.1:{free_port()}", "--user", "u", "--password", "p",
                              "--restconf-insecure")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "unreachable" in stderr, stderr
    code, _, stderr = conform("--restconf", "https://127.0.0.1:1")
    assert code == 2 and stderr.strip() == "qstrata conform: give --user (or --credentials FILE)", stderr
