"""Operator views of the telemetry plane, read from the series registry (pure: series in, rows out).

One place turns the collector's normalized series into what an operator looks at -- one row per
(QKD or entanglement link, reporting agent) with its status, rates, QBER, fidelity and stored key,
each optical switch's cross-connects, and one row per key delivery application (ETSI GS QKD 014:
the key it gets against the key its route makes), and one row per memory node serving entangled
pairs (qstrata-ss ENTANGLED-STATE units: admitted, refused, expired, pairs delivered and their
fidelity) -- so the status table of `qstrata up` and the
web dashboard show the same numbers, computed once, from the same latest values Prometheus
exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TEL = "/qstrata-telemetry:telemetry"
QKD_PREFIX = TEL + "/qkd-links/qkd-link["
QFS_PREFIX = TEL + "/qfs-links/qfs-link["
CROSS_CONNECT_PREFIX = "/optical-switch:cross-connects/pair["
APP_PREFIX = TEL + "/key-delivery/application["
REFUSED_PREFIX = TEL + "/key-delivery/refused["
HOP_PREFIX = TEL + "/key-relay/hop["
PAIRS_PREFIX = "/qstrata-ss:service-stratum/entanglement-requests/"
"""A memory node's entangled-state request counters (raw series: the agent's own path)."""
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


@dataclass
class DeliveryRow:
    """One application (a master SAE and its slaves) as the KMEs that serve it report it. The
    figures are its master's KME's (enc_keys: the keys the pair gets); refusals are every KME's."""

    app_id: str
    master: str = ""
    slaves: list[str] = field(default_factory=list)
    agent: str = ""
    """The reporting agent whose figures are shown: the master's KME's (it reports the route)."""
    route: list[str] = field(default_factory=list)
    """Agents (or KME ids when no agent reports them) from the master's KME to the slaves'."""
    hops: list[list[str]] = field(default_factory=list)
    """[agent, QKD link id] of the route's hops, in order: the KME that takes the hop's key and
    its link (the hops the KMEs have reported)."""
    keys_per_s: float | None = None
    bits_per_s: float | None = None
    latency_s: float | None = None
    delivered_keys: float | None = None
    delivered_bits: float | None = None
    requests: float | None = None
    refused: dict[str, float] = field(default_factory=dict)
    key_rate: float | None = None
    """Key made for it: the smallest secret key rate of the links on its route (b/s)."""
    updated_ns: int = 0


DELIVERY_LEAVES = {
    "delivered-keys-per-second": "keys_per_s", "delivered-bits-per-second": "bits_per_s", "latency-seconds": "latency_s",
    "delivered-keys": "delivered_keys", "delivered-bits": "delivered_bits", "requests": "requests",
}
"""qstrata-telemetry key-delivery/application leaf -> `DeliveryRow` field."""


@dataclass
class PairRow:
    """One memory node's entangled-state service: the units requested there and the pairs they got."""

    agent: str
    admitted: float | None = None
    rejected: float | None = None
    expired: float | None = None
    pairs_delivered: float | None = None
    fidelity_mean: float | None = None
    last_fidelity: float | None = None
    failures: dict[str, float] = field(default_factory=dict)
    """Units failed or expired, by link-layer error (UNSUPP, NOTIME, NORES, TIMEOUT, REJECTED, EXPIRE)."""
    updated_ns: int = 0


PAIR_LEAVES = {"admitted": "admitted", "rejected": "rejected", "expired": "expired",
               "pairs-delivered": "pairs_delivered", "fidelity-mean": "fidelity_mean", "last-fidelity": "last_fidelity"}
"""qstrata-ss entanglement-requests leaf -> `PairRow` field."""


def is_view_series(path: str) -> bool:
    """Whether a series feeds `link_rows`, `cross_connects`, `delivery_rows` or `pair_rows` (lets
    callers cache the few that do)."""
    return path.startswith((QKD_PREFIX, QFS_PREFIX, APP_PREFIX, REFUSED_PREFIX, HOP_PREFIX, PAIRS_PREFIX)) or (
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


def delivery_rows(series: Iterable[Any]) -> list[DeliveryRow]:
    """One row per application, sorted by master, slaves and id, from series objects with target,
    path, value, ts (the same as `link_rows` reads)."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    refused: dict[str, dict[str, float]] = {}
    hops: dict[tuple[str, str], str] = {}
    rates: dict[tuple[str, str], float] = {}
    names: dict[str, str] = {}
    stamps: dict[tuple[str, str], int] = {}
    for s in series:
        path, value = s.path, s.value
        if value is None:
            continue
        keys = dict(_KEY.findall(path))
        if "node" in keys and s.target:
            names.setdefault(keys["node"], s.target)
        leaf = path.rsplit("/", 1)[-1]
        if path.startswith(APP_PREFIX):
            entry = (keys.get("app-id", "?"), s.target)
            entries.setdefault(entry, {"node": keys.get("node", "")})[leaf] = value
            stamps[entry] = max(stamps.get(entry, 0), getattr(s, "ts", 0) or 0)
        elif path.startswith(REFUSED_PREFIX) and leaf == "requests":
            reasons = refused.setdefault(keys.get("app-id", "?"), {})
            reasons[keys.get("reason", "?")] = reasons.get(keys.get("reason", "?"), 0) + float(value)
        elif path.startswith(HOP_PREFIX) and leaf == "next-hop":
            hops[(keys.get("node", ""), str(value))] = keys.get("link-id", "")
        elif path.startswith(QKD_PREFIX) and leaf == "secret-key-rate":
            rates[(keys.get("node", ""), keys.get("link-id", ""))] = float(value)
    apps: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (app_id, agent), leaves in entries.items():
        apps.setdefault(app_id, []).append((agent, leaves))
    rows = []
    for app_id, reports in apps.items():
        if not any("requests" in leaves for _, leaves in reports):
            continue  # an ETSI application no KME has answered a request of (or none of key delivery)
        # the master's KME reports the route; before any key went through, the busiest KME
        agent, leaves = max(reports, key=lambda r: (bool(r[1].get("route")), float(r[1].get("requests", 0))))
        row = DeliveryRow(app_id, str(leaves.get("master-sae", "")), str(leaves.get("slave-saes", "")).split(),
                          agent, refused=refused.get(app_id, {}), updated_ns=stamps[(app_id, agent)])
        for leaf, name in DELIVERY_LEAVES.items():
            if leaf in leaves:
                setattr(row, name, float(leaves[leaf]))
        nodes = str(leaves.get("route", "")).split()
        row.route = [names.get(n, n[:8]) for n in nodes]
        pairs = list(zip(nodes, nodes[1:], strict=False))
        row.hops = [[names.get(pair[0], pair[0][:8]), hops[pair]] for pair in pairs if pair in hops]
        made = [rates.get((pair[0], hops[pair])) if pair in hops else None for pair in pairs]
        if made and None not in made:
            row.key_rate = min(made)  # type: ignore[type-var]
        rows.append(row)
    return sorted(rows, key=lambda r: (r.master, r.slaves, r.app_id))


def pair_rows(series: Iterable[Any]) -> list[PairRow]:
    """One row per memory node that reports entangled-state requests, sorted by agent."""
    rows: dict[str, PairRow] = {}
    for s in series:
        path, value = s.path, s.value
        if value is None or not path.startswith(PAIRS_PREFIX):
            continue
        row = rows.get(s.target)
        if row is None:
            row = rows[s.target] = PairRow(s.target)
        leaf = path.rsplit("/", 1)[-1]
        if path.startswith(PAIRS_PREFIX + "failure[") and leaf == "count":
            row.failures[dict(_KEY.findall(path)).get("reason", "?")] = float(value)
        elif leaf in PAIR_LEAVES:
            setattr(row, PAIR_LEAVES[leaf], float(value))
        else:
            continue
        row.updated_ns = max(row.updated_ns, getattr(s, "ts", 0) or 0)
    return sorted(rows.values(), key=lambda r: r.agent)


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
