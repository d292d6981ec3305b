"""Agent processes for black-box tests: `qstrata agent` on 127.0.0.1, started, waited for, stopped.

A plain module (tests/ is on sys.path), so any test can import it by name: importing these
helpers `from conftest` resolved to whichever conftest.py pytest had loaded first under that
name (tests/collectors/ has one too), and collection failed in a whole-suite run.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from polling import wait_until

QSTRATA = Path(sys.executable).with_name("qstrata")
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (the kernel picked it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> int | None:
    """SIGTERM, wait up to `timeout` s, then SIGKILL: a process a test started never outlives it."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


class AgentError(RuntimeError):
    """The agent did not come up (or went down); the message carries its log."""


class AgentProcess:
    """A `qstrata agent` subprocess. Its output goes to ``log_path`` (appended across restarts)."""

    def __init__(self, kind: str, name: str, state_dir: Path, *, host: str = HOST, port: int | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.name = name
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = tuple(extra_args)
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    # -------------------------------------------------------------- life cycle
    @property
    def command(self) -> list[str]:
        return [str(QSTRATA), "agent", "--kind", self.kind, "--name", self.name, "--state-dir", str(self.state_dir),
                "--listen", self.host, "--netconf-port", str(self.port), *self.extra_args]

    def start(self, timeout: float = START_TIMEOUT) -> AgentProcess:
        if self.running:
            raise AgentError(f"agent {self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"---- start #{self.starts + 1}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.starts += 1
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the port accepts connections and credentials.json exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AgentError(f"agent {self.name} exited with {self.process.returncode} while starting\n"
                                 f"{self.log_text()}")
            if (self.state_dir / "credentials.json").exists() and port_open(self.host, self.port):
                return
            time.sleep(0.02)
        self.kill()
        raise AgentError(f"agent {self.name} did not listen on {self.host}:{self.port} within {timeout:g} s\n"
                         f"{self.log_text()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._wait_port_closed()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (a crash)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
        self._wait_port_closed()

    def restart(self, *, kill: bool = False, timeout: float = START_TIMEOUT) -> AgentProcess:
        """Stop (or SIGKILL) and start again on the same state dir and port."""
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def _wait_port_closed(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.host, self.port, 0.1) and time.monotonic() < deadline:
            time.sleep(0.02)

    # -------------------------------------------------------------- facts
    @property
    def credentials(self) -> dict[str, str]:
        """{"username", "password"} of the bootstrap admin (STATE_DIR/credentials.json)."""
        return json.loads((self.state_dir / "credentials.json").read_text())

    @property
    def datastore_dir(self) -> Path:
        return self.state_dir / "datastore"

    def log_text(self, tail: int = 200) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-tail:])

    def __repr__(self) -> str:
        return f"<AgentProcess {self.kind}/{self.name} {self.host}:{self.port} pid={self.process and self.process.pid}>"


class AgentFactory:
    """``factory(kind, name, **kw)`` starts an agent in a fresh state dir under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.agents: list[AgentProcess] = []

    def __call__(self, kind: str, name: str, *, twin: bool = True, state_dir: Path | None = None,
                 start: bool = True, extra_args: tuple[str, ...] = ()) -> AgentProcess:
        """`twin=False` serves an empty device (--no-twin): the datastore alone, fully deterministic."""
        if not twin:
            extra_args = ("--no-twin", *extra_args)
        if state_dir is None:
            state_dir = self.base / f"{kind}-{name}-{len(self.agents)}"
        agent = AgentProcess(kind, name, state_dir, extra_args=extra_args)
        self.agents.append(agent)
        if start:
            agent.start()
        return agent

    def close(self) -> None:
        for agent in self.agents:
            with contextlib.suppress(Exception):
                agent.stop()


@contextlib.contextmanager
def restconf_agent(state_dir: Path, *extra_args: str) -> Iterator[AgentProcess]:
    """A QKD agent `alice` that serves RESTCONF as well, its base URL in ``.restconf``, for the
    block; the RESTCONF tests that drive it from outside (conform, TeraFlowSDN's driver) share it."""
    port = free_port()
    agent = AgentProcess("qkd", "alice", state_dir, extra_args=("--restconf-port", str(port), *extra_args))
    agent.start()
    try:
        if not wait_port(port):
            raise AgentError(f"agent alice does not serve RESTCONF on {HOST}:{port}\n{agent.log_text()}")
        # the agent names its RESTCONF URL in credentials.json just after its port opens
        if not wait_until(lambda: "restconf" in agent.credentials, START_TIMEOUT, 0.02):
            raise AgentError(f"agent alice never named its RESTCONF URL in credentials.json\n{agent.log_text()}")
        agent.restconf = f"https://{HOST}:{port}"
        yield agent
    finally:
        agent.stop()


def wait_port(port: int, host: str = HOST, timeout: float = START_TIMEOUT, proc: subprocess.Popen | None = None) -> bool:
    """Whether `host:port` accepts connections within `timeout` s (False as soon as `proc`, the
    server, has exited)."""
    return bool(wait_until(lambda: port_open(host, port) or (proc is not None and proc.poll() is not None), timeout,
                           0.02)) and port_open(host, port)
