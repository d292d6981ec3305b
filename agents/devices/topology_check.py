"""Check a topology document before anything is built from it, and say where it is wrong.

`parse` trusts its input; this module does not. Every problem is an `Issue` carrying the YAML
path (``fibres[2].length_km``) and what is wrong, so `qstrata up` can refuse a file with one clear
line per problem instead of a traceback from deep inside the world. Pure: no I/O.

What is checked: every key of every entry is one its reader knows (`topology_keys`; a misspelt key
is named with the key it probably was, and the key it stands for is not reported missing as well;
references to a misspelt section are not checked); the document's shape and types; node names
(unique, usable as directory and gNMI target names) and kinds; fixed agent ports (`netconf_port`,
`gnmi_port`: in range, not used twice); the nodes' own entries (QKD interfaces and parameters,
memories, switch ports and cross-connects); fibres (unique ids, non-negative length and losses,
both ends on a known node, a switch port that exists, no port holding two fibres, not both ends on
the same port); classical channels (a known fibre, launched from one of its ends).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from qstrata.bindings.checking import ShapeChecker, kind_of
from qstrata.bindings.spelling import close_match, hint, unknown

from .physics import finite_key
from .physics.qkd import PARAMETER_SETS, DecoyBB84Parameters
from .qkd_link import ESTIMATORS
from .topology_keys import (
    ATT_POINT,
    CHANNEL,
    CROSS_CONNECT,
    FIBRE,
    FIBRE_END,
    MEMORY,
    NODE,
    NODE_KINDS,
    QKD_INTERFACE,
    SWITCH_PORT,
    TOP,
    Keys,
)

KINDS = tuple(NODE_KINDS)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
AGENT_PORT_KEYS = ("netconf_port", "gnmi_port")
QKD_PARAMETERS = Keys("QKD parameter set", "base", *(f.name for f in dataclasses.fields(DecoyBB84Parameters)))
"""A QKD parameter mapping: a named set (`base`) and the fields of it that it overrides, as
qkd_twin.qkd_parameters reads it (derived from the parameters' dataclass, not listed)."""
NUMERIC_PARAMETERS = frozenset(f.name for f in dataclasses.fields(DecoyBB84Parameters) if f.name != "name")


@dataclass(frozen=True, slots=True)
class Issue:
    path: str
    """YAML path of the offending value, e.g. ``fibres[2].length_km`` (empty: the document)."""
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top)'}: {self.message}"


class Checker(ShapeChecker):
    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self._meant: dict[str, set[str]] = {}
        """entry path -> the known keys its misspelt keys probably were."""

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def keys(self, entry: Mapping, path: str, *known: Keys, what: str = "key") -> None:
        """Every key of `entry` that none of `known` declares is a problem at its own path, with
        the known key it is closest to; those guesses keep `missing` from reporting them again."""
        names = [k for keys in known for k in keys.keys]
        for key in entry:
            if key in names:
                continue
            self.add(f"{path}.{key}" if path else str(key), unknown(key, names, what))
            guess = close_match(str(key), names)
            if guess is not None:
                self._meant.setdefault(path, set()).add(guess)

    def entries(self, value: Any, path: str, *known: Keys) -> Iterator[tuple[str, dict]]:
        """(``PATH[i]``, mapping) of each item of the list `value` at `path` that is a mapping (the
        others are problems), its keys checked against `known` when given."""
        for i, item in enumerate(self.listing(value, path)):
            at = f"{path}[{i}]"
            entry = self.mapping(item, at)
            if entry is not None:
                if known:
                    self.keys(entry, at, *known)
                yield at, entry

    def guessed(self, path: str, key: str) -> bool:
        """Whether a misspelt key of the entry at `path` was probably `key`."""
        return key in self._meant.get(path, ())

    def missing(self, path: str, key: str, what: str = "") -> None:
        """A required key is absent -- unless a misspelling of it was already reported."""
        if not self.guessed(path, key):
            self.add(path, f"missing field {key!r}" + (f" ({what})" if what else ""))

    def name(self, entry: dict, key: str, path: str, what: str) -> str | None:
        if key not in entry:
            self.missing(path, key, what)
            return None
        value = entry[key]
        if not isinstance(value, str) or not NAME.match(value):
            self.add(f"{path}.{key}", f"expected {what} ([A-Za-z0-9][A-Za-z0-9._-]*), got {value!r}")
            return None
        return value

    def number(self, entry: dict, key: str, path: str, *, required: bool = False, minimum: float | None = None,
               positive: bool = False, keys: Keys | None = None) -> float | None:
        """`entry[key]` as a number; `keys`: the entry's `Keys`, when the checker is also its reader."""
        if key not in entry:
            if required:
                self.missing(path, key)
            return None
        value = keys.get(entry, key) if keys is not None else entry[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{path}.{key}", f"expected a number, got {kind_of(value)} {value!r}")
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
            self.add(path, f"expected an integer, got {kind_of(value)} {value!r}")
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
    c.keys(top, "", TOP, what="section")

    def misspelt(section: str) -> bool:
        """The section is absent because its name is misspelt: references into it prove nothing."""
        return section not in top and c.guessed("", section)

    if "name" in top and not isinstance(top["name"], str):
        c.add("name", f"expected a string, got {kind_of(top['name'])}")
    if "seed" in top and (isinstance(top["seed"], bool) or not isinstance(top["seed"], int)):
        c.add("seed", f"expected an integer, got {kind_of(top['seed'])} {top['seed']!r}")
    if "qkd_parameters" in top:
        _parameters(c, top["qkd_parameters"], "qkd_parameters")
    if top.get("gnmi_gateway_port") is not None:
        c.integer(top["gnmi_gateway_port"], "gnmi_gateway_port", 0, 65535)
    if "nodes" not in top:
        c.missing("", "nodes", "the devices of the network")
    nodes = _nodes(c, top.get("nodes"))
    fibres = _fibres(c, top.get("fibres"), None if misspelt("nodes") else nodes)
    _channels(c, top.get("classical_channels"), None if misspelt("fibres") else fibres)
    return c.issues


def _nodes(c: Checker, raw: Any) -> dict[str, dict]:
    """name -> node entry, for the nodes that are well formed."""
    nodes: dict[str, dict] = {}
    ports: dict[int, str] = {}
    for at, entry in c.entries(raw, "nodes"):
        kind = entry.get("kind")
        own = (NODE_KINDS[kind],) if kind in KINDS else tuple(NODE_KINDS.values())
        c.keys(entry, at, NODE, *own)
        name = c.name(entry, "name", at, "a node name")
        if "kind" not in entry:
            c.missing(at, "kind", "qkd, memory or switch")
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
        if kind == "qkd":
            _qkd_node(c, entry, at)
        elif kind == "memory":
            _memory_node(c, entry, at)
        elif kind == "switch":
            _switch_node(c, entry, at)
        if name is None:
            continue
        if name in nodes:
            c.add(f"{at}.name", f"node {name} is defined twice")
            continue
        if kind in KINDS:
            nodes[name] = entry
    return nodes


def _entries(c: Checker, entry: dict, key: str, at: str, keys: Keys) -> list[tuple[str, dict]]:
    """(path, mapping) of each item of the list `entry[key]`, its keys checked against `keys`."""
    return list(c.entries(entry.get(key), f"{at}.{key}", keys))


def _qkd_node(c: Checker, entry: dict, at: str) -> None:
    for where, spec in _entries(c, entry, "interfaces", at, QKD_INTERFACE):
        if "id" not in spec:
            c.missing(where, "id", "the qkdi_id")
        else:
            c.integer(spec["id"], f"{where}.id", 1)
        if spec.get("att_point") is not None:
            point = c.mapping(spec["att_point"], f"{where}.att_point")
            if point is not None:
                c.keys(point, f"{where}.att_point", ATT_POINT)
        if spec.get("max_absorption") is not None:  # null: the interface states none
            c.number(spec, "max_absorption", where, minimum=0)
    if "parameters" in entry:
        _parameters(c, entry["parameters"], f"{at}.parameters")
    for key in ("relock_s", "perf_interval_s", "perf_change"):
        c.number(entry, key, at, minimum=0)
    if "estimator" in entry and entry["estimator"] not in ESTIMATORS:
        c.add(f"{at}.estimator", f"expected one of {', '.join(ESTIMATORS)}, got {entry['estimator']!r}")
    if "kme" in entry and not isinstance(entry["kme"], bool):
        c.add(f"{at}.kme", f"expected true or false, got {kind_of(entry['kme'])} {entry['kme']!r}")


def _parameters(c: Checker, value: Any, at: str) -> None:
    """A QKD parameter set: a name, or a mapping of a `base` name and the fields it overrides
    (numbers, which together must make a protocol the finite-key bound can run)."""
    overrides: dict[str, float] = {}
    where = at
    if isinstance(value, dict):
        c.keys(value, at, QKD_PARAMETERS)
        for key in value:
            if key in NUMERIC_PARAMETERS:
                if isinstance(value[key], str) and _is_number(value[key]):
                    c.add(f"{at}.{key}", f"expected a number, got a string {value[key]!r} (YAML reads a "
                          "number without a dot in its mantissa as text: write 1.0e+7 or 10000000)")
                    continue
                number = c.number(value, key, at, minimum=0)
                if number is not None:
                    overrides[key] = number
        base = value.get("base", "modern")
        where = f"{at}.base"
    else:
        base = value
    if not isinstance(base, str) or base not in PARAMETER_SETS:
        c.add(where, f"unknown parameter set {base!r}{hint(base, PARAMETER_SETS)}")
        return
    for problem in finite_key.problems(dataclasses.replace(PARAMETER_SETS[base], **overrides)):
        c.add(at, problem)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _memory_node(c: Checker, entry: dict, at: str) -> None:
    for where, spec in _entries(c, entry, "memories", at, MEMORY):
        if "id" not in spec:
            c.missing(where, "id", "the memory-id")
        if "capacity" in spec:
            c.integer(spec["capacity"], f"{where}.capacity", 1)
        c.number(spec, "t1_s", where, positive=True)
        c.number(spec, "t2_s", where, positive=True)
        c.number(spec, "efficiency", where, minimum=0)


def _switch_node(c: Checker, entry: dict, at: str) -> None:
    if "ports" in entry:
        sw_ports = entry["ports"]
        if isinstance(sw_ports, list):
            for j, p in enumerate(sw_ports):
                if isinstance(p, dict):
                    c.keys(p, f"{at}.ports[{j}]", SWITCH_PORT)
                    if "id" not in p:
                        c.missing(f"{at}.ports[{j}]", "id")
                        continue
                    p = p["id"]
                c.integer(p, f"{at}.ports[{j}]", 1)
        else:
            c.integer(sw_ports, f"{at}.ports", 1)
    for where, spec in _entries(c, entry, "cross_connects", at, CROSS_CONNECT):
        for key in CROSS_CONNECT.keys:
            if key not in spec:
                c.missing(where, key)
            else:
                c.integer(spec[key], f"{where}.{key}", 1)
    c.number(entry, "insertion_loss_db", at, minimum=0)
    c.number(entry, "crosstalk_db", at)
    c.number(entry, "switching_time_us", at, minimum=0)
    if entry.get("port_labels") is not None:
        c.mapping(entry["port_labels"], f"{at}.port_labels")


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


def _fibres(c: Checker, raw: Any, nodes: dict[str, dict] | None) -> dict[str, tuple[str, str]]:
    """fibre id -> (a device, b device), for the fibres that are well formed. `nodes` None: the
    nodes are unknown (their section is misspelt), so the ends' devices are not checked."""
    fibres: dict[str, tuple[str, str]] = {}
    used: dict[tuple[str, int], str] = {}
    for at, entry in c.entries(raw, "fibres", FIBRE):
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
                c.missing(at, side, "a fibre end: {device, port}")
                continue
            end = c.mapping(entry[side], f"{at}.{side}")
            if end is None:
                continue
            where = f"{at}.{side}"
            c.keys(end, where, FIBRE_END)
            device = end.get("device")
            if "device" not in end:
                c.missing(where, "device")
            elif not isinstance(device, str):
                c.add(f"{where}.device", f"expected a node name, got {kind_of(device)} {device!r}")
                device = None
            elif nodes is not None and device not in nodes:
                c.add(f"{where}.device", f"unknown node {device!r}" + (f"; nodes: {', '.join(nodes)}" if nodes else ""))
                device = None
            if "port" not in end:
                c.missing(where, "port")
                continue
            port = c.integer(end["port"], f"{where}.port", 1)
            if device is None or port is None:
                continue
            devices.append(device)
            if nodes is None:
                continue
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


def _channels(c: Checker, raw: Any, fibres: dict[str, tuple[str, str]] | None) -> None:
    """`fibres` None: the fibres are unknown (their section is misspelt), so references to them
    are not checked."""
    seen: set[str] = set()
    for at, entry in c.entries(raw, "classical_channels", CHANNEL):
        cid = c.name(entry, "id", at, "a channel id")
        if cid is not None:
            if cid in seen:
                c.add(f"{at}.id", f"classical channel {cid} is defined twice")
            seen.add(cid)
        fibre = entry.get("fibre")
        if "fibre" not in entry:
            c.missing(at, "fibre")
        elif not isinstance(fibre, str):
            c.add(f"{at}.fibre", f"expected a fibre id, got {kind_of(fibre)} {fibre!r}")
        elif fibres is not None and fibre not in fibres:
            c.add(f"{at}.fibre", f"unknown fibre {fibre!r}")
        if "from" not in entry:
            c.missing(at, "from", "the device launching the light")
        elif fibres is not None and isinstance(fibre, str) and fibre in fibres and entry["from"] not in fibres[fibre]:
            c.add(f"{at}.from", f"{entry['from']!r} is not an end of fibre {fibre}")
        c.number(entry, "launch_power_dbm", at, required=True)
        c.number(entry, "wavelength_nm", at, positive=True)
        c.number(entry, "raman_beta_per_km_nm", at, minimum=0)
