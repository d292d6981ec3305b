"""The values that flow through the collector pipeline.

Inputs hand the pipeline `Update`s (one leaf of one target, as a gNMI Notification carries it) in
lists, and `TargetStatus` snapshots when a target's session changes. Normalization turns updates
into `Series` samples; a `Batch` carries the samples of one ingest call (column lists, not one
object per sample: ingestion has to stay cheap at 100,000 updates/s) plus the alarms and target
statuses raised with it and the results of actions run for alarms (`ActionRun`), through
processors to every output.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Value = int | float | str | bool | None


@dataclass(frozen=True, slots=True)
class Update:
    """One leaf of one target, as a gNMI Notification carries it."""

    target: str
    """Agent name (gNMI prefix.target / the configured target name)."""
    path: str
    """Data path with keys, module-qualified first element (`qstrata.bindings.paths` conventions),
    e.g. /etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='6f..']/qkdl_performance/skr"""
    value: Value
    """None: the leaf (or, for a non-leaf path, the whole subtree) was deleted."""
    timestamp_ns: int
    """When the value was produced (agent's clock)."""


SubscriptionState = Literal["connecting", "subscribed", "backoff", "failed"]


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A snapshot of one target's collection health, sent by the input whenever it changes.

    A snapshot rather than up/down deltas: a consumer that missed one (a restarted collector
    reading from NATS) is right again at the next, and counters need no accumulation."""

    target: str
    reachable: bool
    """True while the transport session to the agent is up."""
    state: SubscriptionState = "connecting"
    """As qstrata-telemetry's agents/agent/subscription-state."""
    reason: str = ""
    """Why the target is down or failed (the error the session saw); empty when up."""
    synced: bool = False
    """The agent's sync_response arrived: the initial values are complete."""
    reconnects: int = 0
    """Sessions opened after the first one."""
    duplicates: int = 0
    """Updates the agent coalesced (sum of gNMI Notification.duplicates) since collection began."""
    timestamp_ns: int = 0
    """When the change happened (collector clock)."""
    last_update_ns: int = 0
    """When the last notification with updates arrived from the target (collector clock; 0: none yet)."""


class Series:
    """One time series: a leaf of one target, raw or normalized, and its latest value.

    Created once per (target, path) by the normalizer and kept in a `SeriesRegistry`; every
    output refers to series by object (or `id`), so per-update work is an append, not a lookup
    by string. `value`/`ts` are the latest sample: the Prometheus endpoint reads them, so it
    needs no queue of its own. `watch` is set by the alarm processor for series a rule looks at.
    Slots, no dict: at 400 targets x 500 leaves there are 200,000 of these.
    """

    __slots__ = ("id", "target", "path", "schema_path", "name", "labels", "counter", "numeric", "resource",
                 "value", "ts", "watch", "store_id")

    def __init__(self, sid: int, target: str, path: str, schema_path: str, name: str,
                 labels: tuple[tuple[str, str], ...], *, counter: bool, numeric: bool, resource: str) -> None:
        self.id = sid
        self.target = target
        self.path = path
        """Normalized data path (qstrata-telemetry), or the agent's own path for raw series."""
        self.schema_path = schema_path
        self.name = name
        """Exposition name without the prefix (``qkd_links_qkd_link_secret_key_rate``)."""
        self.labels = labels
        """List keys as (label, value), label names Prometheus-safe and unique; no `source`."""
        self.counter = counter
        self.numeric = numeric
        self.resource = resource
        """Data path of the resource in the agent's datastore (for alarms); "" for raw series:
        `normalize.resource_of` works it out when an alarm needs it."""
        self.value: Value = None
        self.ts = 0
        self.watch: Any = None
        self.store_id = 0
        """Row id in the embedded store, set by its writer (0: not stored yet)."""

    def __repr__(self) -> str:
        return f"<Series {self.target} {self.path} = {self.value!r}>"


class Batch:
    """What one ingest call produced: samples as parallel lists, plus alarms, target statuses and
    action results.

    Alarm transitions and action results are records in the order the collector made them: a
    batch's alarms come before its action runs, and batches are recorded in the order they are
    emitted (what `Pipeline.events` and the store's alarm log keep). Outputs must not mutate a
    batch: every output sees the same one."""

    __slots__ = ("series", "values", "ts", "alarms", "statuses", "runs")

    def __init__(self, series: list[Series] | None = None, values: list[Value] | None = None,
                 ts: list[int] | None = None, alarms: list[Alarm] | None = None,
                 statuses: list[TargetStatus] | None = None, runs: list[ActionRun] | None = None) -> None:
        self.series = series if series is not None else []
        self.values = values if values is not None else []
        self.ts = ts if ts is not None else []
        self.alarms = alarms if alarms is not None else []
        self.statuses = statuses if statuses is not None else []
        self.runs = runs if runs is not None else []

    def __len__(self) -> int:
        """Items an output has to carry (samples + alarms + statuses + action runs): the unit of
        queue bounds."""
        return len(self.series) + len(self.alarms) + len(self.statuses) + len(self.runs)

    def add(self, series: Series, value: Value, ts: int) -> None:
        self.series.append(series)
        self.values.append(value)
        self.ts.append(ts)


ALARM_NAMESPACE = uuid.UUID("5f0c8a52-7c0b-4f7e-9a53-3b0c1d6e2a71")
"""UUID v5 namespace of alarm ids (qstrata-telemetry: derived from source and alarm type)."""

SEVERITIES = {
    "CRITICAL": "qstrata-telemetry:CRITICAL",
    "MAJOR": "etsi-qkd-node-types:MAJOR",
    "MINOR": "etsi-qkd-node-types:MINOR",
    "WARNING": "qstrata-telemetry:WARNING",
}
"""Severity names accepted in configuration -> identity values of qstrata-telemetry alarms."""


def alarm_id(agent: str, rule: str, resource: str) -> str:
    """Same cause, same id: an alarm re-raised for the same rule and resource keeps its id."""
    return str(uuid.uuid5(ALARM_NAMESPACE, f"{agent}\x00{rule}\x00{resource}"))


@dataclass(frozen=True, slots=True)
class Alarm:
    """One raise or clear of an alarm, shaped like qstrata-telemetry /telemetry/alarms/alarm."""

    alarm_id: str
    agent: str
    resource: str
    severity: str
    """Identity value: ``etsi-qkd-node-types:MAJOR``, ``qstrata-telemetry:CRITICAL``..."""
    raised_ns: int
    cleared_ns: int | None
    text: str
    rule: str = ""
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Labels of the series that raised it (for action templates); not part of the YANG shape."""

    @property
    def state(self) -> Literal["raised", "cleared"]:
        return "raised" if self.cleared_ns is None else "cleared"

    def to_yang(self) -> dict[str, Any]:
        """The list entry as JSON-IETF (inside /qstrata-telemetry:telemetry/alarms/alarm)."""
        from .timefmt import date_and_time

        entry: dict[str, Any] = {
            "alarm-id": self.alarm_id,
            "source": {"agent": self.agent},
            "severity": self.severity,
            "raised-time": date_and_time(self.raised_ns),
            "text": self.text,
            "state": self.state,
        }
        if self.resource:
            entry["source"]["resource"] = self.resource
        if self.cleared_ns is not None:
            entry["cleared-time"] = date_and_time(self.cleared_ns)
        return entry

    @classmethod
    def from_yang(cls, entry: dict[str, Any], rule: str = "") -> Alarm:
        from .timefmt import parse_date_and_time

        cleared = entry.get("cleared-time")
        return cls(alarm_id=entry["alarm-id"], agent=entry["source"]["agent"],
                   resource=entry["source"].get("resource", ""), severity=entry["severity"],
                   raised_ns=parse_date_and_time(entry["raised-time"]),
                   cleared_ns=parse_date_and_time(cleared) if cleared else None,
                   text=entry.get("text", ""), rule=rule)


@dataclass(frozen=True, slots=True)
class ActionRun:
    """The result of one action run for one alarm transition (or why it did not run)."""

    action: str
    alarm_id: str
    raised_ns: int
    """With `alarm_id`: which raise of the alarm the run belongs to."""
    agent: str
    rule: str
    transition: Literal["raise", "clear"]
    outcome: str
    """'ok', 'failed', 'rate-limited' or 'queue-full'."""
    detail: str
    ts_ns: int
    """When the run ended, or was skipped (collector clock)."""
