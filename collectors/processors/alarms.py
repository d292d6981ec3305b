"""Alarm rules: thresholds with hysteresis on any numeric series, and 'agent unreachable for T s'.

A threshold rule names a schema path (a qstrata-telemetry leaf such as
``/qstrata-telemetry:telemetry/qkd-links/qkd-link/qber``, or any numeric leaf of an agent's
model) and ``above`` or ``below`` a value; it raises when a sample crosses the threshold and
clears only when the value has stayed past the clear threshold (``clear-below`` /
``clear-above``, defaulting to the threshold itself) for ``clear-readings`` measurements in a
row, so a value hovering at the limit, or one lucky reading, does not flap it. A rule with ``arm``
raises only once the value has been past its clear level (a key store still filling after its link
came up has not run low; one that falls below the threshold after that has). An alarm is raised
once per (rule, resource) until it clears; its id is a UUID v5 of agent, rule and resource, so a
re-raise for the same cause keeps its id (qstrata-telemetry).

A value is a measurement only when the link it describes is up (`normalize.GATES` says which
leaves describe a link, and which status leaf tells): a link that is PENDING or OFF reports
placeholders (QBER 0, rate 0), which neither raise nor clear anything; a PASSIVE link (locked,
distilling no key -- typically because the QBER is too high) is measured, so its readings may
raise an alarm or keep it raised, but only an ACTIVE link's readings clear one. A link that goes
down for good keeps its alarms raised. Links whose status has not been seen count as measured.

Rules attach to series when the series is created (`Series.watch`), so the per-update cost for
the 99 % of series no rule looks at is one attribute test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import SEVERITIES, Alarm, Batch, Series, TargetStatus, Value, alarm_id
from ..normalize import GATES, resource_of

if TYPE_CHECKING:
    from ..pipeline import Pipeline

NS = 1_000_000_000
DEFAULT_CLEAR_READINGS = 3
"""Measurements past the clear threshold, in a row, before a threshold alarm clears."""
MEASURED = frozenset({"ACTIVE", "PASSIVE"})
"""Link states whose readings are measurements (the last word of the ETSI link-status identity)."""
CLEARING = "ACTIVE"
"""The one link state whose readings can clear an alarm."""
GATE_LEAVES = frozenset(GATES.values())


@dataclass(frozen=True)
class ThresholdRule:
    name: str
    path: str
    """Schema path (no keys) of the watched leaf."""
    severity: str
    """Identity value (see `model.SEVERITIES`)."""
    above: float | None = None
    below: float | None = None
    clear: float | None = None
    """Clear threshold: value < clear for `above` rules, value > clear for `below` rules; None: the
    threshold itself."""
    targets: frozenset[str] | None = None
    actions: tuple[str, ...] = ()
    clear_readings: int = DEFAULT_CLEAR_READINGS
    """Consecutive measurements past the clear threshold before the alarm clears."""
    arm: bool = False
    """Raise only after a measurement past the clear threshold (per series): a level that starts
    on the wrong side (an empty key store filling up) is not a fault until it has been right."""

    def __post_init__(self) -> None:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold rule needs exactly one of 'above' and 'below'")
        if self.clear_readings < 1:
            raise ValueError(f"clear-readings must be at least 1, got {self.clear_readings}")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError(f"clear-below ({self.clear:g}) must not be above 'above' ({self.above:g})")
            if self.below is not None and self.clear < self.below:
                raise ValueError(f"clear-above ({self.clear:g}) must not be below 'below' ({self.below:g})")

    def breached(self, v: float) -> bool:
        return v > self.above if self.above is not None else v < self.below  # type: ignore[operator]

    def cleared(self, v: float) -> bool:
        if self.above is not None:
            return v < (self.clear if self.clear is not None else self.above)
        return v > (self.clear if self.clear is not None else self.below)  # type: ignore[operator]

    def describe(self, v: float) -> str:
        leaf = self.path.rsplit("/", 1)[-1]
        if self.above is not None:
            return f"{leaf} {_number(v)} above {_number(self.above)}"
        return f"{leaf} {_number(v)} below {_number(self.below)}"  # type: ignore[arg-type]

    def describe_clear(self, v: float) -> str:
        leaf = self.path.rsplit("/", 1)[-1]
        side, level = ("below", self.above) if self.above is not None else ("above", self.below)
        level = self.clear if self.clear is not None else level
        readings = "1 reading" if self.clear_readings == 1 else f"{self.clear_readings} readings"
        return f"{leaf} {_number(v)}, {side} {_number(level)} for {readings}"  # type: ignore[arg-type]


def _number(v: float) -> str:
    """A reading or a threshold in an alarm's text: whole numbers whole (key bits: 6715776, not
    6.71578e+06), others as %g (a QBER of 0.056)."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e18 else f"{v:g}"


@dataclass(frozen=True)
class UnreachableRule:
    name: str
    after: float
    """Seconds a target must be unreachable before the alarm is raised."""
    severity: str
    targets: frozenset[str] | None = None
    actions: tuple[str, ...] = ()


Rule = ThresholdRule | UnreachableRule


class _Gate:
    """In a status series' `watch`: the processor follows that link's state."""

    __slots__ = ()


GATE = _Gate()


@dataclass
class _Down:
    since_ns: int
    reason: str
    alarm: Alarm | None = None


@dataclass
class AlarmProcessor:
    """Evaluates the rules; raised and cleared alarms go into the batch, to every output."""

    rules: list[Rule] = field(default_factory=list)
    name: str = "alarms"

    def __post_init__(self) -> None:
        self._pipeline: Pipeline | None = None
        self._active: dict[tuple[str, str, str], Alarm] = {}
        self._clearing: dict[tuple[str, str, str], int] = {}
        """Readings past the clear threshold so far, in a row, per raised alarm."""
        self._armed: set[tuple[str, str, str]] = set()
        """(rule, target, path) of `arm` rules that have seen a measurement past their clear level."""
        self._links: dict[tuple[str, str], str] = {}
        """(target, data path of a link entry) -> its state (ACTIVE, PASSIVE, PENDING, OFF...)."""
        self._down: dict[str, _Down] = {}
        self._orphans: list[tuple[Alarm, str]] = []
        """Alarms to clear at the next tick (their rule or their target went away), with why."""
        self.raised = 0
        self.cleared = 0

    # -------------------------------------------------------------- rules
    async def start(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        pipeline.registry.listeners.append(self._attach)
        self.set_rules(self.rules)

    def set_rules(self, rules: list[Rule]) -> None:
        """Replace the rules (configuration reload). Alarms of rules that are gone are cleared
        at the next tick; the others keep their state."""
        self.rules = list(rules)
        names = {r.name for r in self.rules}
        for key in [k for k in self._active if k[0] not in names]:
            self._orphans.append((self._active.pop(key), "rule removed"))
            self._clearing.pop(key, None)
        self._armed = {k for k in self._armed if k[0] in names}
        for down in self._down.values():
            if down.alarm is not None and down.alarm.rule not in names:
                self._orphans.append((down.alarm, "rule removed"))
                down.alarm = None
        if self._pipeline is not None:
            for series in self._pipeline.registry:
                self._attach(series)

    def _attach(self, series: Series) -> None:
        threshold = [r for r in self.rules if isinstance(r, ThresholdRule)]
        matching = [r for r in threshold if r.path == series.schema_path
                    and (r.targets is None or series.target in r.targets)]
        if series.schema_path in GATE_LEAVES and any(GATES.get(r.path) == series.schema_path for r in threshold):
            matching.append(GATE)
            if series.value is not None:  # rules (re)loaded: the link's state is already known
                self._link_state(series, series.value)
        series.watch = tuple(matching) or None

    # -------------------------------------------------------------- evaluation
    def process(self, batch: Batch) -> None:
        for s, v, t in zip(batch.series, batch.values, batch.ts, strict=True):
            if s.watch is not None:
                for rule in s.watch:
                    if rule is GATE:
                        self._link_state(s, v)
                    else:
                        self._evaluate(rule, s, v, t, batch)

    def _link_state(self, s: Series, v: Value) -> None:
        """A link's status changed; the readings after it (in batch order) are judged by it."""
        key = (s.target, s.path[:s.path.rfind("/")])
        if v is None:
            self._links.pop(key, None)
        else:
            self._links[key] = str(v).rsplit(":", 1)[-1]

    def _evaluate(self, rule: ThresholdRule, s: Series, v: Value, ts: int, batch: Batch) -> None:
        key = (rule.name, s.target, s.path)
        active = self._active.get(key)
        if v is None:  # the resource is gone: nothing left to be wrong
            self._armed.discard(key)
            if active is not None:
                self._clear(key, active, ts, f"{rule.name}: {resource_of(s) or s.path} removed", batch)
            return
        if v.__class__ is str:
            return
        value = float(v)
        state = self._links.get((s.target, s.path[:s.path.rfind("/")])) if rule.path in GATES else None
        if state is not None and state not in MEASURED:  # a placeholder, not a measurement
            self._clearing.pop(key, None)
            return
        if active is None:
            if rule.arm and key not in self._armed:
                if rule.cleared(value):
                    self._armed.add(key)
                return
            if rule.breached(value):
                resource = resource_of(s)
                alarm = Alarm(alarm_id(s.target, rule.name, resource), s.target, resource, rule.severity, ts, None,
                              f"{rule.name}: {rule.describe(value)} on {resource}", rule.name, s.labels)
                self._active[key] = alarm
                self.raised += 1
                batch.alarms.append(alarm)
            return
        if not rule.cleared(value) or state not in (None, CLEARING):
            self._clearing.pop(key, None)
            return
        readings = self._clearing.get(key, 0) + 1
        if readings < rule.clear_readings:
            self._clearing[key] = readings
            return
        link = f", link {state}" if state is not None else ""
        self._clear(key, active, ts, f"{rule.name}: cleared, {rule.describe_clear(value)}{link}", batch)

    def _clear(self, key, active: Alarm, ts: int, text: str, batch: Batch) -> None:
        del self._active[key]
        self._clearing.pop(key, None)
        cleared = Alarm(active.alarm_id, active.agent, active.resource, active.severity, active.raised_ns,
                        max(ts, active.raised_ns), text, active.rule, active.labels)
        self.cleared += 1
        batch.alarms.append(cleared)

    def status(self, status: TargetStatus, batch: Batch) -> None:
        down = self._down.get(status.target)
        if status.reachable:
            if down is not None:
                del self._down[status.target]
                if down.alarm is not None:
                    a = down.alarm
                    now = status.timestamp_ns or a.raised_ns
                    cleared = Alarm(a.alarm_id, a.agent, a.resource, a.severity, a.raised_ns, max(now, a.raised_ns),
                                    f"{a.rule}: {a.agent} reachable again", a.rule)
                    self.cleared += 1
                    batch.alarms.append(cleared)
        elif down is None:
            self._down[status.target] = _Down(status.timestamp_ns, status.reason)
        else:
            down.reason = status.reason or down.reason

    def forget(self, target: str) -> None:
        """`target` is no longer collected here: its alarms are cleared at the next tick."""
        for key in [k for k in self._active if k[1] == target]:
            self._orphans.append((self._active.pop(key), f"{target} no longer collected here"))
            self._clearing.pop(key, None)
        for key in [k for k in self._links if k[0] == target]:
            del self._links[key]
        self._armed = {k for k in self._armed if k[1] != target}
        down = self._down.pop(target, None)
        if down is not None and down.alarm is not None:
            self._orphans.append((down.alarm, f"{target} no longer collected here"))

    def tick(self, now_ns: int, batch: Batch) -> None:
        orphans, self._orphans = self._orphans, []
        for a, why in orphans:
            batch.alarms.append(Alarm(a.alarm_id, a.agent, a.resource, a.severity, a.raised_ns,
                                      max(now_ns, a.raised_ns), f"{a.rule}: {why}", a.rule, a.labels))
        rules = [r for r in self.rules if isinstance(r, UnreachableRule)]
        if not rules:
            return
        for target, down in self._down.items():
            if down.alarm is not None:
                continue
            since = down.since_ns or now_ns
            if not down.since_ns:
                down.since_ns = now_ns
            for rule in rules:
                if (rule.targets is None or target in rule.targets) and now_ns - since >= rule.after * NS:
                    reason = f": {down.reason}" if down.reason else ""
                    down.alarm = Alarm(alarm_id(target, rule.name, ""), target, "", rule.severity, now_ns, None,
                                       f"{rule.name}: {target} unreachable for {(now_ns - since) / NS:.0f} s{reason}",
                                       rule.name)
                    self.raised += 1
                    batch.alarms.append(down.alarm)
                    break

    async def stop(self) -> None:
        pass

    def active(self) -> list[Alarm]:
        return list(self._active.values()) + [d.alarm for d in self._down.values() if d.alarm is not None]


def severity_identity(name: str) -> str:
    """``major`` / ``MAJOR`` / ``etsi-qkd-node-types:MAJOR`` -> the identity value; ValueError if unknown."""
    key = name.rsplit(":", 1)[-1].upper()
    if key not in SEVERITIES:
        raise ValueError(f"unknown severity {name!r}; one of {', '.join(SEVERITIES)}")
    return SEVERITIES[key]
