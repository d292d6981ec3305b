"""The network's nodes and fibres, for the dashboard's topology view.

The collector does not own the topology format (agents/devices does, and collectors never import
device code), so it reads only the two lists every topology file has -- ``nodes`` (name, kind,
optional location) and ``fibres`` (id, length_km, a/b: {device, port}) -- from:

* the topology YAML itself (``qstrata collect --topology FILE``; `qstrata up` hands its collector
  the file it started the network from), or
* a testbed's endpoints.json, which names that file under ``"topology"`` (so ``--targets
  endpoints.json`` needs nothing else).

Without a topology the graph is the collected targets alone, no fibres; the logical links are
always drawn from the telemetry (the agents reporting the same link id are its ends).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml


class GraphError(ValueError):
    """``FILE: what is wrong`` -- the topology cannot be read. `issues`: the topology's own
    problems, one ``FILE: YAML.PATH: what is wrong`` line each, when a `Check` found them."""

    def __init__(self, message: str, issues: list[str] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


Check = Callable[[Any, str], list[str]]
"""(topology document, file name) -> its problems as ``FILE: YAML.PATH: what`` lines. The format's
owner checks it (`qstrata collect` is handed agents/devices' `topology.problems`), as collectors
never import device code."""


@dataclass(frozen=True)
class GraphNode:
    name: str
    kind: str
    location: str = ""


@dataclass(frozen=True)
class GraphFibre:
    id: str
    length_km: float
    a: dict[str, Any]
    b: dict[str, Any]


@dataclass
class Graph:
    name: str = ""
    nodes: list[GraphNode] = field(default_factory=list)
    fibres: list[GraphFibre] = field(default_factory=list)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "nodes": [asdict(n) for n in self.nodes],
                "fibres": [asdict(f) for f in self.fibres]}


def _end(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("device"), str):
        raise GraphError(f"{where}: wants {{device, port}}")
    port = raw.get("port")
    if isinstance(port, bool) or not isinstance(port, int):
        raise GraphError(f"{where}.port: wants an integer")
    return {"device": raw["device"], "port": port}


def graph_of(doc: Any, source: str) -> Graph:
    """A `Graph` from a topology document (the YAML's top level, already parsed)."""
    if not isinstance(doc, dict):
        raise GraphError(f"{source}: not a topology (a mapping with nodes and fibres)")
    nodes, fibres = [], []
    for i, raw in enumerate(doc.get("nodes") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise GraphError(f"{source}: nodes[{i}]: wants a mapping with a name")
        nodes.append(GraphNode(raw["name"], str(raw.get("kind", "")), str(raw.get("location", "") or "")))
    for i, raw in enumerate(doc.get("fibres") or []):
        where = f"{source}: fibres[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise GraphError(f"{where}: wants a mapping with an id")
        try:
            length = float(raw.get("length_km", 0))
        except (TypeError, ValueError):
            raise GraphError(f"{where}.length_km: wants a number") from None
        fibres.append(GraphFibre(raw["id"], length, _end(raw.get("a"), f"{where}.a"), _end(raw.get("b"), f"{where}.b")))
    return Graph(str(doc.get("name", "") or ""), nodes, fibres, source)


def load_graph(path: str | Path, check: Check | None = None) -> Graph:
    """A topology YAML, or an endpoints.json naming one (relative names: from the working
    directory, else from the endpoints file's directory); `check`ed first when given."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphError(f"{path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise GraphError(f"{path}: not JSON/YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(doc, dict) and "agents" in doc and "nodes" not in doc:  # a testbed's endpoints.json
        topology = doc.get("topology")
        if not isinstance(topology, str) or not topology:
            raise GraphError(f"{path}: names no topology file")
        candidate = Path(topology)
        if not candidate.is_absolute() and not candidate.exists():
            candidate = path.parent / candidate
        graph = load_graph(candidate, check)
        graph.name = graph.name or str(doc.get("network", ""))
        return graph
    found = check(doc, str(path)) if check is not None else []
    if found:
        raise GraphError(found[0], found)
    return graph_of(doc, str(path))
