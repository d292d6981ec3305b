"""The project as users get it: a wheel built from this checkout, installed with its dependencies
into a fresh virtual environment (no system site-packages), then `qstrata` from that environment:
yang list, validate, and an agent answering get-config over NETCONF. Skipped only when pip cannot
reach the package index (offline)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "yang" / "examples" / "valid-etsi-qkd-sdn-node-phys-virt-links.xml"
OFFLINE = re.compile(r"No matching distribution|Could not find a version|Failed to establish a new connection|"
                     r"Temporary failure in name resolution|Network is unreachable", re.I)

pytestmark = pytest.mark.timeout(600)

def _root_conftest():
    """tests/conftest.py by path: `import conftest` may find another suite's conftest first."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("qstrata_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AgentProcess = _root_conftest().AgentProcess
netconf_manager = _root_conftest().netconf_manager



def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    # PYTHONDONTWRITEBYTECODE (set on this machine) makes setuptools print "warning: byte-compiling
    # is disabled": a note about the environment, not the project, so builds run without it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=540, env=env, **kw)


def _setuptools_warnings(output: str) -> list[str]:
    """Warnings from the build backend (setuptools), not pip's notes about local index mirrors."""
    return [line for line in output.splitlines()
            if "warning" in line.lower() and not line.strip().startswith("WARNING: Location ")]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "dist"
    # -v: pip shows what setuptools prints (it hides the backend's output otherwise)
    build = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", str(ROOT), "-w", str(wheels)],
                 cwd=tmp)
    assert build.returncode == 0, build.stdout + build.stderr
    assert not _setuptools_warnings(build.stdout + build.stderr), build.stdout + build.stderr
    wheel = next(wheels.glob("qstrata-*.whl"))
    env = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(env)])
    assert made.returncode == 0, made.stderr
    python = env / "bin" / "python"
    assert "include-system-site-packages = false" in (env / "pyvenv.cfg").read_text()
    install = _run([str(python), "-m", "pip", "install", "-q", str(wheel), "ncclient"])
    output = install.stdout + install.stderr
    if install.returncode != 0 and OFFLINE.search(output):
        pytest.skip(f"pip cannot reach the package index: {output.strip().splitlines()[-1]}")
    assert install.returncode == 0, output
    assert not _setuptools_warnings(output), output
    return env


def test_the_installed_qstrata_lists_and_validates(venv):
    qstrata = str(venv / "bin" / "qstrata")
    listed = _run([qstrata, "yang", "list"])
    assert listed.returncode == 0, listed.stderr
    assert "etsi-qkd-sdn-node" in listed.stdout
    valid = _run([qstrata, "validate", str(EXAMPLE)])
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "Traceback" not in valid.stderr
    # and it is the wheel's code, not this checkout's
    where = _run([str(venv / "bin" / "python"), "-c", "import qstrata.agents, sys; print(qstrata.agents.__file__)"])
    assert str(venv) in where.stdout and str(ROOT / "agents") not in where.stdout


class WheelAgent(AgentProcess):
    def __init__(self, venv: Path, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.venv = venv

    @property
    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "qstrata"), *super().command[1:]]


def test_the_installed_agent_serves_netconf(venv, tmp_path):
    agent = WheelAgent(venv, "qkd", "alice", tmp_path / "alice").start()
    try:
        with netconf_manager(agent) as m:
            reply = m.get_config("running").data_xml
        assert "<qkdn_id>" in reply and "qkd_interface" in reply
    finally:
        agent.stop()
    assert "Traceback" not in agent.log_text()


def test_the_installed_collector_ships_the_dashboard_page(venv):
    """The page is package data: a collector installed from the wheel serves it without the checkout."""
    code = ("from qstrata.collectors.dashboard.server import _static_files; f = _static_files(); "
            "print(sorted(f)); assert {'index.html', 'app.js', 'style.css'} <= set(f)")
    result = _run([str(venv / "bin" / "python"), "-c", code])
    assert result.returncode == 0, result.stdout + result.stderr
