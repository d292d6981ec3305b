"""Reports of a run: JSON (a stable, machine-readable schema), self-contained HTML and a console
table. Pure functions of a `RunReport`; the CLI decides where they go."""

from __future__ import annotations

import html
import json
import time
from typing import Any

from .model import Verdict
from .runner import RunReport

SCHEMA = "qstrata-conform/1"
MARK = {Verdict.PASS: "pass", Verdict.FAIL: "FAIL", Verdict.NOT_APPLICABLE: "n/a", Verdict.ERROR: "ERROR"}


def to_json(report: RunReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "profile": report.profile,
        "targets": report.targets,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(report.started)),
        "seconds": round(report.seconds, 2),
        "summary": report.counts(),
        "device": report.device,
        "results": [r.to_json() for r in report.results],
    }


def write_json(report: RunReport, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_json(report), f, indent=2)
        f.write("\n")


def console(report: RunReport, width: int = 100) -> str:
    lines = [f"{'CHECK':14} {'RESULT':6} {'CLAUSE':28} WHAT"]
    for r in report.results:
        c = r.check
        what = c.title if r.verdict is Verdict.PASS else f"{c.title} -- {r.reason}"
        line = f"{c.id:14} {MARK[r.verdict]:6} {c.clause[:28]:28} {what}"
        lines.append(line if len(line) <= width else line[:width - 1] + "…")
    n = report.counts()
    lines.append(f"{len(report.results)} checks: {n['pass']} passed, {n['fail']} failed, "
                 f"{n['not-applicable']} not applicable, {n['error']} errors ({report.seconds:.1f} s)")
    return "\n".join(lines)


_CSS = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
td:first-child{white-space:nowrap}td:nth-child(3){width:14em}
.pass{background:#e6f4e6}.fail{background:#fbe3e3}.not-applicable{background:#f1f1f1}.error{background:#fff3cd}
pre{white-space:pre-wrap;word-break:break-all;max-height:20em;overflow:auto;background:#fafafa;margin:2px 0}
details summary{cursor:pointer}"""


def to_html(report: RunReport) -> str:
    e = html.escape
    n = report.counts()
    rows = []
    for r in report.results:
        c = r.check
        ev = "".join(f"<b>sent</b><pre>{e(s)}</pre><b>received</b><pre>{e(rv)}</pre>"
                     for s, rv in r.evidence.exchanges)
        ev += "".join(f"<div>{e(note)}</div>" for note in r.evidence.notes)
        rows.append(f'<tr class="{r.verdict.value}"><td>{e(c.id)}</td><td>{e(r.verdict.value)}</td>'
                    f"<td>{e(c.clause)}</td><td>{e(c.title)}<br><small>sends: {e(c.send[:300])}<br>"
                    f"expects: {e(c.expectation())}</small>"
                    f"{'<br><b>' + e(r.reason) + '</b>' if r.reason else ''}"
                    f"{'<details><summary>evidence</summary>' + ev + '</details>' if ev else ''}</td></tr>")
    targets = ", ".join(f"{k} {v}" for k, v in report.targets.items())
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>qstrata conform: {e(report.profile)}</title>"
            f"<style>{_CSS}</style></head><body><h1>qstrata conform</h1>"
            f"<p>profile <b>{e(report.profile)}</b>; {e(targets)}; {len(report.results)} checks: "
            f"{n['pass']} passed, {n['fail']} failed, {n['not-applicable']} not applicable, {n['error']} errors "
            f"({report.seconds:.1f} s)</p><table><tr><th>check</th><th>result</th><th>clause</th><th>what</th></tr>"
            + "".join(rows) + "</table></body></html>\n")


def write(report: RunReport, path: str) -> None:
    if path.endswith((".html", ".htm")):
        with open(path, "w", encoding="utf-8") as f:
            f.write(to_html(report))
    else:
        write_json(report, path)
