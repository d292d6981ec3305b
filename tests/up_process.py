"""`qstrata up` in the background for end-to-end tests, started as a user starts it.

A plain module (tests/ is on sys.path): the tests that need a whole network start it here and
stop it with `agent_processes.stop_process`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

QSTRATA = Path(sys.executable).with_name("qstrata")
READY = ("Ctrl-C stops", "running for")
"""How `qstrata up` ends its start-up summary (interactive, or with --duration)."""


def start_up(state: Path, *args: str, cwd: Path | None = None, timeout: float = 90.0) -> tuple[subprocess.Popen, list[str]]:
    """`qstrata up --state-dir STATE ARGS` (from `cwd`, where a relative `state` is); returns once it
    printed its start-up summary, with the lines it printed. Fails the test (after killing it) when
    it exits or stays silent for `timeout` s first."""
    proc = subprocess.Popen([str(QSTRATA), "up", "--state-dir", str(state), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=cwd)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(READY):
            return proc, lines
    proc.kill()
    proc.wait(10)
    pytest.fail("qstrata up did not start:\n" + "".join(lines))
