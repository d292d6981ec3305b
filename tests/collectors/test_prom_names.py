"""Prometheus names from YANG, table-driven, and collectors/README.md's table of every
qstrata-telemetry leaf's metric kept true to the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from qstrata.collectors.prom_names import metric_name, telemetry_metrics

README = Path(__file__).resolve().parents[2] / "collectors" / "README.md"
TEL = "/qstrata-telemetry:telemetry"


@pytest.mark.parametrize("schema_path,name,expected", [
    (f"{TEL}/qkd-links/qkd-link/secret-key-rate", "telemetry_qkd_links_qkd_link_secret_key_rate",
     ("telemetry_qkd_links_qkd_link_secret_key_rate_bits_per_second", "gauge", 1.0, 1.0)),
    (f"{TEL}/qkd-links/qkd-link/qber", "q", ("q_ratio", "gauge", 1.0, 1.0)),
    (f"{TEL}/switch-ports/switch-port/optical-power", "p", ("p_dbm", "gauge", 1.0, 1.0)),
    (f"{TEL}/key-delivery/application/latency-seconds", "x_latency_seconds", ("x_latency_seconds", "gauge", 1.0, 1.0)),
    (f"{TEL}/key-delivery/application/delivered-bits", "x_delivered_bits", ("x_delivered_bits_total", "counter", 1.0, 1.0)),
    ("/qstrata-qfs:qfs-node/entanglement-links/link/cutoff-time", "c", ("c_seconds", "gauge", 1.0, 1e9)),
    ("/qstrata-ss:service-stratum/kme/key-delivery/latency-sum", "l", ("l_seconds_total", "counter", 1.0, 1e6)),
    ("/qstrata-qfs:qfs-node/entanglement-links/link/attempts", "a", ("a_total", "counter", 1.0, 1.0)),
    ("/vendor-x:box/sensor/value", "box_sensor_value", ("box_sensor_value", "gauge", 1.0, 1.0)),
    ("/optical-switch:opm-power/port/port-id", "k", None),  # a key: a label, never a sample
    ("/etsi-qkd-sdn-node:qkd_node/qkd_interfaces/qkd_interface/qkdi_id", "k", None),
    ("/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link/qkdl_local/qkdi_id", "k", None),  # an id as a value
    ("/qstrata-qfs:qfs-node/entanglement-links/link/local-memory", "k", None),  # a leafref
    (f"{TEL}/qkd-links/qkd-link/status", "s", None),  # a string
    # a number that names a port measures nothing (the switch's portFormat, a plain uint32 `port`)
    ("/optical-switch:cross-connects/pair/egress", "e", None),
    ("/etsi-qkd-sdn-node:qkd_node/qkd_interfaces/qkd_interface/qkdi_att_point/port", "p", None),
    ("/qstrata-qfs:qfs-node/entanglement-links/link/switch-port/port", "p", None),
    ("/optical-switch:voa/port/reference-port", "p", None),
    ("/qstrata-optical-switch:switch-characteristics/port-count", "n", ("n", "gauge", 1.0, 1.0)),  # a measure
    # a unit already in the leaf's name is not appended again
    ("/qstrata-ss:service-stratum/kme/key-delivery/bits-delivered", "kme_key_delivery_bits_delivered",
     ("kme_key_delivery_bits_delivered_total", "counter", 1.0, 1.0)),
])
def test_metric_names(schema_path, name, expected):
    metric = metric_name(schema_path, name)
    assert (None if metric is None else (metric.sample, metric.kind, metric.scale, metric.divisor)) == expected


def test_readme_maps_every_telemetry_leaf_to_its_metric():
    text = README.read_text()
    rows = telemetry_metrics()
    assert len(rows) > 35
    for leaf, metric, kind, labels in rows:
        row = f"| `{leaf}` | `{metric}` | {kind} | {', '.join(f'`{x}`' for x in labels)} |"
        assert row in text, row


def test_no_metric_name_carries_its_unit_twice():
    """Every numeric leaf of every module the agents serve, through the name builder."""
    import libyang
    from qstrata.bindings.schema import get_schema
    from qstrata.collectors.naming import series_name

    units = ("bits_per_second", "bits", "bytes", "seconds", "meters", "ratio", "dbm", "keys_per_second",
             "pairs_per_second")
    names = []
    stack = [n for m in get_schema().ctx for n in _children(m)]
    while stack:
        node = stack.pop()
        if node.nodetype() in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST):
            path = node.schema_path()
            metric = metric_name(path, series_name([(e, {}) for e in path.strip("/").split("/")]))
            if metric is not None:
                names.append(metric.family)
        else:
            stack.extend(_children(node))
    assert len(names) > 100
    doubled = [n for n in names for u in units if f"_{n}_".count(f"_{u}_") > 1]
    assert not doubled, doubled


def _children(node):
    try:
        return list(node.children())
    except Exception:  # noqa: BLE001 (a module or node without data children)
        return []
