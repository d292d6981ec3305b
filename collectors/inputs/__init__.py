"""Inputs: where updates come from (gNMI subscriptions to agents, and a NATS
JetStream stream written by other collectors).

An input calls `Pipeline.ingest(list[Update])` with batches of updates (one gNMI Notification is a
natural batch; bigger is cheaper), `Pipeline.target_status(TargetStatus)` when a target's session
changes, and `Pipeline.ingest_alarms(list[Alarm])` for alarms raised elsewhere. Inputs that
collect from targets also implement `targets.TargetInput` (told which targets to collect).
"""

from __future__ import annotations

from typing import Any

from ..plugins import load

BUILTIN: dict[str, str] = {
    "nats": "qstrata.collectors.inputs.nats:NatsInput",
    "gnmi": "qstrata.collectors.inputs.gnmi:GnmiInput",
}


def create(kind: str, **options: Any) -> Any:
    return load(BUILTIN, kind, "input")(**options)
