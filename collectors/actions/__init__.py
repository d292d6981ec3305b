"""Actions an alarm can trigger: an interface, a registry, one file each.

An action is configured once (`ActionConfig`) and run for alarms by the action processor
(`qstrata.collectors.processors.actions`), which rate-limits and logs every run. `run` returns a
short description of what it did and raises `ActionError` (a one-line message) when it failed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from xml.sax.saxutils import escape

from ..plugins import load

if TYPE_CHECKING:
    from ..config import TargetConfig
    from ..model import Alarm


class ActionError(Exception):
    """An action failed; the message says how (logged, counted, never raised further)."""


@dataclass(frozen=True)
class ActionConfig:
    name: str
    kind: str
    on: frozenset[str] = frozenset({"raise"})
    """Alarm transitions that trigger it: 'raise', 'clear'."""
    rate_limit: tuple[int, float] = (10, 60.0)
    """At most N runs per this many seconds (a token bucket); runs beyond are skipped and logged."""
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class Action(Protocol):
    async def run(self, alarm: Alarm) -> str: ...


BUILTIN: dict[str, str] = {
    "webhook": "qstrata.collectors.actions.webhook:WebhookAction",
    "netconf": "qstrata.collectors.actions.netconf:NetconfAction",
}


def create(config: ActionConfig, resolve_target: Any = None) -> Action:
    return load(BUILTIN, config.kind, "action")(config, resolve_target)


def template_fields(alarm: Alarm) -> dict[str, str]:
    """What a template may use: the alarm's fields and the labels of the series that raised it
    (``{link_id}``, ``{node}``, ``{memory_id}``...)."""
    fields = {k: v for k, v in alarm.labels}
    fields.update(agent=alarm.agent, resource=alarm.resource, alarm_id=alarm.alarm_id, rule=alarm.rule,
                  severity=alarm.severity.rsplit(":", 1)[-1], state=alarm.state, text=alarm.text)
    return fields


def render(template: str, alarm: Alarm, *, xml: bool = False) -> str:
    fields = template_fields(alarm)
    if xml:
        fields = {k: escape(v, {'"': "&quot;", "'": "&apos;"}) for k, v in fields.items()}
    try:
        return template.format_map(fields)
    except KeyError as exc:
        raise ActionError(f"template field {{{exc.args[0]}}} is not known for this alarm "
                          f"(known: {', '.join(sorted(fields))})") from None


def placeholders(template: str) -> list[str]:
    """Field names a template uses; ValueError when it is not a valid format string."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def target_config(resolve_target: Any, name: str) -> TargetConfig | None:
    return resolve_target(name) if resolve_target is not None else None
