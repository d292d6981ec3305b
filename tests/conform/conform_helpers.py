"""Running `qstrata conform` as a user does (a subprocess), and Debian's netconfd behind a
private OpenSSH on loopback, for the conformance tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent_processes import free_port, wait_port  # noqa: F401 (test_conform.py takes free_port from here)

QSTRATA = Path(sys.executable).with_name("qstrata")
ROOT = Path(__file__).resolve().parents[2]


def conform(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    proc = subprocess.run([str(QSTRATA), "conform", *args], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def results(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(path.read_text())["results"]}


def netconfd_missing() -> str | None:
    for tool in ("/usr/sbin/netconfd", "/usr/sbin/sshd", "/usr/sbin/netconf-subsystem"):
        if not Path(tool).exists():
            return f"{tool} is not installed (scripts/dev.sh setup installs netconfd and openssh-server)"
    if os.geteuid() != 0:
        return "netconfd's private sshd logs in as root, so the test runs as root (CI does)"
    return None


README_SECTION = "### Against Debian's netconfd, by hand"


def readme_netconfd_steps(directory: Path, port: int) -> tuple[str, str, str]:
    """The README's netconfd steps (its ```sh block in README_SECTION) for `directory` and `port`
    instead of /tmp/netconfd and 8830: the set-up, the `qstrata conform` line and the stop line."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index(README_SECTION):].split("```sh\n", 1)[1].split("```", 1)[0]
    block = block.replace("D=/tmp/netconfd", f"D={directory}").replace("8830", str(port))
    setup, rest = block.split("\n.venv/bin/qstrata conform", 1)
    run, stop = rest.rstrip().rsplit("\n\n", 1)
    return setup, ".venv/bin/qstrata conform" + run, f"D={directory}; " + stop.split("#")[0].strip()


class Netconfd:
    """yuma123 netconfd serving the ETSI GS QKD 015 modules from yang/, reached through a private
    sshd (`Subsystem netconf netconf-subsystem`) on a loopback port with throw-away keys, started
    and stopped by the README's own steps (so they are run by every test that uses it).

    netconfd refuses a top-level `mandatory` node (qkd_node/qkdn_id is one), so it is given the
    module with that one statement removed: exactly what the conformance report then finds when
    it compares get-schema node by node."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "netconfd"
        self.port = free_port()
        self.setup, self.conform_line, self.stop_line = readme_netconfd_steps(self.dir, self.port)

    def start(self) -> Netconfd:
        done = subprocess.run(["bash", "-e", "-c", self.setup], cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or not wait_port(self.port):
            self.stop()
            log = self.log.read_text()[-400:] if self.log.exists() else ""
            raise RuntimeError(f"the README's netconfd steps failed ({done.returncode}): {done.stderr[-400:]} {log}")
        return self

    @property
    def key(self) -> str:
        return str(self.dir / "client")

    @property
    def log(self) -> Path:
        return self.dir / "netconfd.log"

    def stop(self) -> None:
        pids = [int(f.read_text()) for f in (self.dir / "sshd.pid", self.dir / "netconfd.pid") if f.exists()]
        subprocess.run(["bash", "-c", self.stop_line], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        for pid in pids:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
