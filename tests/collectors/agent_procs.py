"""Real `qstrata agent` processes with gNMI for the collector tests: started on a fixed free port
(so a restart comes back where the collector looks), killed with SIGKILL, restarted."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent_processes import HOST, free_port, stop_process

QSTRATA = Path(sys.executable).with_name("qstrata")


class AgentProcess:
    def __init__(self, workdir: Path, name: str, kind: str = "memory", *, insecure: bool = False) -> None:
        self.name = name
        self.kind = kind
        self.insecure = insecure
        self.state_dir = workdir / name
        self.port = free_port()
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def credentials(self) -> Path:
        return self.state_dir / "credentials.json"

    def start(self, wait: bool = True) -> AgentProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._mark = self.log.stat().st_size if self.log.exists() else 0
        args = [str(QSTRATA), "agent", "--kind", self.kind, "--name", self.name, "--state-dir", str(self.state_dir),
                "--netconf-port", "0", "--gnmi-port", str(self.port)] + (["--gnmi-insecure"] if self.insecure else [])
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Until the agent says it serves gNMI; returns time.monotonic() then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[self._mark:].decode(errors="replace")
            if re.search(rf"gNMI on {re.escape(HOST)}:{self.port}", text):
                return time.monotonic()
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"agent {self.name} not serving gNMI after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, 10)

    def target_yaml(self, interval: str = "1s", **extra: str) -> str:
        """One `targets:` entry collecting this agent's whole QFS node."""
        fields = {"name": self.name, "address": f"{HOST}:{self.port}", "kind": self.kind,
                  "credentials-file": str(self.credentials), **extra}
        if self.insecure:
            fields["insecure"] = "true"
        body = ", ".join(f"{k}: {v}" if v in ("true", "false") else f"{k}: '{v}'" for k, v in fields.items())
        return (f"  - {{{body}, subscriptions: [{{paths: [/qstrata-qfs:qfs-node], mode: sample, "
                f"sample-interval: {interval}}}]}}\n")
