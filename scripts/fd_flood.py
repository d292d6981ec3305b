"""File descriptors of a running `qstrata up` while N silent TCP connections (connect, send
nothing) are open to its dashboard: ``python scripts/fd_flood.py QSTRATA STATE_DIR [N]``.
Prints the process's open descriptors (/proc/PID/fd) before, 2 s after the flood, and after
the head bound (12 s, 20 s), and whether a request to the dashboard was answered meanwhile."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main(qstrata: str, state: Path, n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 100)), hard))
    proc = subprocess.Popen([qstrata, "up", "--state-dir", str(state), "--dashboard-port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while not (line := proc.stdout.readline()).startswith(("Ctrl-C stops", "running for")):
            if not line:
                raise SystemExit("qstrata up did not start")
        url = json.loads((state / "endpoints.json").read_text())["collector"]["dashboard"]
        host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
        time.sleep(2)
        before = fds(proc.pid)
        start = time.monotonic()
        socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(n)]
        print(f"{n} silent connections opened in {time.monotonic() - start:.1f} s", flush=True)
        row = {"before": before}
        for at in (2, 12, 20):
            time.sleep(max(0, start + at - time.monotonic()))
            row[f"+{at}s"] = fds(proc.pid)
            if at == 2:
                t = time.monotonic()
                with urllib.request.urlopen(url + "api/health", timeout=10) as r:
                    row["health"] = f"{r.status} in {time.monotonic() - t:.3f} s"
        print(json.dumps(row), flush=True)
        for s in socks:
            s.close()
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3000)
