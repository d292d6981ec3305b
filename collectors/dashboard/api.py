"""The dashboard's data, as JSON documents, from what the collector already computes.

* current state (`state`): link rows, key delivery rows and cross-connects from `collectors.views`
  over the series registry (the latest values, as the Prometheus endpoint and `qstrata up`'s table
  read them), per-agent health from `Pipeline.health()`, active alarms from the pipeline;
* history (`series`, `delivery`, `alarms`): the embedded store through `store.StoreReader`, the
  reader of `qstrata query` (`samples --step` is the same downsampling);
* `delta`: what changed between two states, which the event stream sends at most once a second.

Every request is bounded whatever the network's size: a series request returns one link's
metrics with at most `MAX_POINTS` points each; the state carries one row per link and agent (a
few hundred for 400 targets) and deltas only the rows that changed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import StoreError, StoreReader
from ..timefmt import NS, parse_duration
from ..views import cross_connects, delivery_rows, is_view_series, link_rows, pair_rows
from .graph import Graph, GraphNode
from .http import HttpError, Request

if TYPE_CHECKING:
    from ..pipeline import Pipeline

METRICS = {
    "qkd": ("secret-key-rate", "effective-key-rate", "qber", "key-available"),
    "qfs": ("generation-rate", "fidelity"),
}
"""Plotted qstrata-telemetry leaves per link kind."""
SERIES_PREFIX = {"qkd": "telemetry_qkd_links_qkd_link_", "qfs": "telemetry_qfs_links_qfs_link_"}
"""Series names of those leaves minus the leaf (`naming.series_name` of the telemetry paths)."""
DELIVERED = "telemetry_key_delivery_application_delivered_bits_per_second"
"""The series an application's delivered bit rate is plotted from (its master's KME's)."""
DEFAULT_POINTS, MIN_POINTS, MAX_POINTS = 300, 10, 2000
MAX_SPAN_S = 400 * 86400
MIN_STEP_NS = NS
"""Samples come at most once a second: finer steps would only return the raw samples."""
RESCAN_S = 10.0


def _num(value: float | None) -> float | None:
    """JSON has no NaN or infinity."""
    return value if value is None or math.isfinite(value) else None


class DashboardData:
    """Reads for the dashboard. `state` runs on the event loop (it reads in-memory values, cheap);
    `series` and `alarms` read SQLite in one worker thread of their own."""

    def __init__(self, pipeline: Pipeline, store: Path | None, graph: Graph | None,
                 health: Callable[[], dict[str, Any]] | None = None) -> None:
        self.pipeline = pipeline
        self.collector_health = health
        """The collector's health view, when the dashboard is one of its outputs."""
        self.store = store
        self.graph = graph
        self._view: list[Any] = []
        self._view_size = -1
        self._view_scanned = 0.0
        self._reader: StoreReader | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dashboard-store")

    def close(self) -> None:
        """Close the store reader in its own thread, then stop that thread."""
        reader, self._reader = self._reader, None
        if reader is not None:
            self._pool.submit(reader.close)
        self._pool.shutdown(wait=True, cancel_futures=False)

    # ---------------------------------------------------------------- current state
    def _view_series(self) -> list[Any]:
        """The few series the views read (links, cross-connects), out of possibly 200,000: found by
        one scan when the registry grows or shrinks, and every 10 s; their values update in place."""
        registry = self.pipeline.registry
        size = len(registry)
        now = time.monotonic()
        if size != self._view_size or now - self._view_scanned > RESCAN_S:
            self._view = [s for s in registry if is_view_series(s.path)]
            self._view_size, self._view_scanned = size, now
        return self._view

    def state(self) -> dict[str, Any]:
        """Everything the page shows that is not history: links, switches, agents, alarms."""
        series = self._view_series()
        links = {}
        for row in link_rows(series):
            doc = asdict(row)
            for k in ("rate", "effective_rate", "qber", "fidelity", "key_available"):
                doc[k] = _num(doc[k])
            links[f"{row.kind}/{row.link_id}/{row.agent}"] = doc
        health = self.pipeline.health()
        agents = {name: {"name": name, **t} for name, t in health["targets"].items()}
        alarms = sorted((dict(a.to_yang(), rule=a.rule, raised_ns=a.raised_ns)
                         for a in self.pipeline.active_alarms.values()), key=lambda a: a["raised_ns"])
        switches = {sw: {str(i): e for i, e in sorted(p.items())} for sw, p in cross_connects(series).items()}
        apps = {row.app_id: {k: _num(v) if isinstance(v, float) else v for k, v in asdict(row).items()}
                for row in delivery_rows(series)}
        pairs = {row.agent: {k: _num(v) if isinstance(v, float) else v for k, v in asdict(row).items()}
                 for row in pair_rows(series)}
        return {"now_ns": time.time_ns(), "links": links, "apps": apps, "pairs": pairs, "agents": agents,
                "alarms": alarms, "switches": switches,
                "collector": {"instance": health["instance"], "ingested": health["ingested"],
                              "series": health["series"], "alarms_active": health["alarms_active"],
                              "outputs": {n: {"state": o["state"], "queued": o["queued"], "dropped": o["dropped"]}
                                          for n, o in health["outputs"].items()}}}

    def topology(self) -> dict[str, Any]:
        """Nodes and fibres of the network (the graph, plus every collected target it lacks)."""
        graph = self.graph or Graph()
        doc = graph.to_json()
        known = {n.name for n in graph.nodes}
        for name in sorted(self.pipeline.targets):
            if name not in known:
                doc["nodes"].append(asdict(GraphNode(name, "")))
        return doc

    # ---------------------------------------------------------------- history
    def _read(self, fn, *args):
        if self.store is None:
            raise HttpError(503, "this collector has no store (started with --store none)")

        def call():
            if self._reader is None:
                try:
                    self._reader = StoreReader(self.store)
                except StoreError as exc:
                    raise HttpError(503, f"store not readable yet: {exc}") from None
            return fn(self._reader, *args)

        return asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _newest_ns(self, kind: str, link: str) -> int:
        newest = 0
        for s in self._view_series():
            if s.ts > newest and f"[link-id='{link}']" in s.path and s.path.startswith(
                    "/qstrata-telemetry:telemetry/" + ("qkd-links/" if kind == "qkd" else "qfs-links/")):
                newest = s.ts
        return newest

    async def _link_id(self, kind: str, given: str) -> str:
        """The full id of the link `given` names: the page, `qstrata up`'s table and people show
        the first 8 hex digits of a UUID, so a unique prefix is as good as the id. Links reported
        now (the registry) and links with history (the store) both count."""
        current = {row.link_id for row in link_rows(self._view_series()) if row.kind == kind}
        if given in current:
            return given
        first = SERIES_PREFIX[kind] + METRICS[kind][0].replace("-", "_")
        stored = await self._read(lambda reader: {r.labels.get("link_id", "") for r in reader.series(name=first)})
        return resolve_link(given, current | stored, kind)

    async def series(self, request: Request) -> dict[str, Any]:
        """``?kind=qkd|qfs&link=ID[&span=15m][&points=300]``: the link's plotted metrics, every
        reporting agent, downsampled to at most `points` averages over the last `span` of data
        (ending at the newest sample: twins running faster than real time stamp ahead of the wall
        clock)."""
        kind = request.param("kind", "qkd")
        if kind not in METRICS:
            raise HttpError(400, f"kind must be one of {', '.join(METRICS)}, got {kind!r}")
        link = request.param("link")
        if not link or len(link) > 200 or "'" in link:
            raise HttpError(400, "link: give the link id (?link=ID)")
        link = await self._link_id(kind, link)
        span, points = _window(request)
        end = max(time.time_ns(), self._newest_ns(kind, link))
        start = end - int(span * NS)
        step = max(MIN_STEP_NS, int(span * NS) // points)
        names = {SERIES_PREFIX[kind] + m.replace("-", "_"): m for m in METRICS[kind]}

        def read(reader: StoreReader) -> list[dict[str, Any]]:
            out = []
            rows = [r for r in reader.series(name=SERIES_PREFIX[kind] + "*", labels={"link_id": link}) if r.name in names]
            by_row: dict[int, list[list[float]]] = {r.id: [] for r in rows}
            for row, ts, value in reader.samples(rows, start, end, step_ns=step, limit=points + 1):
                if value is not None and math.isfinite(value):
                    by_row[row.id].append([ts // 1_000_000, value])
            for r in rows:
                out.append({"metric": names[r.name], "agent": r.source, "node": r.labels.get("node", ""),
                            "points": by_row[r.id]})
            return out

        return {"kind": kind, "link": link, "from_ns": start, "to_ns": end, "step_ns": step,
                "series": await self._read(read)}

    async def delivery(self, request: Request) -> dict[str, Any]:
        """``?app=ID[&span=15m][&points=300]``: key delivered against key made for one application,
        from the store, downsampled like `series`: its delivered bit rate as its master's KME
        reports it, and the secret key rate of each link on its route as the KME taking that hop's
        key reports it. `ID` is the app_id or a unique prefix of it among the applications now."""
        given = request.param("app")
        if not given or len(given) > 200:
            raise HttpError(400, "app: give the application's id (?app=ID)")
        rows = {row.app_id: row for row in delivery_rows(self._view_series())}
        app = rows[resolve_id(given, set(rows), "app", "application")]
        span, points = _window(request)
        end = max(time.time_ns(), app.updated_ns)
        start = end - int(span * NS)
        step = max(MIN_STEP_NS, int(span * NS) // points)
        lines = [("delivered-bits-per-second", DELIVERED, app.agent, {"app_id": app.app_id}, None)] + [
            ("secret-key-rate", SERIES_PREFIX["qkd"] + "secret_key_rate", agent, {"link_id": link}, link)
            for agent, link in app.hops]

        def read(reader: StoreReader) -> list[dict[str, Any]]:
            out = []
            for metric, name, agent, labels, link in lines:
                rows = reader.series(name=name, source=agent, labels=labels)
                found = [[ts // 1_000_000, value] for _, ts, value in reader.samples(
                    rows, start, end, step_ns=step, limit=points + 1) if value is not None and math.isfinite(value)]
                out.append({"metric": metric, "agent": agent, "link": link, "points": found})
            return out

        return {"app": app.app_id, "from_ns": start, "to_ns": end, "step_ns": step, "series": await self._read(read)}

    async def alarms(self, request: Request) -> dict[str, Any]:
        """``?span=1h[&state=raised|cleared]``: alarms raised in, or active during, the span
        (`qstrata query alarms`), newest first, at most 200."""
        span = _span(request, "1h")
        state = request.param("state")
        if state not in (None, "raised", "cleared"):
            raise HttpError(400, f"state must be raised or cleared, got {state!r}")
        end = time.time_ns() + 86400 * NS  # twins faster than real time stamp ahead of the wall clock
        start = time.time_ns() - int(span * NS)

        def read(reader: StoreReader) -> list[dict[str, Any]]:
            found = reader.alarms(state=state, start_ns=start, end_ns=end)
            return [dict(a.to_yang(), rule=a.rule) for a in reversed(found[-200:])]

        return {"alarms": await self._read(read)}

    def health(self) -> dict[str, Any]:
        """The collector's health view as `Collector.health` logs it (its configuration's error,
        the targets it collects, lease members, inputs), else the pipeline's (outputs, targets)."""
        return self.collector_health() if self.collector_health is not None else self.pipeline.health()


def delta(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """What changed from `old` to `new`: changed or new rows of `links`/`apps`/`pairs`/`agents` by
    key (None: gone), the whole `alarms`/`switches`/`collector` when they changed. None: nothing did."""
    if old is None:
        return new
    out: dict[str, Any] = {}
    for section in ("links", "apps", "pairs", "agents"):
        before, after = old.get(section, {}), new.get(section, {})
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        changed.update({k: None for k in before if k not in after})
        if changed:
            out[section] = changed
    for section in ("alarms", "switches", "collector"):
        if old[section] != new[section]:
            out[section] = new[section]
    if not out:
        return None
    out["now_ns"] = new["now_ns"]
    return out


def resolve_link(given: str, known: set[str], kind: str) -> str:
    """`given` if it is one of the `known` link ids, else the one id it is a prefix of (ignoring
    case); a prefix of several is a 400 naming them, of none a 404."""
    return resolve_id(given, known, "link", f"{kind} link")


def resolve_id(given: str, known: set[str], param: str, what: str) -> str:
    """`given` if it is one of the `known` ids of `what`, else the one id it is a prefix of
    (ignoring case); a prefix of several is a 400 naming them, of none a 404."""
    if given in known:
        return given
    found = sorted(i for i in known if i.lower().startswith(given.lower()))
    if len(found) == 1:
        return found[0]
    if found:
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise HttpError(400, f"{param}: {given!r} is the start of {len(found)} {what} ids ({shown}): "
                             "give more of the id")
    raise HttpError(404, f"{param}: no {what} has the id {given!r} or an id starting with it")


def _window(request: Request) -> tuple[float, int]:
    """(span in seconds, points) of a history request."""
    span = _span(request, "15m")
    points = _integer(request.param("points", str(DEFAULT_POINTS)), "points")
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise HttpError(400, f"points must be between {MIN_POINTS} and {MAX_POINTS}")
    return span, points


def _span(request: Request, default: str) -> float:
    """The ``span`` of a history request in seconds: every history read is bounded the same way."""
    span = _duration(request.param("span", default), "span")
    if not 1 <= span <= MAX_SPAN_S:
        raise HttpError(400, f"span must be between 1s and {MAX_SPAN_S // 86400}d")
    return span


def _duration(text: str | None, name: str) -> float:
    try:
        return parse_duration(text or "")
    except ValueError:
        raise HttpError(400, f"{name}: not a duration: {text!r} (e.g. 90s, 15m, 2h)") from None


def _integer(text: str | None, name: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise HttpError(400, f"{name}: not an integer: {text!r}") from None
