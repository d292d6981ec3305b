"""The live status table of `qstrata up`, drawn from what the collector sees.

The table is built from the collector's series registry (the latest value of every normalized
leaf, turned into rows by `qstrata.collectors.views`, which the web dashboard shares), its active alarms and its action history -- the telemetry plane, not the twins -- so what
it shows is what an operator's dashboard would show. `view_of` is pure (series in, rows out);
`render_table` and `render_line` turn a view into text; `StatusDisplay` redraws in place on a
terminal and prints a periodic one-line summary (plus every event) when the output is a file or
a pipe.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from qstrata.collectors.views import LinkRow, cross_connects, link_rows


@dataclass
class AgentRow:
    name: str
    kind: str
    netconf: str
    gnmi: str
    collected: str = "-"
    process: str = "-"
    """With --processes: pid and restarts, or DOWN and when it restarts (`supervisor.Child`)."""


@dataclass
class StatusView:
    title: str
    agents: list[AgentRow]
    links: list[LinkRow] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    """One line per switch: its cross-connects and the fibre behind each port."""
    alarms: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def view_of(title: str, agents: list[AgentRow], series: Iterable[Any], fibre_of_port: dict[tuple[str, int], str],
            alarms: Iterable[Any] = (), events: Iterable[str] = (),
            targets: dict[str, dict[str, Any]] | None = None) -> StatusView:
    """Rows from the collector's series (objects with target, path, value) and alarms."""
    series = list(series)
    pairs = cross_connects(series)
    routes = []
    for switch, table in sorted(pairs.items()):
        parts = []
        for ingress, egress in sorted(table.items()):
            fibres = [fibre_of_port.get((switch, p)) for p in (ingress, egress)]
            via = "/".join(f for f in fibres if f)
            parts.append(f"{ingress}<->{egress}" + (f" ({via})" if via else ""))
        routes.append(f"{switch}: " + (", ".join(parts) if parts else "no cross-connect"))
    alarm_lines = [f"{a.severity.rsplit(':', 1)[-1]} {a.rule} on {a.agent}: {a.text}" for a in alarms]
    for row in agents:
        t = (targets or {}).get(row.name)
        if t is not None:
            row.collected = "yes" if t.get("reachable") else "DOWN"
    return StatusView(title, agents, link_rows(series), routes, alarm_lines, list(events))


def _si(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def render_table(view: StatusView) -> list[str]:
    lines = [view.title, ""]
    lines.append(f"{'AGENT':10} {'KIND':7} {'NETCONF':22} {'GNMI':22} {'COLLECTED':10} PROCESS")
    for a in view.agents:
        lines.append(f"{a.name:10} {a.kind:7} {a.netconf:22} {a.gnmi:22} {a.collected:10} {a.process}")
    lines.append("")
    lines.append(f"{'QKD LINK':10} {'AGENT':8} {'STATUS':8} {'SKR':>12} {'QBER':>7} {'KEY STORED':>12}")
    qkd = [r for r in view.links if r.kind == "qkd"]
    for r in qkd:
        lines.append(f"{r.link_id[:8]:10} {r.agent:8} {r.status:8} {_si(r.rate, 'b/s'):>12} {_pct(r.qber):>7} "
                     f"{_si(r.key_available, 'b'):>12}")
    if not qkd:
        lines.append("(none configured)")
    lines.append("")
    lines.append(f"{'ENT. LINK':10} {'AGENT':8} {'STATUS':8} {'RATE':>12} {'FIDELITY':>9}")
    qfs = [r for r in view.links if r.kind == "qfs"]
    for r in qfs:
        fid = "-" if r.fidelity is None else f"{r.fidelity:.3f}"
        lines.append(f"{r.link_id[:8]:10} {r.agent:8} {r.status:8} {_si(r.rate, 'Hz'):>12} {fid:>9}")
    if not qfs:
        lines.append("(none configured)")
    lines.append("")
    lines += [f"ROUTE      {r}" for r in view.routes] or ["ROUTE      (no switch data yet)"]
    lines += [f"ALARM      {a}" for a in view.alarms] or ["ALARM      none"]
    lines.append("")
    lines += [f"EVENT      {e}" for e in view.events[-8:]]
    return lines


def render_line(view: StatusView) -> str:
    """One line for logs and pipes: each link once (first agent reporting it), alarms."""
    seen: set[tuple[str, str]] = set()
    parts = []
    for r in view.links:
        if (r.kind, r.link_id) in seen:
            continue
        seen.add((r.kind, r.link_id))
        if r.kind == "qkd":
            parts.append(f"qkd {r.link_id[:8]} {r.status} skr {_si(r.rate, 'b/s')} qber {_pct(r.qber)}")
        else:
            fid = "-" if r.fidelity is None else f"{r.fidelity:.3f}"
            parts.append(f"ent {r.link_id[:8]} {r.status} {_si(r.rate, 'Hz')} fidelity {fid}")
    parts += [f"route {r}" for r in view.routes]
    parts.append(f"alarms {len(view.alarms)}")
    return "status: " + " | ".join(parts)


class StatusDisplay:
    """Redraws the table in place on a terminal; elsewhere prints events as they come and a
    summary line every `line_every` seconds."""

    def __init__(self, out: IO[str] | None = None, tty: bool | None = None, line_every: float = 10.0) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.line_every = line_every
        self.events: deque[str] = deque(maxlen=50)
        self._last_line = time.monotonic()
        self.quiet = False
        """Nothing on the console (events are still kept for the table and the log)."""

    def event(self, text: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {text}"
        self.events.append(stamped)
        if not self.tty and not self.quiet:
            print(stamped, file=self.out, flush=True)

    def show(self, view: StatusView) -> None:
        if self.quiet:
            return
        if self.tty:
            self.out.write("\x1b[H\x1b[J" + "\n".join(render_table(view)) + "\n")
            self.out.flush()
            return
        now = time.monotonic()
        if now - self._last_line >= self.line_every:
            self._last_line = now
            print(f"{time.strftime('%H:%M:%S')} {render_line(view)}", file=self.out, flush=True)
