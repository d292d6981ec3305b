"""The README, executed: its console blocks, verbatim, in a copy of the repository, from its root.

Every ```console block of README.md is a promise to a newcomer: the lines that start with ``$ ``
are what they type, from the root of a fresh clone, with the relative paths as written. This
test takes those lines from README.md itself (never retyped here, so when the README changes the
test follows it) and runs them with bash in a scratch copy of the repository (the files git
knows, as a fresh clone has them; the README's own set-up makes the copy's `.venv`, from pip's
cache in about 15 s, so what runs is the copy, installed the way the README says):

* the main job (`bash scripts/dev.sh run`) in the background, as its own process group, until the
  collector's Prometheus endpoint shows a secret key rate above zero;
* then every other command, in order, while the network runs; each must exit with 0, or with the
  code its own comment states (``# ... exit 1 ...``);
* then Ctrl-C (SIGINT to the process group, as a terminal sends it): the network stops within a
  few seconds, with exit code 0, leaving no process behind.

A block the test cannot run says so right above it: ``<!-- not run by tests/e2e/test_readme.py:
why -->``. The commands a newcomer needs most must be among those run: run, keys, demo, query,
conform and validate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SKIP_MARK = "<!-- not run by tests/e2e/test_readme.py"
MAIN_JOB = re.compile(r"^bash scripts/dev\.sh run\b")
REQUIRED = {"run": MAIN_JOB, "demo": re.compile(r"\bqstrata demo\b"), "query": re.compile(r"\bqstrata query\b"),
            "conform": re.compile(r"\bqstrata conform\b"), "validate": re.compile(r"\bqstrata validate\b"),
            "keys": re.compile(r"\bqstrata keys\b")}
KEY_RATE = re.compile(r"^\S*secret_key_rate\S*(\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.M)
STOP_WITHIN = 10.0


@dataclass(frozen=True)
class Command:
    line: str
    """As typed: the text after ``$ `` (continuation lines joined)."""
    expect_exit: int
    where: int
    """README line number, for messages."""


def readme_commands(text: str) -> list[Command]:
    """The ``$ `` lines of every console block not marked as not run, in README order."""
    commands: list[Command] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        skipped = any(SKIP_MARK in lines[j] for j in range(max(0, i - 2), i))
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            if lines[i].startswith("$ ") and not skipped:
                start, command = i + 1, lines[i][2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                comment = command.split(" #", 1)[1] if " #" in command else ""
                code = re.search(r"\bexit (\d+)\b", comment)
                commands.append(Command(command.strip(), int(code.group(1)) if code else 0, start))
            i += 1
        i += 1
    return commands


def test_readme_commands_are_found():
    """The extraction itself: the newcomer's commands are there, the main job exactly once."""
    commands = readme_commands(README.read_text(encoding="utf-8"))
    for name, pattern in REQUIRED.items():
        assert any(pattern.search(c.line) for c in commands), f"README.md runs no `{name}` command in a console block"
    assert sum(bool(MAIN_JOB.search(c.line)) for c in commands) == 1


def test_readme_extraction_rules():
    text = "\n".join([
        "```console", "$ echo one   # prints one", "one", "$ false   # exit 1 when it fails", "```",
        SKIP_MARK + ": needs a lab -->", "```console", "$ needs-a-lab", "```",
        "```", "$ not a console block", "```",
        "```console", "$ printf '%s' \\", "  two", "```"])
    got = [(c.line, c.expect_exit) for c in readme_commands(text)]
    assert got == [("echo one   # prints one", 0), ("false   # exit 1 when it fails", 1), ("printf '%s'  two", 0)]


def scratch_copy(dest: Path) -> Path:
    """The repository as a fresh clone has it (files git knows, including ones not committed
    yet). No virtual environment: sharing this checkout's would let the copy's set-up reinstall
    it pointing at the copy."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree, not yet in git
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def key_rate_shown(prometheus: str) -> float:
    try:
        with urllib.request.urlopen(prometheus, timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return max((float(m.group(2)) for m in KEY_RATE.finditer(text)), default=0.0)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def check_output(command: Command, out: str) -> None:
    """What each kind of command must show besides its exit code."""
    if "qstrata keys status" in command.line:
        assert re.search(r"^stored_key_count +[0-9,]+ keys$", out, re.M), out
    elif "qstrata keys get " in command.line:
        assert re.search(r"^[0-9a-f-]{36}  [0-9a-f]{64}$", out, re.M), out
    elif "qstrata demo" in command.line:
        assert re.search(r"key rate [0-9.]+ -> [0-9.]+ Mb/s", out), out
    elif "qstrata query" in command.line and command.expect_exit == 0:
        assert re.search(r"QKD\s+\w{8}\s+alice\s+ACTIVE", out), out
    elif "qstrata conform" in command.line and command.expect_exit == 0:
        assert re.search(r"\b0 failed, \d+ not applicable, 0 errors", out), out
    elif "qstrata validate" in command.line:
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines, "validate printed nothing"
        if command.expect_exit == 0:
            assert all(line.endswith(": valid") for line in lines), out


@pytest.mark.timeout(900)
def test_readme_runs_as_written(tmp_path):
    commands = readme_commands(README.read_text(encoding="utf-8"))
    main_job = next(c for c in commands if MAIN_JOB.search(c.line))
    others = [c for c in commands if c is not main_job]
    repo = scratch_copy(tmp_path / "qstrata")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST"))}
    log = (tmp_path / "run.out").open("w")
    run = subprocess.Popen(["bash", "-c", main_job.line], cwd=repo, stdin=subprocess.DEVNULL, stdout=log,
                           stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        endpoints = repo / "state" / "up" / "endpoints.json"
        deadline = time.monotonic() + 300  # the README's set-up first: a virtual environment from pip's cache
        rate = 0.0
        while time.monotonic() < deadline and run.poll() is None:
            if endpoints.exists():
                prometheus = json.loads(endpoints.read_text())["collector"]["prometheus"]
                rate = key_rate_shown(prometheus)
                if rate > 0:
                    break
            time.sleep(1)
        output = (tmp_path / "run.out").read_text()
        assert run.poll() is None, f"README line {main_job.where}: `{main_job.line}` ended early:\n{output[-3000:]}"
        assert rate > 0, f"no secret key rate on the collector's Prometheus endpoint:\n{output[-3000:]}"
        for command in others:
            done = subprocess.run(["bash", "-c", command.line], cwd=repo, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, env=env, timeout=600)
            out = done.stdout + done.stderr
            assert done.returncode == command.expect_exit, (
                f"README line {command.where}: `{command.line}` exited {done.returncode}, "
                f"expected {command.expect_exit}:\n{out[-4000:]}")
            assert "Traceback" not in out, out
            check_output(command, out)
        assert run.poll() is None, "the network stopped while the other commands ran"
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            code = run.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Ctrl-C did not stop the network within {STOP_WITHIN:g} s")
        output = (tmp_path / "run.out").read_text()
        assert code == 0, output[-3000:]
        assert "Traceback" not in output, output
        deadline = time.monotonic() + 5
        while group_alive(run.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(run.pid), "processes of the network outlived Ctrl-C"
        assert not endpoints.exists(), "endpoints.json still lists a network that stopped"
    finally:
        if group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        log.close()
