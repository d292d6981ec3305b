"""Check a topology document before anything is built from it, and say where it is wrong.

`parse` trusts its input; this module does not. Every problem is an `Issue` carrying the YAML
path (``fibres[2].length_km``) and what is wrong, so `qstrata up` can refuse a file with one clear
line per problem instead of a traceback from deep inside the world. Pure: no I/O.

What is checked: the document's shape and types; node names (unique, usable as directory and
gNMI target names) and kinds; fixed agent ports (`netconf_port`, `gnmi_port`: in range, not used
twice); fibres (unique ids, non-negative length and losses, both ends on a known node, a switch
port that exists, no port holding two fibres, not both ends on the same port); classical channels
(a known fibre, launched from one of its ends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KINDS = ("qkd", "memory", "switch")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
TOP_KEYS = ("name", "nodes", "fibres", "classical_channels")
AGENT_PORT_KEYS = ("netconf_port", "gnmi_port")


@dataclass(frozen=True, slots=True)
class Issue:
    path: str
    """YAML path of the offending value, e.g. ``fibres[2].length_km`` (empty: the document)."""
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top)'}: {self.message}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__)


class Checker:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def mapping(self, value: Any, path: str) -> dict | None:
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {_kind(value)}")
            return None
        return value

    def listing(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, f"expected a list, got {_kind(value)}")
            return []
        return value

    def name(self, entry: dict, key: str, path: str, what: str) -> str | None:
        if key not in entry:
            self.add(path, f"missing field {key!r} ({what})")
            return None
        value = entry[key]
        if not isinstance(value, str) or not NAME.match(value):
            self.add(f"{path}.{key}", f"expected {what} ([A-Za-z0-9][A-Za-z0-9._-]*), got {value!r}")
            return None
        return value

    def number(self, entry: dict, key: str, path: str, *, required: bool = False, minimum: float | None = None,
               positive: bool = False) -> float | None:
        if key not in entry:
            if required:
                self.add(path, f"missing field {key!r}")
            return None
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{path}.{key}", f"expected a number, got {_kind(value)} {value!r}")
            return None
        if positive and value <= 0:
            self.add(f"{path}.{key}", f"must be positive, got {value}")
            return None
        if minimum is not None and value < minimum:
            self.add(f"{path}.{key}", f"must not be negative, got {value}" if minimum == 0
                     else f"must be at least {minimum}, got {value}")
            return None
        return float(value)

    def integer(self, value: Any, path: str, low: int, high: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {_kind(value)} {value!r}")
            return None
        if value < low or (high is not None and value > high):
            self.add(path, f"expected {low}-{high}, got {value}" if high is not None
                     else f"must be at least {low}, got {value}")
            return None
        return value


def check(doc: Any) -> list[Issue]:
    """Every problem of a topology document (the YAML file's top-level value); [] when usable."""
    c = Checker()
    top = c.mapping(doc, "")
    if top is None:
        return c.issues
    if "name" in top and not isinstance(top["name"], str):
        c.add("name", f"expected a string, got {_kind(top['name'])}")
    if "nodes" not in top:
        c.add("", "missing field 'nodes' (the devices of the network)")
    nodes = _nodes(c, c.listing(top.get("nodes"), "nodes"))
    fibres = _fibres(c, c.listing(top.get("fibres"), "fibres"), nodes)
    _channels(c, c.listing(top.get("classical_channels"), "classical_channels"), fibres)
    return c.issues


def _nodes(c: Checker, raw: list) -> dict[str, dict]:
    """name -> node entry, for the nodes that are well formed."""
    nodes: dict[str, dict] = {}
    ports: dict[int, str] = {}
    for i, item in enumerate(raw):
        at = f"nodes[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        name = c.name(entry, "name", at, "a node name")
        kind = entry.get("kind")
        if "kind" not in entry:
            c.add(at, "missing field 'kind' (qkd, memory or switch)")
        elif kind not in KINDS:
            c.add(f"{at}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        for key in AGENT_PORT_KEYS:
            if entry.get(key) is None:
                continue
            port = c.integer(entry[key], f"{at}.{key}", 1, 65535)
            if port is not None:
                if port in ports:
                    c.add(f"{at}.{key}", f"port {port} is already used by {ports[port]}")
                ports[port] = f"{name or at}.{key}"
        if kind == "switch" and "ports" in entry:
            sw_ports = entry["ports"]
            if isinstance(sw_ports, list):
                for j, p in enumerate(sw_ports):
                    c.integer(p["id"] if isinstance(p, dict) and "id" in p else p, f"{at}.ports[{j}]", 1)
            else:
                c.integer(sw_ports, f"{at}.ports", 1)
        if kind == "qkd" and "interfaces" in entry:
            for j, iface in enumerate(c.listing(entry["interfaces"], f"{at}.interfaces")):
                spec = c.mapping(iface, f"{at}.interfaces[{j}]")
                if spec is not None:
                    if "id" not in spec:
                        c.add(f"{at}.interfaces[{j}]", "missing field 'id' (the qkdi_id)")
                    else:
                        c.integer(spec["id"], f"{at}.interfaces[{j}].id", 1)
        if name is None:
            continue
        if name in nodes:
            c.add(f"{at}.name", f"node {name} is defined twice")
            continue
        if kind in KINDS:
            nodes[name] = entry
    return nodes


def _switch_ports(entry: dict) -> set[int] | None:
    raw = entry.get("ports", 16)
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return set(range(1, raw + 1))
    if isinstance(raw, list):
        found = set()
        for p in raw:
            value = p.get("id") if isinstance(p, dict) else p
            if isinstance(value, int) and not isinstance(value, bool):
                found.add(value)
        return found
    return None


def _fibres(c: Checker, raw: list, nodes: dict[str, dict]) -> dict[str, tuple[str, str]]:
    """fibre id -> (a device, b device), for the fibres that are well formed."""
    fibres: dict[str, tuple[str, str]] = {}
    used: dict[tuple[str, int], str] = {}
    for i, item in enumerate(raw):
        at = f"fibres[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        fid = c.name(entry, "id", at, "a fibre id")
        if fid is not None and fid in fibres:
            c.add(f"{at}.id", f"fibre {fid} is defined twice")
            fid = None
        c.number(entry, "length_km", at, required=True, minimum=0)
        c.number(entry, "attenuation_db_per_km", at, minimum=0)
        c.number(entry, "connector_loss_db", at, minimum=0)
        devices = []
        for side in ("a", "b"):
            if side not in entry:
                c.add(at, f"missing field {side!r} (a fibre end: {{device, port}})")
                continue
            end = c.mapping(entry[side], f"{at}.{side}")
            if end is None:
                continue
            where = f"{at}.{side}"
            device = end.get("device")
            if "device" not in end:
                c.add(where, "missing field 'device'")
            elif device not in nodes:
                c.add(f"{where}.device", f"unknown node {device!r}" + (f"; nodes: {', '.join(nodes)}" if nodes else ""))
                device = None
            if "port" not in end:
                c.add(where, "missing field 'port'")
                continue
            port = c.integer(end["port"], f"{where}.port", 1)
            if device is None or port is None:
                continue
            devices.append(device)
            if nodes[device].get("kind") == "switch":
                valid = _switch_ports(nodes[device])
                if valid is not None and port not in valid:
                    c.add(f"{where}.port", f"switch {device} has no port {port}")
                    continue
            holder = used.get((device, port))
            if holder is not None:
                c.add(f"{where}.port", f"{device} port {port} is already used by {holder}")
                continue
            used[(device, port)] = f"{at}" + (f" ({fid})" if fid else "")
        if fid is not None and len(devices) == 2:
            fibres[fid] = (devices[0], devices[1])
    return fibres


def _channels(c: Checker, raw: list, fibres: dict[str, tuple[str, str]]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(raw):
        at = f"classical_channels[{i}]"
        entry = c.mapping(item, at)
        if entry is None:
            continue
        cid = c.name(entry, "id", at, "a channel id")
        if cid is not None:
            if cid in seen:
                c.add(f"{at}.id", f"classical channel {cid} is defined twice")
            seen.add(cid)
        fibre = entry.get("fibre")
        if "fibre" not in entry:
            c.add(at, "missing field 'fibre'")
        elif fibre not in fibres:
            c.add(f"{at}.fibre", f"unknown fibre {fibre!r}")
        if "from" not in entry:
            c.add(at, "missing field 'from' (the device launching the light)")
        elif fibre in fibres and entry["from"] not in fibres[fibre]:
            c.add(f"{at}.from", f"{entry['from']!r} is not an end of fibre {fibre}")
        c.number(entry, "launch_power_dbm", at, required=True)
        c.number(entry, "wavelength_nm", at, positive=True)
