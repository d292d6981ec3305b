"""Running `qstrata conform` as a user does (a subprocess), and Debian's netconfd behind a
private OpenSSH on loopback, for the conformance tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

QSTRATA = Path(sys.executable).with_name("qstrata")
ROOT = Path(__file__).resolve().parents[2]
BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"


def conform(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    proc = subprocess.run([str(QSTRATA), "conform", *args], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def results(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(path.read_text())["results"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def netconfd_missing() -> str | None:
    for tool in ("/usr/sbin/netconfd", "/usr/sbin/sshd", "/usr/sbin/netconf-subsystem"):
        if not Path(tool).exists():
            return f"{tool} is not installed (scripts/dev.sh setup installs netconfd and openssh-server)"
    if os.geteuid() != 0:
        return "netconfd's private sshd logs in as root, so the test runs as root (CI does)"
    return None


class Netconfd:
    """yuma123 netconfd serving the ETSI GS QKD 015 modules from yang/, reached through a private
    sshd (`Subsystem netconf netconf-subsystem`) on a loopback port with throw-away keys.

    netconfd refuses a top-level `mandatory` node (qkd_node/qkdn_id is one), so it is given the
    module with that one statement removed: exactly what the conformance report then finds when
    it compares get-schema node by node."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "netconfd"
        self.dir.mkdir()
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []

    def start(self) -> Netconfd:
        d, port = self.dir, self.port
        mods = d / "modules"
        mods.mkdir()
        etsi = (ROOT / "yang" / "etsi-qkd-sdn-node.yang").read_text()
        (mods / "etsi-qkd-sdn-node.yang").write_text(etsi.replace("mandatory true;", "", 1))
        shutil.copy(ROOT / "yang" / "etsi-qkd-node-types.yang", mods)
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
        shutil.copy(d / "client.pub", d / "authorized_keys")
        sock = d / "ncxserver.sock"
        (d / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin yes\nPasswordAuthentication no\n"
            f"StrictModes no\nUsePAM no\n"
            f'Subsystem netconf "/usr/sbin/netconf-subsystem --ncxserver-sockname={port}@{sock}"\n')
        Path("/run/sshd").mkdir(exist_ok=True)
        (Path(os.path.expanduser("~root")) / ".yuma").mkdir(exist_ok=True)
        startup = d / "startup-cfg.xml"
        startup.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<config xmlns="{BASE}"/>\n')
        log = (d / "log.txt").open("w")
        self.procs.append(subprocess.Popen(
            ["/usr/sbin/netconfd", f"--modpath={mods}", f"--module={mods / 'etsi-qkd-node-types.yang'}",
             f"--module={mods / 'etsi-qkd-sdn-node.yang'}", "--target=running", f"--port={port}",
             f"--ncxserver-sockname={sock}", "--superuser=root", "--log-level=error", "--with-startup=false",
             "--access-control=off", f"--startup={startup}"], stdout=log, stderr=subprocess.STDOUT, cwd=d))
        deadline = time.monotonic() + 20
        while not sock.exists():
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("netconfd did not start: " + (d / "log.txt").read_text()[-400:])
            time.sleep(0.05)
        self.procs.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                                           stdout=log, stderr=subprocess.STDOUT))
        if not _wait_port(port):
            self.stop()
            raise RuntimeError("sshd did not start: " + (d / "log.txt").read_text()[-400:])
        return self

    @property
    def key(self) -> str:
        return str(self.dir / "client")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
