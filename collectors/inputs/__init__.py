"""Inputs: where updates come from (gNMI subscriptions to agents, and a NATS
JetStream stream written by other collectors).

An input calls `Pipeline.ingest(list[Update])` with batches of updates (one gNMI Notification is a
natural batch; bigger is cheaper), `Pipeline.target_status(TargetStatus)` when a target's session
changes, and `Pipeline.ingest_alarms(list[Alarm])` for alarms raised elsewhere. Inputs that
collect from targets also implement `targets.TargetInput` (told which targets to collect).
"""

from __future__ import annotations

import importlib
from typing import Any

BUILTIN: dict[str, str] = {
    "nats": "qstrata.collectors.inputs.nats:NatsInput",
    "gnmi": "qstrata.collectors.inputs.gnmi:GnmiInput",
}


def create(kind: str, **options: Any) -> Any:
    target = BUILTIN.get(kind)
    if target is None:
        raise ValueError(f"unknown input {kind!r}; known: {', '.join(sorted(BUILTIN))}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)(**options)
