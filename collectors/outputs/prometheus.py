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

The endpoint is prometheus-client's threaded HTTP server: a scrape reads the latest values from
the series registry in its own thread, so a slow or stalled scraper never holds up ingestion;
there is no per-output queue to fill (`wants_batches = False`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

from ..naming import sanitize

if TYPE_CHECKING:
    from ..model import Batch
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.prometheus")


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
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        self._server, self._thread = start_http_server(self.port, self.host, registry=registry)
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

    # prometheus-client's Collector interface: called in the HTTP server's thread.
    def collect(self) -> Iterator[Metric]:
        pipeline = self._pipeline
        if pipeline is None:
            return
        self.scrapes += 1
        families: dict[str, tuple[Metric, str]] = {}
        up: dict[str, bool] = {}
        target_up = pipeline.target_up
        instance = pipeline.instance
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
            entry = families.get(s.name)
            if entry is None:
                name = self._name(s.name)
                metric = Metric(name, s.schema_path, "counter" if s.counter else "gauge")
                entry = families[s.name] = (metric, name + "_total" if s.counter else name)
            labels = dict(s.labels)
            labels["source"] = target or instance
            entry[0].add_sample(entry[1], labels, float(v))
        for metric, _ in families.values():
            yield metric
        yield from self._own_metrics(pipeline)

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
