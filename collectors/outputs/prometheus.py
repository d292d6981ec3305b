"""Prometheus exposition endpoint (prometheus-client), named the way gnmic and Telegraf name gNMI data.

Name: ``PREFIX_`` + the path without keys, module prefixes dropped, joined by ``_``; list keys are
labels named after the key (`qstrata.collectors.naming`), plus ``source`` (the agent; the
collector's instance name for the collector's own agents/agent series). Numbers and booleans
(0/1) only: strings are in the store and on NATS. Counters and gauges follow the YANG type
(`qstrata.bindings.leafinfo`); counters get the ``_total`` suffix.

Freshness (gnmic issue #370): a value that does not change is exported at every scrape, without a
timestamp (Prometheus stamps it with the scrape time), so it never falls out of Prometheus'
lookback window just because the agent did not send it again. A series goes stale only when
its target is reported down (the series are then left out of the exposition and Prometheus
writes staleness markers) or when its leaf is deleted.

The endpoint is a threaded HTTP server: a scrape reads the latest values from the series registry
in its own thread, so a slow or stalled scraper never holds up ingestion; there is no per-output
queue to fill (`wants_batches = False`). The exposition (text format 0.0.4, as prometheus-client
writes it: labels sorted, values as Go prints them, gzip when asked) is streamed in chunks of
about 2,000 lines: prometheus-client's `generate_latest` built a sample object per series, then
every line, then the whole text, then its bytes -- about 65 MB at once for 200,000 series,
every scrape (now: the family index, 1.6 MB, and one chunk).
"""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from ..naming import sanitize

if TYPE_CHECKING:
    from ..model import Batch, Series
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.prometheus")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHUNK_LINES = 2000
"""Sample lines per chunk written to the scraper."""


class PrometheusOutput:
    name = "prometheus"
    wants_batches = False

    def __init__(self, host: str = "127.0.0.1", port: int = 9273, prefix: str = "qstrata") -> None:
        self.host = host
        self.port = port
        self.prefix = sanitize(prefix) if prefix else ""
        self._pipeline: Pipeline | None = None
        self._server = None
        self._thread = None
        self.scrapes = 0

    async def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._server = _ExpositionServer(self.host, self.port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="prometheus", daemon=True)
        self._thread.start()
        self.port = self._server.server_port
        log.info("prometheus: exposition on http://%s:%d/metrics", self.host, self.port)

    async def write(self, batches: list[Batch]) -> None:
        """Nothing to do: scrapes read the latest values from the series registry."""

    async def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def health(self) -> dict[str, Any]:
        return {"endpoint": f"http://{self.host}:{self.port}/metrics", "scrapes": self.scrapes}

    def _name(self, name: str) -> str:
        return f"{self.prefix}_{name}" if self.prefix else name

    # called in the HTTP server's threads
    def exposition(self) -> Iterator[str]:
        """The text exposition in chunks: series grouped by name (a family must be contiguous),
        then each family's lines, `CHUNK_LINES` at a time, then the collector's own metrics."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        self.scrapes += 1
        families: dict[str, list[Series]] = {}
        up: dict[str, bool] = {}
        target_up = pipeline.target_up
        for s in pipeline.registry:
            v = s.value
            if v is None or v.__class__ is str:
                continue
            target = s.target
            if target:
                fresh = up.get(target)
                if fresh is None:
                    fresh = up[target] = target_up(target)
                if not fresh:
                    continue
            members = families.get(s.name)
            if members is None:
                members = families[s.name] = []
            members.append(s)
        instance = pipeline.instance
        lines: list[str] = []
        for name, members in families.items():
            first = members[0]
            kind = "counter" if first.counter else "gauge"
            sample = self._name(name) + ("_total" if first.counter else "")
            lines.append(f"# HELP {sample} {_help(first.schema_path)}\n# TYPE {sample} {kind}\n")
            for s in members:
                v = s.value  # read again: the event loop may have changed it since
                if v is None or v.__class__ is str:
                    continue
                labels = sorted((*s.labels, ("source", s.target or instance)))
                lines.append(f"{sample}{{{_labels(labels)}}} {floatToGoString(v)}\n")
                if len(lines) >= CHUNK_LINES:
                    yield "".join(lines)
                    lines = []
        for metric in self._own_metrics(pipeline):
            kind = metric.type
            name = metric.name + ("_total" if kind == "counter" else "")
            lines.append(f"# HELP {name} {_help(metric.documentation)}\n# TYPE {name} {kind}\n")
            for smp in metric.samples:
                lines.append(f"{smp.name}{{{_labels(sorted(smp.labels.items()))}}} {floatToGoString(smp.value)}\n")
        yield "".join(lines)

    def _own_metrics(self, pipeline: Pipeline) -> Iterator[Metric]:
        """The collector's health: ingestion and, per output, queue depth and drops."""
        health = pipeline.health()
        ingested = Metric(self._name("collector_updates_ingested"), "Updates ingested by this collector", "counter")
        ingested.add_sample(ingested.name + "_total", {"source": pipeline.instance}, float(health["ingested"]))
        series = Metric(self._name("collector_series"), "Live series", "gauge")
        series.add_sample(series.name, {"source": pipeline.instance}, float(health["series"]))
        queued = Metric(self._name("collector_output_queued"), "Items waiting in an output's queue", "gauge")
        dropped = Metric(self._name("collector_output_dropped"), "Items an output's full queue dropped", "counter")
        for name, h in health["outputs"].items():
            labels = {"source": pipeline.instance, "output": name}
            queued.add_sample(queued.name, labels, float(h["queued"]))
            dropped.add_sample(dropped.name + "_total", labels, float(h["dropped"]))
        up = Metric(self._name("collector_output_up"), "1 while an output delivers (0: failing)", "gauge")
        for name, h in health["outputs"].items():
            up.add_sample(up.name, {"source": pipeline.instance, "output": name}, 0.0 if h["state"] == "failing" else 1.0)
        alarms = Metric(self._name("alarm_active"), "Raised alarms (qstrata-telemetry /telemetry/alarms), 1 each",
                        "gauge")
        for a in list(pipeline.active_alarms.values()):
            alarms.add_sample(alarms.name, {"source": a.agent, "alarm_id": a.alarm_id, "rule": a.rule,
                                            "severity": a.severity.rsplit(":", 1)[-1], "resource": a.resource}, 1.0)
        yield from (ingested, series, queued, dropped, up, alarms)


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: list[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels)


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET (any path): the exposition, streamed; the connection closes after it (HTTP/1.0)."""

    server: _ExpositionServer
    timeout = 60.0
    """A scraper that stops reading for this long is dropped (its thread ends)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        write = self.wfile.write
        try:
            if gzip:
                z = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
                for chunk in self.server.output.exposition():
                    write(z.compress(chunk.encode()))
                write(z.flush())
            else:
                for chunk in self.server.output.exposition():
                    write(chunk.encode())
        except (ConnectionError, TimeoutError):
            pass  # the scraper went away or stalled: nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _ExpositionServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, output: PrometheusOutput) -> None:
        self.output = output
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        self.address_family = infos[0][0]
        super().__init__(infos[0][4][:2], _Handler)
