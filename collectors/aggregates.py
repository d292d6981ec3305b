"""Short-lived agent entries as aggregates: never one series per entry.

A memory's stored pairs live for seconds, a service unit for as long as its key is in use, an ETSI
``app_statistics`` window until ten newer ones push it out. Exported one series each, they made a
real Prometheus hold 606 series per memory holding at most 4 pairs, growing by two a second; so
their leaves make no series (not in the store, not in Prometheus) and feed these instead:

* stored pairs (per memory): a pair that leaves before its ``expiry-time`` was used (swapped or
  consumed): its age and fidelity at its last reading go into two histograms; one that leaves at
  or after it was discarded by the cut-off policy and is counted (``expired-pairs``). The reading
  before the pair left is the latest the agent reported, so the age is short by at most one
  sampling interval, and the fidelity is the one it had then;
* ``app_statistics`` windows (per application): each window's ``consumed_bits`` is added once,
  when first seen, to a counter (``consumed-bits``);
* service units: counted per state (`normalize._UnitState`); their other leaves are dropped.

Pure and clock-free like the normalizer: a tracker is fed values and timestamps and emits series
values through the normalizer's factory.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from qstrata.bindings.generated import etsi_qkd_sdn_node as etsi
from qstrata.bindings.generated import qstrata_qfs as qfs
from qstrata.bindings.generated import qstrata_ss as ss

from .model import Batch, Series, Value
from .timefmt import parse_date_and_time

PAIR = qfs.qfs_node.memories.memory.stored_pairs.pair.PATH
WINDOW = etsi.qkd_node.qkd_applications.qkd_app.app_statistics.statistics.PATH
UNIT = ss.service_stratum.service_units.service_unit.PATH
SHORT_LIVED = (PAIR, WINDOW, UNIT)
"""Schema paths of the lists whose entries come and go too fast to be series."""
OWNERS: dict[str, tuple[str, str]] = {
    PAIR: (qfs.qfs_node.memories.memory.PATH, "memory-id"),
    WINDOW: (etsi.qkd_node.qkd_applications.qkd_app.PATH, "app_id"),
}
"""Aggregated list -> (schema path, key) of the entry owning its aggregates (a memory, an
application): only a delete at or above that entry ends them; a delete between it and the list
(the agent deletes the emptied ``stored-pairs`` container) removes the entries only."""

AGE_BOUNDS = (0.01, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Bucket bounds of the age at use, seconds."""
FIDELITY_BOUNDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)
"""Bucket bounds of the fidelity at use."""
WINDOWS_KEPT = 64
"""Windows remembered per application (the agent keeps 10)."""
PAIRS_KEPT = 100_000
"""Pairs remembered per memory: an agent that never reports a pair's end cannot grow this further."""

Make = Callable[[str], Series]
"""Series factory: a path relative to the telemetry entry (``pair-age-at-use/count``) -> its series."""


def short_lived(schema_path: str) -> str | None:
    """The short-lived list `schema_path` is at or under, if any."""
    for entry in SHORT_LIVED:
        if schema_path == entry or schema_path.startswith(entry + "/"):
            return entry
    return None


def _emit(series: Series, value: Value, ts: int, batch: Batch) -> None:
    series.value = value
    series.ts = ts
    batch.add(series, value, ts)


class Histogram:
    """Prometheus' cumulative buckets, count and sum, as telemetry series under `container`."""

    __slots__ = ("bounds", "counts", "count", "sum", "series")

    def __init__(self, container: str, bounds: tuple[float, ...], make: Make) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.sum = 0.0
        self.series = [make(f"{container}/bucket[le='{b!r}']/count") for b in bounds]
        self.series += [make(f"{container}/count"), make(f"{container}/sum")]

    def observe(self, value: float, ts: int, batch: Batch) -> None:
        for i in range(bisect.bisect_left(self.bounds, value), len(self.bounds)):
            self.counts[i] += 1
        self.count += 1
        self.sum += value
        for series, v in zip(self.series, (*self.counts, self.count, round(self.sum, 6)), strict=True):
            _emit(series, v, ts, batch)


class PairTracker:
    """The stored pairs of one memory -> ``expired-pairs`` and the two at-use histograms."""

    __slots__ = ("pairs", "age", "fidelity", "expired", "expired_series", "series")

    def __init__(self, make: Make) -> None:
        self.pairs: dict[str, list[int | float | None]] = {}
        """pair-id -> [created ns, fidelity, expiry ns, last reading ns]."""
        self.age = Histogram("pair-age-at-use", AGE_BOUNDS, make)
        self.fidelity = Histogram("pair-fidelity-at-use", FIDELITY_BOUNDS, make)
        self.expired = 0
        self.expired_series = make("expired-pairs")
        self.series = (*self.age.series, *self.fidelity.series, self.expired_series)

    def reading(self, pair_id: str, leaf: str, value: Value, ts: int) -> None:
        pair = self.pairs.get(pair_id)
        if pair is None:
            if len(self.pairs) >= PAIRS_KEPT:
                self.pairs.pop(next(iter(self.pairs)))
            pair = self.pairs[pair_id] = [None, None, None, ts]
        pair[3] = ts
        try:
            if leaf == "creation-time" and isinstance(value, str):
                pair[0] = parse_date_and_time(value)
            elif leaf == "expiry-time" and isinstance(value, str):
                pair[2] = parse_date_and_time(value)
            elif leaf == "fidelity" and isinstance(value, int | float):
                pair[1] = float(value)
        except ValueError:
            pass

    def all_gone(self, ts: int, batch: Batch) -> None:
        """Every pair left at once (their container was deleted): each as if deleted alone."""
        for pair_id in list(self.pairs):
            self.gone(pair_id, ts, batch)

    def gone(self, pair_id: str, ts: int, batch: Batch) -> None:
        pair = self.pairs.pop(pair_id, None)
        if pair is None:
            return
        created, fidelity, expiry, last = pair
        if expiry is not None and ts >= expiry:  # type: ignore[operator]
            self.expired += 1
            _emit(self.expired_series, self.expired, ts, batch)
            return
        if created is not None:
            self.age.observe(max(0.0, (last - created) / 1e9), ts, batch)  # type: ignore[operator]
        if fidelity is not None:
            self.fidelity.observe(fidelity, ts, batch)  # type: ignore[arg-type]


class WindowCounter:
    """An application's ``app_statistics`` windows -> ``consumed-bits``, each window once."""

    __slots__ = ("seen", "total", "series")

    def __init__(self, make: Make) -> None:
        self.seen: list[str] = []
        """end_time of the windows counted, sorted (date-and-time strings of one agent sort)."""
        self.total = 0
        self.series = make("consumed-bits")

    def reading(self, end_time: str, value: Value, ts: int, batch: Batch) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        i = bisect.bisect_left(self.seen, end_time)
        if i < len(self.seen) and self.seen[i] == end_time:
            return
        if len(self.seen) >= WINDOWS_KEPT:
            if i == 0:
                return  # older than every window remembered: counted long ago
            del self.seen[0]
            i -= 1
        self.seen.insert(i, end_time)
        self.total += int(value)
        _emit(self.series, self.total, ts, batch)
