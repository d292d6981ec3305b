"""pygnmi in its own process (its bundled gNMI stubs clash with gnmi-pb's in one process, and
users run it on its own anyway): ``python pygnmi_runner.py JSON`` with
{"host", "port", "ca", "username", "password", "ops": [...]}; prints one JSON line with a
result per op. Ops: {"op": "capabilities"}, {"op": "get", "path": [...], "encoding", "datatype"},
{"op": "set", "update": [[path, value]], "replace": [...], "delete": [...]},
{"op": "subscribe", "subscribe": {...}, "seconds": S, "max": N} (stream: updates seen within
S seconds), {"op": "once", "subscribe": {...}}, {"op": "poll", "subscribe": {...}, "polls": N}.
An error is reported as {"error": "..."} for that op."""

from __future__ import annotations

import json
import sys
import time

from pygnmi.client import gNMIclient


def run(spec: dict) -> list:
    results = []
    with gNMIclient(target=(spec["host"], spec["port"]), username=spec["username"], password=spec["password"],
                    path_cert=spec.get("ca"), insecure=spec.get("ca") is None, gnmi_timeout=10) as gc:
        for op in spec["ops"]:
            try:
                results.append(one(gc, op))
            except Exception as exc:  # the test asserts on it
                results.append({"error": f"{type(exc).__name__}: {exc}"})
    return results


def one(gc: gNMIclient, op: dict):
    kind = op["op"]
    if kind == "capabilities":
        return gc.capabilities()
    if kind == "get":
        return gc.get(path=op["path"], encoding=op.get("encoding", "json_ietf"), datatype=op.get("datatype", "all"))
    if kind == "set":
        return gc.set(update=[tuple(u) for u in op.get("update", [])] or None,
                      replace=[tuple(u) for u in op.get("replace", [])] or None, delete=op.get("delete"),
                      encoding=op.get("encoding", "json_ietf"))
    if kind == "subscribe":
        seen = []
        deadline = time.monotonic() + op["seconds"]
        stream = gc.subscribe2(subscribe=op["subscribe"])
        try:
            while time.monotonic() < deadline and len(seen) < op.get("max", 10**9):
                try:
                    seen.append(stream.get_update(timeout=max(0.1, deadline - time.monotonic())))
                except Exception as exc:  # a timeout: nothing more within the window
                    if "imeout" in type(exc).__name__ or "Empty" in type(exc).__name__:
                        break
                    raise
        finally:
            stream.close()
        return seen
    if kind == "once":
        return [r for r in gc.subscribe_once(subscribe=op["subscribe"])]
    if kind == "poll":
        out = []
        stream = gc.subscribe_poll(subscribe=op["subscribe"])
        for _ in range(op.get("polls", 1)):
            out.append(stream.get_update(timeout=10))
        stream.close()
        return out
    raise ValueError(f"unknown op {kind}")


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1])), default=str))
