"""What the collector of `qstrata up` collects: one gNMI target per agent, read from the network
it just started, with subscriptions that keep the status table and the alarm rules current.

The agents are reached the way any collector reaches them: in one process through the gNMI
gateway's single port (``gnmi-target`` = the agent's name picks it), with `--processes` on each
agent's own port, over TLS with the CA the agent (or the gateway) wrote, logging in with the
agent's credentials.json. Nothing reads the agents' datastores directly, so both modes behave
the same and the telemetry is what an external `qstrata collect` would see.

Subscriptions: the collector's per-kind default paths (`DEFAULT_SUBSCRIPTIONS`: the whole ETSI
node and the service stratum's key store; the QFS node; the switch's cross-connects and port
power), which hold every leaf the table and the built-in alarm read -- QKD link status, skr, QBER,
key stored; QFS link status, generation rate, fidelity; cross-connects -- and the node identities
normalization keys the links by. The mode is TARGET_DEFINED rather than the default 10 s SAMPLE:
the agent then samples the numeric state leaves (rates, QBER, fidelity, stored bits) every second
and sends status, identities and cross-connects on change, so the 1 s table and the QBER alarm
react within about a second while a quiet leaf costs nothing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from qstrata.collectors.config import DEFAULT_SUBSCRIPTIONS
from qstrata.collectors.model import Alarm, alarm_id
from qstrata.collectors.processors.alarms import UnreachableRule

if TYPE_CHECKING:
    from .hosting import HostedAgent

MODE = "target-defined"


def subscriptions_of(kind: str) -> list[dict[str, Any]]:
    """The subscriptions of an agent of `kind`, in the collector YAML's shape."""
    paths = DEFAULT_SUBSCRIPTIONS.get(kind)
    return [{"paths": list(paths), "mode": MODE}] if paths else []


def target_of(hosted: HostedAgent, insecure: bool) -> dict[str, Any]:
    """One `targets:` entry of the collector YAML for a running agent. An agent without gNMI
    (an installation without the gNMI agent) is still listed, NETCONF only, so actions reach it."""
    e = hosted.endpoint
    entry: dict[str, Any] = {"name": e.name, "kind": e.kind, "credentials-file": e.credentials,
                             "netconf": f"{e.netconf.host}:{e.netconf.port}"}
    if e.gnmi is None:
        entry["protocol"] = "netconf"
        entry["subscriptions"] = []
        return entry
    entry.update({"address": e.gnmi.host, "port": e.gnmi.port, "gnmi-target": e.gnmi.target,
                  "subscriptions": subscriptions_of(e.kind)})
    if e.gnmi.ca:
        entry["tls-ca"] = e.gnmi.ca
    elif insecure:
        entry["insecure"] = True
    return entry


def targets_of(agents: list[HostedAgent], insecure: bool) -> list[dict[str, Any]]:
    return [target_of(h, insecure) for h in agents]


class ProcessAlarms:
    """With `--processes`, `up` knows the moment an agent's process dies: it raises the collector's
    agent-unreachable alarm for that agent then, with the supervisor's words ("agent alice (pid
    123) was killed by SIGKILL after 40.2 s"), and clears it when the agent serves again (the
    clear keeps the cause: "...; agent alice is back (pid 456, restart 1)"). The rule's delay is there for network blips, and a dead process is none; a restart takes about
    two seconds, less than the delay, so without this the store would never learn of it.

    Raised through the collector's pipeline (`ingest_alarms`), so the store, Prometheus and the
    dashboard have it like any alarm; only for agents an unreachable-for rule watches, with that
    rule's name and severity (its own raise, if the agent stays away longer, is another row)."""

    def __init__(self, collector: Any) -> None:
        self.collector = collector
        self.active: dict[str, Alarm] = {}

    def __call__(self, agent: str, down: bool, text: str) -> None:
        now = time.time_ns()
        if not down:
            raised = self.active.pop(agent, None)
            if raised is not None:
                self.collector.pipeline.ingest_alarms([dataclasses.replace(
                    raised, cleared_ns=max(now, raised.raised_ns), text=f"{raised.text}; {text}")])
            return
        rule = self._rule(agent)
        if rule is None or agent in self.active:
            return
        alarm = self.active[agent] = Alarm(alarm_id(agent, rule.name, ""), agent, "", rule.severity, now, None,
                                           f"{rule.name}: {text}", rule.name)
        self.collector.pipeline.ingest_alarms([alarm])

    def _rule(self, agent: str) -> UnreachableRule | None:
        return next((r for r in self.collector.alarms.rules
                     if isinstance(r, UnreachableRule) and (r.targets is None or agent in r.targets)), None)
