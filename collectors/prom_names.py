"""Prometheus metric names from YANG leaves, by Prometheus' naming conventions.

The series name (`qstrata.collectors.naming`: the path without keys, module prefixes dropped) is
the start; the leaf's YANG type says the rest, never its value:

* the unit from the leaf's ``units`` statement, in the base unit Prometheus asks for (seconds,
  bits, bytes, meters), with the value scaled to it: ``nanoseconds`` -> ``_seconds`` / 1e9,
  ``bit/s`` -> ``_bits_per_second``; dBm and dB stay what they are and are named (``_dbm``,
  ``_db``), since a logarithmic unit has no base to convert to;
* a decimal64 fraction (range 0..1, or a ``fraction``/``fidelity`` typedef) -> ``_ratio``;
* a name that already ends with its unit, or whose leaf names it, is not given it twice
  (``latency-seconds``; ``bits-delivered`` -> ``_bits_delivered_total``);
* counters (ietf-yang-types counters) end in ``_total``, after the unit;
* not exported: strings, list keys (they are the labels), leafrefs and integer leaves that name
  something (`identifies`: ``*-id``, ``port``, ``*-port``, ``ingress``, ``egress``): a number that
  names something measures nothing (``port-count`` does measure, and is exported);
* a smaller unit is divided into the base one, not multiplied by a fraction (0.3 s, not
  0.30000000000000004).

Histograms (`HISTOGRAMS`: a telemetry container of ``count``, ``sum`` and ``bucket[le]/count``)
become one family of Prometheus' histogram type: ``NAME_bucket{le}``, ``NAME_sum``,
``NAME_count``, NAME taking the unit of the bucket bounds (``le``, in the base unit already).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from qstrata.bindings.leafinfo import leaf_info

from .naming import local_name, sanitize

UNITS: dict[str, tuple[str, float, float]] = {
    "bit/s": ("bits_per_second", 1.0, 1.0),
    "bits": ("bits", 1.0, 1.0),
    "bytes": ("bytes", 1.0, 1.0),
    "octets": ("bytes", 1.0, 1.0),
    "seconds": ("seconds", 1.0, 1.0),
    "milliseconds": ("seconds", 1.0, 1e3),
    "microseconds": ("seconds", 1.0, 1e6),
    "nanoseconds": ("seconds", 1.0, 1e9),
    "km": ("meters", 1e3, 1.0),
    "dB/km": ("db_per_meter", 1.0, 1e3),
    "dBm": ("dbm", 1.0, 1.0),
    "dB": ("db", 1.0, 1.0),
    "keys/s": ("keys_per_second", 1.0, 1.0),
    "pairs/s": ("pairs_per_second", 1.0, 1.0),
}
"""YANG ``units`` -> (Prometheus suffix, multiplier, divisor) to that base unit: a smaller unit is
divided (300,000,000 ns / 1e9 is 0.3; x 1e-9 is 0.30000000000000004)."""

IDENTIFIER_NAMES = frozenset({"port", "rport", "ingress", "egress"})
IDENTIFIER_SUFFIXES = ("-id", "_id", "-port", "_port")
"""Integer leaves named so identify something (an entry, a port, an interface): not exported."""

HISTOGRAMS: frozenset[str] = frozenset({
    "/qstrata-telemetry:telemetry/memories/memory/pair-age-at-use",
    "/qstrata-telemetry:telemetry/memories/memory/pair-fidelity-at-use",
})
"""Telemetry containers exported as Prometheus histograms (schema paths)."""

_INTEGERS = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})


@dataclass(frozen=True, slots=True)
class MetricName:
    """How one series is exported."""

    family: str
    """The metric family (``# TYPE`` line), without the exporter's prefix."""
    sample: str
    """The sample name (family + ``_total``, ``_bucket``, ``_sum``, ``_count``)."""
    kind: str
    """counter, gauge or histogram."""
    scale: float = 1.0
    """Multiplier from the leaf's unit to the metric's base unit (km -> meters)."""
    divisor: float = 1.0
    """Divisor from the leaf's unit to the metric's base unit (ns -> seconds)."""


def with_unit(name: str, suffix: str, leaf: str = "") -> str:
    """`name` ending in its unit, unless the name ends with it already or the leaf's own name
    (`leaf`, sanitized) says it (``bits-delivered``: ``..._bits_delivered_total``)."""
    if not suffix or name == suffix or name.endswith("_" + suffix) or f"_{suffix}_" in f"_{leaf}_":
        return name
    return f"{name}_{suffix}"


def _unit(info) -> tuple[str, float, float]:  # noqa: ANN001 (a LeafInfo)
    if info.units is not None:
        return UNITS.get(info.units, (sanitize(info.units.lower()), 1.0, 1.0))
    return ("ratio", 1.0, 1.0) if info.ratio else ("", 1.0, 1.0)


def identifies(leaf: str, base: str) -> bool:
    """An integer leaf whose name says it names something (an id, a port): a number that names
    something measures nothing."""
    return base in _INTEGERS and (leaf in IDENTIFIER_NAMES or leaf.endswith(IDENTIFIER_SUFFIXES))


@functools.lru_cache(maxsize=65536)
def metric_name(schema_path: str, name: str) -> MetricName | None:
    """The Prometheus name of the series `name` of leaf `schema_path`; None: not exported."""
    histogram = _histogram(schema_path, name)
    if histogram is not None:
        return histogram
    info = leaf_info(schema_path)
    if info is None:  # not in the schema (a vendor's leaf): a gauge under its own name
        return MetricName(name, name, "gauge")
    if not info.numeric or info.key or info.reference:
        return None
    leaf = local_name(schema_path.rsplit("/", 1)[-1])
    if identifies(leaf, info.base):
        return None
    suffix, scale, divisor = _unit(info)
    family = with_unit(name, suffix, sanitize(leaf))
    if info.counter:
        family = family.removesuffix("_total")
        return MetricName(family, family + "_total", "counter", scale, divisor)
    return MetricName(family, family, "gauge", scale, divisor)


def _histogram(schema_path: str, name: str) -> MetricName | None:
    parent, _, leaf = schema_path.rpartition("/")
    if parent.endswith("/bucket") and leaf == "count":
        container, role = parent[: -len("/bucket")], "bucket"
        base = name[: -len("_bucket_count")]
    else:
        container, role = parent, leaf
        base = name[: -len(leaf) - 1]
    if container not in HISTOGRAMS or role not in ("bucket", "sum", "count"):
        return None
    info = leaf_info(container + "/bucket/le")  # the bounds' type names the unit (in its base unit)
    family = with_unit(base, _unit(info)[0] if info is not None else "")
    return MetricName(family, f"{family}_{role}", "histogram")


def telemetry_metrics(prefix: str = "qstrata") -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(qstrata-telemetry leaf, metric sample name, type, labels) for every numeric leaf of the
    model's state, walked through the generated bindings: the table collectors/README.md shows
    (tested to match)."""
    from qstrata.bindings.generated import qstrata_telemetry as qtel
    from qstrata.bindings.paths import split_data_path

    from .naming import series_labels, series_name

    rows: list[tuple[str, str, str, tuple[str, ...]]] = []
    top = qtel.telemetry.PATH

    def walk(node: type, keys: dict[str, tuple[str, ...]]) -> None:
        for attr, value in vars(node).items():
            if isinstance(value, type) and hasattr(value, "PATH"):
                if value.PATH.endswith("/collector"):
                    continue
                walk(value, {**keys, value.PATH: getattr(value, "KEYS", ())})
            elif isinstance(value, str) and value.startswith(node.PATH + "/") and not attr.isupper():
                names = [e for e, _ in split_data_path(value)]
                prefixes = ["/" + "/".join(names[: i + 1]) for i in range(len(names))]
                leaf = [(name, {k: "" for k in keys.get(path, ())}) for name, path in zip(names, prefixes, strict=True)]
                metric = metric_name(value, series_name(leaf))
                if metric is not None:
                    labels = (*(k for k, _ in series_labels(leaf)), "source")
                    rows.append((value[len(top) + 1:], f"{prefix}_{metric.sample}", metric.kind, labels))

    walk(qtel.telemetry, {})
    return rows
