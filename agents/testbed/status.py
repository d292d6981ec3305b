"""The live status table of `qstrata up`, drawn from what the collector sees.

The table is built from the collector's series registry (the latest value of every normalized
leaf, turned into rows by `qstrata.collectors.views`, which the web dashboard shares), its active alarms and its action history -- the telemetry plane, not the twins -- so what
it shows is what an operator's dashboard would show. `view_of` is pure (series in, rows out);
`render_table` and `render_line` turn a view into text; `StatusDisplay` redraws in place on a
terminal and prints a periodic one-line summary (plus every event) when the output is a file or
a pipe.

On a terminal the table lives on the alternate screen (as `top` and `less` do) and every frame
fits the window: a frame that scrolled, or a whole-screen clear, would be pushed into the
terminal's scrollback once a second (tmux keeps every one). The endpoint lines, dashboard first,
stay at the top of every frame; leaving restores the screen with the start-up summary on it.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from qstrata.collectors.views import LinkRow, cross_connects, link_rows, percent, si


@dataclass
class AgentRow:
    name: str
    kind: str
    netconf: str
    gnmi: str
    collected: str = "-"
    process: str = "-"
    """With --processes: pid and restarts, or DOWN and when it restarts (`supervisor.Child`)."""
    kme: str = "-"
    """A QKD agent's ETSI GS QKD 014 key delivery API (host:port; its URL is https://host:port)."""


@dataclass
class KeyRow:
    """One application pair of up's built-in key delivery application (`keyapp.PairFigures`)."""

    pair: str
    via: str
    """The trusted nodes its keys go through, or ``direct``."""
    keys: int = 0
    bits: int = 0
    rate: float | None = None
    """Bits delivered per simulated second, lately."""
    refused: int = 0
    left: int | None = None
    """Key stored on its route (its smallest store), in bits."""
    last_refusal: str | None = None
    not_enough_key: bool = False
    """Its refusals include the KME's `not enough key`."""


@dataclass
class StatusView:
    title: str
    agents: list[AgentRow]
    endpoints: list[str] = field(default_factory=list)
    """Where things are (dashboard first), shown under the title of every frame."""
    links: list[LinkRow] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    """One line per switch: its cross-connects and the fibre behind each port."""
    alarms: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    keys: list[KeyRow] = field(default_factory=list)
    """Up's built-in key delivery application, one row per pair (none: no such block)."""


def view_of(title: str, agents: list[AgentRow], series: Iterable[Any], fibre_of_port: dict[tuple[str, int], str],
            alarms: Iterable[Any] = (), events: Iterable[str] = (),
            targets: dict[str, dict[str, Any]] | None = None, endpoints: Iterable[str] = (),
            keys: Iterable[KeyRow] = ()) -> StatusView:
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
    return StatusView(title, agents, list(endpoints), link_rows(series), routes, alarm_lines, list(events),
                      list(keys))


def _rows_within(rows: list[str], room: int, what: str) -> list[str]:
    """`rows`, or as many as fit in `room` lines with the last one saying how many are left out."""
    if len(rows) <= room:
        return rows
    keep = max(room - 1, 0)
    return rows[:keep] + [f"... {len(rows) - keep} more {what}"]


def _columns(titles: list[str], rows: list[list[str]], right: int = 0) -> tuple[str, list[str]]:
    """Header and rows with each column as wide as its widest entry; the columns from `right`
    on (when > 0) are right-aligned (figures)."""
    widths = [max([len(t)] + [len(r[i]) for r in rows]) for i, t in enumerate(titles)]

    def line(cells: list[str]) -> str:
        return " ".join(f"{c:>{w}}" if right and i >= right else f"{c:{w}}"
                        for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return line(titles), [line(r) for r in rows]


def _agent_rows(agents: list[AgentRow]) -> tuple[str, list[str]]:
    """The agents' header and rows, each column as wide as its widest entry, so that with the
    PROCESS column (--processes) the agents still fit an 80-column terminal: the KME column (the
    KMEs' HTTPS host:port) gives way to it (the start-up summary and endpoints.json list the KMEs)."""
    columns = [("AGENT", "name"), ("KIND", "kind"), ("NETCONF", "netconf"), ("GNMI", "gnmi"), ("KME", "kme"),
               ("COLLECTED", "collected")]
    if any(a.process != "-" for a in agents):
        columns.append(("PROCESS", "process"))
    if "PROCESS" in dict(columns) or not any(a.kme != "-" for a in agents):
        columns.remove(("KME", "kme"))
    return _columns([title for title, _ in columns], [[getattr(a, f) for _, f in columns] for a in agents])


def _key_rows(keys: list[KeyRow]) -> tuple[str, list[str]]:
    """The KEY DELIVERY block: one row per pair, then the latest refusal of each pair that has
    one, and what a `not enough key` means."""
    header, rows = _columns(["KEY PAIR", "VIA", "KEYS", "BITS", "RATE", "REFUSED", "ON ROUTE"],
                            [[k.pair, k.via, str(k.keys), si(k.bits, "b"), si(k.rate, "b/s"), str(k.refused),
                              si(k.left, "b")] for k in keys], right=2)
    rows += [f"REFUSED    {k.pair}: {k.last_refusal}" for k in keys if k.last_refusal]
    if any(k.not_enough_key for k in keys):
        rows.append("NOTE       refusals are expected: the links make less key than the pairs fetch")
    return header, rows


def render_table(view: StatusView, height: int | None = None) -> list[str]:
    """The frame as lines; with `height`, at most that many: the events give way first, then the
    agent and link lists are shortened, ending with a line saying how many rows are left out."""
    head = [view.title] + view.endpoints + [""]
    agents_header, agents = _agent_rows(view.agents)
    qkd = [f"{r.link_id[:8]:10} {r.agent:8} {r.status:8} {si(r.rate, 'b/s'):>12} {percent(r.qber):>7} "
           f"{si(r.key_available, 'b'):>12}" for r in view.links if r.kind == "qkd"] or ["(none configured)"]
    qfs = [f"{r.link_id[:8]:10} {r.agent:8} {r.status:8} {si(r.rate, 'Hz'):>12} "
           f"{'-' if r.fidelity is None else f'{r.fidelity:.3f}':>9}" for r in view.links if r.kind == "qfs"] \
        or ["(none configured)"]
    tail = ([f"ROUTE      {r}" for r in view.routes] or ["ROUTE      (no switch data yet)"]) \
        + ([f"ALARM      {a}" for a in view.alarms] or ["ALARM      none"])
    events = [f"EVENT      {e}" for e in view.events[-8:]]
    headers = [agents_header,
               f"{'QKD LINK':10} {'AGENT':8} {'STATUS':8} {'SKR':>12} {'QBER':>7} {'KEY STORED':>12}",
               f"{'ENT. LINK':10} {'AGENT':8} {'STATUS':8} {'RATE':>12} {'FIDELITY':>9}"]
    keys: list[str] = []
    if view.keys:
        keys_header, keys = _key_rows(view.keys)
        headers.append(keys_header)
    if height is not None:
        room = max(height - len(head) - 2 * len(headers) - len(tail), 3)  # a blank line after each section
        if len(agents) + len(qkd) + len(qfs) + len(keys) > room:
            share = max(room // len(headers), 1)
            keys = _rows_within(keys, max(share, room - len(agents) - len(qkd) - len(qfs)), "key delivery rows")
            qkd = _rows_within(qkd, max(share, room - len(agents) - len(qfs) - len(keys)), "QKD link rows")
            qfs = _rows_within(qfs, max(share, room - len(agents) - len(qkd) - len(keys)), "entanglement link rows")
            agents = _rows_within(agents, max(room - len(qkd) - len(qfs) - len(keys), 1),
                                  "agents (endpoints.json lists all)")
        spare = room - len(agents) - len(qkd) - len(qfs) - len(keys) - 1  # 1: the blank line before the events
        events = events[-spare:] if spare > 0 else []
    lines = head + [headers[0]] + agents + ["", headers[1]] + qkd + ["", headers[2]] + qfs + [""]
    if view.keys:
        lines += [headers[3]] + keys + [""]
    lines += tail
    if events:
        lines += [""] + events
    return lines[:height] if height is not None else lines


def render_line(view: StatusView) -> str:
    """One line for logs and pipes: each link once (first agent reporting it), alarms."""
    seen: set[tuple[str, str]] = set()
    parts = []
    for r in view.links:
        if (r.kind, r.link_id) in seen:
            continue
        seen.add((r.kind, r.link_id))
        if r.kind == "qkd":
            parts.append(f"qkd {r.link_id[:8]} {r.status} skr {si(r.rate, 'b/s')} qber {percent(r.qber)}")
        else:
            fid = "-" if r.fidelity is None else f"{r.fidelity:.3f}"
            parts.append(f"ent {r.link_id[:8]} {r.status} {si(r.rate, 'Hz')} fidelity {fid}")
    parts += [f"keys {k.pair} {k.keys} delivered {si(k.rate, 'b/s')} {k.refused} refused" for k in view.keys]
    parts += [f"route {r}" for r in view.routes]
    parts.append(f"alarms {len(view.alarms)}")
    return "status: " + " | ".join(parts)


ALT_SCREEN_ON, ALT_SCREEN_OFF = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"
"""Enter the alternate screen and hide the cursor; the reverse."""
HOME, CLEAR_LINE_END, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"


class StatusDisplay:
    """Redraws the table in place on a terminal; elsewhere prints events as they come and a
    summary line every `line_every` seconds."""

    def __init__(self, out: IO[str] | None = None, tty: bool | None = None, line_every: float = 10.0) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.line_every = line_every
        self.events: deque[str] = deque(maxlen=50)
        self._last_line = time.monotonic()
        self._on_alt_screen = False
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
            self.out.write(self.frame(view))
            self.out.flush()
            return
        now = time.monotonic()
        if now - self._last_line >= self.line_every:
            self._last_line = now
            print(f"{time.strftime('%H:%M:%S')} {render_line(view)}", file=self.out, flush=True)

    def frame(self, view: StatusView, size: tuple[int, int] | None = None) -> str:
        """One redraw: cursor home, every line cut to the width and cleared to its end, nothing
        below it; never a line break after the last row, so the screen never scrolls."""
        columns, rows = size or shutil.get_terminal_size()
        width = max(columns - 1, 20)
        lines = [line[:width] for line in render_table(view, max(rows, 8))]
        prefix = ""
        if not self._on_alt_screen:
            self._on_alt_screen = True
            prefix = ALT_SCREEN_ON
        return prefix + HOME + (CLEAR_LINE_END + "\n").join(lines) + CLEAR_LINE_END + CLEAR_BELOW

    def close(self) -> None:
        """Back to the normal screen (with the start-up summary on it), cursor shown."""
        if self._on_alt_screen:
            self._on_alt_screen = False
            self.out.write(ALT_SCREEN_OFF)
            self.out.flush()
