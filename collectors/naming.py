"""Series names and labels from data paths, the way gnmic and Telegraf name gNMI data.

The name is the path without keys, module prefixes dropped, elements joined by ``_`` (and any
character Prometheus does not allow replaced by ``_``); list keys become labels named after the
key. Two lists on one path may use the same key name (``port[name]/lane[name]``): the first
keeps the plain name, later ones are prefixed with their list's name (``lane_name``), and
``source`` (the agent label every series carries) is never taken by a key.
"""

from __future__ import annotations

import re

from qstrata.bindings.paths import split_data_path

RESERVED_LABELS = frozenset({"source", "__name__"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def sanitize(text: str) -> str:
    """A Prometheus-safe name: letters, digits and ``_``, not starting with a digit."""
    out = _UNSAFE.sub("_", text)
    return "_" + out if out[:1].isdigit() else out


def local_name(element: str) -> str:
    """``etsi-qkd-sdn-node:qkd_node`` -> ``qkd_node``."""
    return element.rsplit(":", 1)[-1]


def series_name(elements: list[tuple[str, dict[str, str]]]) -> str:
    """``qkd_node_qkd_links_qkd_link_qkdl_performance_skr`` (no prefix)."""
    return sanitize("_".join(local_name(name) for name, _ in elements))


def series_labels(elements: list[tuple[str, dict[str, str]]]) -> tuple[tuple[str, str], ...]:
    """List keys as (label, value) in path order; names unique and never ``source``."""
    labels: list[tuple[str, str]] = []
    used: set[str] = set(RESERVED_LABELS)
    for name, keys in elements:
        for key, value in keys.items():
            label = sanitize(key)
            if label in used:
                label = sanitize(f"{local_name(name)}_{key}")
            base, n = label, 2
            while label in used:
                label, n = f"{base}_{n}", n + 1
            used.add(label)
            labels.append((label, value))
    return tuple(labels)


def name_and_labels(path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Both at once from a data path with keys."""
    elements = split_data_path(path)
    return series_name(elements), series_labels(elements)
