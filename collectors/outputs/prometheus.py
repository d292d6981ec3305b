"""Prometheus exposition endpoint, named by Prometheus' conventions (`qstrata.collectors.prom_names`).

Name: ``PREFIX_`` + the path without keys, module prefixes dropped, joined by ``_``, with the
leaf's unit in its base unit (``_seconds``, ``_bits``, ``_bits_per_second``, ``_ratio``, ``_dbm``;
values scaled to it) and ``_total`` for counters; list keys are labels named after the key
(`qstrata.collectors.naming`), plus ``source`` (the agent; the collector's instance name for the
collector's own agents/agent series). Numbers and booleans (0/1) only, and never a key, a
leafref or an id as a sample: strings are in the store and on NATS. Histograms (the age and
fidelity of pairs at use) are Prometheus histograms.

Freshness (gnmic issue #370): a value that does not change is exported at every scrape, without a
timestamp (Prometheus stamps it with the scrape time), so it never falls out of Prometheus'
lookback window just because the agent did not send it again. A series goes stale only when
its target is reported down (the series are then left out of the exposition and Prometheus
writes staleness markers) or when its leaf or list entry is deleted.

The endpoint is aiohttp's, in the collector's event loop (the library the KME's ETSI GS QKD 014
API and the dashboard use), behind their `ConnectionGuard`: a connection that sends no request
head is closed after `HEAD_TIMEOUT_S`, one idle between scrapes after `IDLE_TIMEOUT_S`
(Prometheus reconnects for its next scrape), and their number is bounded. Each chunk of the exposition is built in a worker thread that reads the
latest values from the series registry in place, so a scrape of 200,000 series never holds the
event loop for the 0.45 s it takes, and a slow or stalled scraper holds only its own coroutine
(dropped after `WRITE_TIMEOUT`); there is no per-output queue to fill (`wants_batches = False`).
The exposition (text format 0.0.4, as prometheus-client writes it: values as Go prints them,
gzip when asked) is streamed in chunks of about 2,000 lines: prometheus-client's
`generate_latest` built a sample object per series, then every line, then the whole text, then
its bytes -- about 65 MB at once for 200,000 series, every scrape (now: the family index, 1.6 MB,
and one chunk).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString
from qstrata.bindings.wire.connections import ConnectionGuard, start_http

from ..naming import sanitize
from ..prom_names import MetricName, metric_name

if TYPE_CHECKING:
    from ..model import Batch, Series
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.prometheus")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHUNK_LINES = 2000
"""Sample lines per chunk written to the scraper."""
WRITE_TIMEOUT = 60.0
"""A scraper that stops reading for this long is dropped."""


class PrometheusOutput:
    name = "prometheus"
    wants_batches = False

    def __init__(self, host: str = "127.0.0.1", port: int = 9273, prefix: str = "qstrata",
                 guard: ConnectionGuard | None = None) -> None:
        self.host = host
        self.guard = guard or ConnectionGuard()
        self.port = port
        self.prefix = sanitize(prefix) if prefix else ""
        self._pipeline: Pipeline | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._names: dict[str, MetricName | None] = {}
        self.scrapes = 0

    async def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._threads = ThreadPoolExecutor(4, thread_name_prefix="prometheus")
        app = web.Application()
        app.router.add_get("/{path:.*}", self._scrape)  # any path, like prometheus-client's server
        self._runner, self._server = await start_http(app, self.host or None, self.port, self.guard)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("prometheus: exposition on http://%s:%d/metrics", self.host, self.port)

    async def write(self, batches: list[Batch]) -> None:
        """Nothing to do: scrapes read the latest values from the series registry."""

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    def health(self) -> dict[str, Any]:
        return {"endpoint": f"http://{self.host}:{self.port}/metrics", "scrapes": self.scrapes}

    def _name(self, name: str) -> str:
        return f"{self.prefix}_{name}" if self.prefix else name

    async def _scrape(self, request: web.Request) -> web.StreamResponse:
        gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
        await response.prepare(request)
        chunks = self.encoded(gzip)
        loop = asyncio.get_running_loop()
        try:
            while (chunk := await loop.run_in_executor(self._threads, next, chunks, None)) is not None:
                await asyncio.wait_for(response.write(chunk), WRITE_TIMEOUT)
            await response.write_eof()
        except (ConnectionError, TimeoutError):
            pass  # the scraper went away or stalled: nothing to tell it
        finally:
            chunks.close()
        return response

    # called in worker threads
    def encoded(self, gzip: bool) -> Iterator[bytes]:
        """The exposition's chunks as bytes, gzip-compressed when asked."""
        if not gzip:
            for chunk in self.exposition():
                yield chunk.encode()
            return
        z = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
        for chunk in self.exposition():
            if data := z.compress(chunk.encode()):
                yield data
        yield z.flush()

    def _metric(self, series: Series) -> MetricName | None:
        found = self._names.get(series.schema_path, False)
        if found is False:
            found = self._names[series.schema_path] = metric_name(series.schema_path, series.name)
        return found  # type: ignore[return-value]

    def exposition(self) -> Iterator[str]:
        """The text exposition in chunks: series grouped by metric family (a family must be
        contiguous), then each family's lines, `CHUNK_LINES` at a time, then the collector's own
        metrics."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        self.scrapes += 1
        families: dict[str, list[Series]] = {}
        up: dict[str, bool] = {}
        target_up = pipeline.target_up
        names = self._names
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
            metric = names.get(s.schema_path, False)
            if metric is False:
                metric = self._metric(s)
            if metric is None:
                continue
            members = families.get(metric.family)
            if members is None:
                members = families[metric.family] = []
            members.append(s)
        instance = pipeline.instance
        lines: list[str] = []
        for family, members in families.items():
            first = self._metric(members[0])
            assert first is not None
            name = self._name(family)
            typed = self._name(first.sample) if first.kind == "counter" else name  # as prometheus-client writes it
            help_path = members[0].schema_path
            if first.kind == "histogram":  # the container: .../pair-age-at-use(/bucket)/count
                help_path = help_path.split("/bucket/")[0] if "/bucket/" in help_path else help_path.rsplit("/", 1)[0]
            lines.append(f"# HELP {typed} {_help(help_path)}\n# TYPE {typed} {first.kind}\n")
            histogram = first.kind == "histogram"
            sample, scale, divisor = self._name(first.sample), first.scale, first.divisor  # one leaf per family
            for s in members:
                v = s.value  # read again: the event loop may have changed it since
                if v is None or v.__class__ is str:
                    continue
                labels = _labels(sorted((*s.labels, ("source", s.target or instance))))
                if histogram:
                    metric = self._metric(s)
                    assert metric is not None
                    sample = self._name(metric.sample)
                if scale != 1.0:
                    v *= scale
                if divisor != 1.0:
                    v /= divisor
                lines.append(f"{sample}{{{labels}}} {floatToGoString(v)}\n")
                if histogram and sample.endswith("_count"):
                    inf = _labels(sorted((*s.labels, ("le", "+Inf"), ("source", s.target or instance))))
                    lines.append(f"{name}_bucket{{{inf}}} {floatToGoString(v)}\n")
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
