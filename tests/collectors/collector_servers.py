"""Real servers for the collector tests, on 127.0.0.1, started and stopped by the tests:
Debian's `nats-server` (JetStream, a temporary store directory) and `prometheus` (a generated
configuration scraping the collector), plus a tiny HTTP server that records webhook POSTs."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agent_processes import HOST, free_port, stop_process
from agent_processes import wait_port as port_ready


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Until the server `proc` listens on `port`; RuntimeError with its log when it exits or stays deaf."""
    if port_ready(port, HOST, timeout, proc):
        return
    what = f"server exited with {proc.returncode}" if proc is not None and proc.poll() is not None else \
        f"nothing listens on {HOST}:{port} after {timeout} s"
    raise RuntimeError(f"{what}:\n{log.read_text() if log else ''}")


class NatsServer:
    """`nats-server -js` on a free port; restart() keeps the port and the JetStream store."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.workdir = workdir
        self.store_dir = workdir / "jetstream"
        self.port = free_port()
        self.log = workdir / "nats.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    def start(self) -> NatsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-js", "-a", HOST, "-p", str(self.port), "-sd", str(self.store_dir)],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc, log=self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class PrometheusServer:
    """Debian's `prometheus` scraping the given targets every `interval` seconds."""

    def __init__(self, workdir: Path, targets: list[str], interval: float = 1.0) -> None:
        self.binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / "prometheus.log"
        self.targets = targets
        self.interval = interval
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": f"{self.interval:g}s", "evaluation_interval": f"{self.interval:g}s"},
            "scrape_configs": [{"job_name": "qstrata", "scrape_interval": f"{self.interval:g}s",
                                "scrape_timeout": f"{self.interval:g}s", "static_configs": [{"targets": self.targets}]}],
        }))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                                          f"--web.listen-address={HOST}:{self.port}"],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, timeout=30, proc=self.proc, log=self.log)
        deadline = time.monotonic() + 30  # the port opens before the TSDB is ready (503 until then)
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after 30 s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def api(self, endpoint: str, **params: str) -> Any:
        url = f"http://{HOST}:{self.port}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def wait_for(self, expr: str, predicate=bool, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"{expr}: still {result} after {timeout} s\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, 15)


class WebhookServer:
    """Records the JSON bodies POSTed to it; `status` is what it answers."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], Any]] = []
        self.status = 200
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if outer.delay:
                    time.sleep(outer.delay)
                outer.posts.append((self.path, dict(self.headers), json.loads(body or b"null")))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
