"""Operator views of the telemetry plane, read from the series registry (pure: series in, rows out).

One place turns the collector's normalized series into what an operator looks at -- one row per
(QKD or entanglement link, reporting agent) with its status, rates, QBER, fidelity and stored key,
and each optical switch's cross-connects -- so the status table of `qstrata up` and the web
dashboard show the same numbers, computed once, from the same latest values Prometheus exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TEL = "/qstrata-telemetry:telemetry"
QKD_PREFIX = TEL + "/qkd-links/qkd-link["
QFS_PREFIX = TEL + "/qfs-links/qfs-link["
CROSS_CONNECT_PREFIX = "/optical-switch:cross-connects/pair["
_KEY = re.compile(r"\[([\w-]+)='([^']*)'\]")

LINK_LEAVES = {
    "status": "status", "secret-key-rate": "rate", "generation-rate": "rate", "effective-key-rate": "effective_rate",
    "qber": "qber", "fidelity": "fidelity", "key-available": "key_available",
}
"""qstrata-telemetry leaf -> `LinkRow` field."""


@dataclass
class LinkRow:
    kind: str
    """'qkd' or 'qfs'."""
    link_id: str
    agent: str
    node: str = ""
    """The reporting node's identity (qkdn_id, kme-id or QFS uuid): the series' `node` key."""
    status: str = "-"
    rate: float | None = None
    """Secret key rate (b/s) or entanglement generation rate (Hz)."""
    effective_rate: float | None = None
    qber: float | None = None
    fidelity: float | None = None
    key_available: float | None = None
    updated_ns: int = 0
    """Timestamp of the newest value in the row (the agent's clock)."""


def is_view_series(path: str) -> bool:
    """Whether a series feeds `link_rows` or `cross_connects` (lets callers cache the few that do)."""
    return path.startswith((QKD_PREFIX, QFS_PREFIX)) or (
        path.startswith(CROSS_CONNECT_PREFIX) and path.endswith("/egress"))


def short_identity(identity: Any) -> str:
    """``etsi-qkd-node-types:ACTIVE`` -> ``ACTIVE``."""
    return str(identity).rsplit(":", 1)[-1] if identity is not None else "-"


def link_rows(series: Iterable[Any]) -> list[LinkRow]:
    """One row per (kind, link id, agent), sorted, from series objects with target, path, value, ts."""
    links: dict[tuple[str, str, str], LinkRow] = {}
    for s in series:
        path, value = s.path, s.value
        if value is None or not path.startswith((QKD_PREFIX, QFS_PREFIX)):
            continue
        kind = "qkd" if path.startswith(QKD_PREFIX) else "qfs"
        keys = dict(_KEY.findall(path))
        link_id = keys.get("link-id", "?")
        row = links.get((kind, link_id, s.target))
        if row is None:
            row = links[(kind, link_id, s.target)] = LinkRow(kind, link_id, s.target, keys.get("node", ""))
        field_name = LINK_LEAVES.get(path.rsplit("/", 1)[-1])
        if field_name is None:
            continue
        setattr(row, field_name, short_identity(value) if field_name == "status" else float(value))
        row.updated_ns = max(row.updated_ns, getattr(s, "ts", 0) or 0)
    return sorted(links.values(), key=lambda r: (r.kind, r.link_id, r.agent))


def cross_connects(series: Iterable[Any]) -> dict[str, dict[int, int]]:
    """Each switch's cross-connects, ingress -> egress, from `/optical-switch:cross-connects`."""
    pairs: dict[str, dict[int, int]] = {}
    for s in series:
        path = s.path
        if s.value is None or not path.startswith(CROSS_CONNECT_PREFIX) or not path.endswith("/egress"):
            continue
        ingress = int(dict(_KEY.findall(path)).get("ingress", 0))
        pairs.setdefault(s.target, {})[ingress] = int(s.value)
    return pairs


def si(value: float | None, unit: str = "") -> str:
    """A rate or an amount for people: ``4.22 Mb/s``, ``46.48 kb``, ``2 Hz``; ``-`` when unknown."""
    if value is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def percent(value: float | None) -> str:
    """A ratio as a percentage with two decimals (QBER); ``-`` when unknown."""
    return "-" if value is None else f"{value * 100:.2f}%"
