"""`qstrata query`: read series, samples and alarms back from a collector's embedded store.

    qstrata query                                   # a short summary of the store of `qstrata up`
    qstrata query summary [--state-dir DIR | --store sqlite:PATH]
    qstrata query series  [--name GLOB] [--label K=V]... [--source AGENT]
    qstrata query samples [filters] [--from T] [--to T] [--last] [--rollups] [--step D]
    qstrata query alarms  [--state raised|cleared] [--agent A] [--from T] [--to T] [--log]

The store is the one of the network in `--state-dir` (default state/up, as `qstrata demo` finds
the network) unless `--store` names another. `--format table` (default) is for people: numbers
rounded to six significant digits; `--format json` keeps full precision. Times: ``now``, a
duration ago (``15m``, ``2h``, ``7d``) or RFC 3339. The store is opened read-only, so querying a
running collector's store is safe.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import namedtuple
from pathlib import Path
from typing import Any

from qstrata.bindings.wire.argtypes import positive_int

from .store import StoreError, StoreReader, parse_store_url
from .timefmt import date_and_time, duration_ns, parse_time_arg
from .views import is_view_series, link_rows, percent, si

DEFAULT_STATE_DIR = "state/up"
STORE_FILE = "collector.db"
"""The store `qstrata up` keeps in its state directory."""
EXIT_OK, EXIT_USAGE = 0, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `query` to the `qstrata` command (called from qstrata.agents.cli)."""
    p = subparsers.add_parser("query", help="read series, samples and alarms from a collector's store",
                              description="Without a sub-command: a short summary of the store (`summary`).")
    p.set_defaults(func=_cmd_summary)
    _store_options(p, None)
    sub = p.add_subparsers(dest="query_command", metavar="{summary,series,samples,alarms}")
    # given after the sub-command they override what was given before it; not given, they leave it
    common = argparse.ArgumentParser(add_help=False)
    _store_options(common, argparse.SUPPRESS)
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--name", help="series name glob, e.g. '*qkd_link_qber'")
    filters.add_argument("--path", help="data path glob")
    filters.add_argument("--source", help="agent the series came from")
    filters.add_argument("--label", action="append", default=[], metavar="K=V", help="label filter (repeatable)")
    span = argparse.ArgumentParser(add_help=False)
    span.add_argument("--from", dest="start", default="1h", help="start: now, 15m, 2h, 7d or RFC 3339")
    span.add_argument("--to", dest="end", default="now", help="end")

    s = sub.add_parser("summary", parents=[common], help="what the store holds, the latest link figures, alarms "
                                                         "(the default)")
    s.set_defaults(func=_cmd_summary)
    s = sub.add_parser("series", parents=[common, filters], help="list series")
    s.set_defaults(func=_cmd_series)
    s = sub.add_parser("samples", parents=[common, filters, span], help="samples of the matching series")
    s.add_argument("--last", action="store_true", help="only the latest sample of each series in the range")
    s.add_argument("--rollups", action="store_true", help="downsampled buckets (count, min, max, avg) instead")
    s.add_argument("--limit", type=positive_int, default=None, help="at most N samples per series")
    s.add_argument("--step", help="downsample raw samples: one average per step (e.g. 10s, 1m)")
    s.set_defaults(func=_cmd_samples)
    s = sub.add_parser("alarms", parents=[common, span], help="alarms raised in (or active during) the range")
    s.add_argument("--state", choices=("raised", "cleared"), help="only active (raised) or only cleared alarms")
    s.add_argument("--agent", help="alarms of one agent")
    s.add_argument("--log", action="store_true",
                   help="every raise, action result and clear, in the order the collector recorded them")
    s.set_defaults(func=_cmd_alarms, start="30d")


def _store_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--state-dir, --store and --format, on `query` itself (with their defaults) and on each
    sub-command (`default` SUPPRESS: a sub-command's parser must not reset what was given
    before it)."""
    keep = default is argparse.SUPPRESS
    p.add_argument("--state-dir", default=default if keep else DEFAULT_STATE_DIR,
                   help=f"the network whose store is read, STATE_DIR/{STORE_FILE} (default: {DEFAULT_STATE_DIR})")
    p.add_argument("--store", default=default if keep else None,
                   help="store to read, sqlite:PATH (default: the one in --state-dir)")
    p.add_argument("--format", choices=("table", "json"), default=default if keep else "table",
                   help="table for people, numbers rounded; json for programs, full precision (default: table)")


def _fail(message: str) -> int:
    print(f"qstrata query: {message}", file=sys.stderr)
    return EXIT_USAGE


def _open(args: argparse.Namespace) -> StoreReader:
    if args.store:
        return StoreReader(parse_store_url(args.store))
    path = Path(args.state_dir) / STORE_FILE
    if not path.exists():
        raise StoreError(f"no store in {args.state_dir} (no {path}): start a network with "
                         "`bash scripts/dev.sh run`, or give --store sqlite:PATH")
    return StoreReader(path)


def human(value: Any) -> str:
    """A number as people read it: six significant digits, no float noise (0.009, not
    0.008999999999999998), no exponent for the sizes telemetry has."""
    if isinstance(value, bool) or not isinstance(value, float):
        return "" if value is None else str(value)
    if not math.isfinite(value) or value == 0:
        return str(value) if value else "0"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    decimals = max(0, 5 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--label wants K=V, got {item!r}")
        out[key] = value
    return out


def _span(args: argparse.Namespace) -> tuple[int, int]:
    start, end = parse_time_arg(args.start), parse_time_arg(args.end)
    if start > end:
        raise ValueError(f"--from {args.start} is after --to {args.end}")
    return start, end


def _select(reader: StoreReader, args: argparse.Namespace):
    return reader.series(name=args.name, path=args.path, source=args.source, labels=_labels(args.label))


def _run(args: argparse.Namespace, body) -> int:
    try:
        reader = _open(args)
    except StoreError as exc:
        return _fail(str(exc))
    try:
        return body(reader)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        reader.close()


def _label_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    text = [[human(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in text:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cmd_series(args: argparse.Namespace) -> int:
    def body(reader: StoreReader) -> int:
        rows = _select(reader, args)
        if args.format == "json":
            json.dump([{"name": r.name, "source": r.source, "labels": r.labels, "path": r.path,
                        "type": "counter" if r.counter else "gauge"} for r in rows], sys.stdout, indent=1)
            print()
        else:
            _print_table(["name", "source", "labels", "type"],
                         [[r.name, r.source, _label_text(r.labels), "counter" if r.counter else "gauge"] for r in rows])
        return EXIT_OK
    return _run(args, body)


def _cmd_samples(args: argparse.Namespace) -> int:
    def body(reader: StoreReader) -> int:
        if args.last and (args.rollups or args.step):  # before anything is read
            raise ValueError(f"--last is the latest sample of each series: it does not go with "
                             f"{'--rollups' if args.rollups else '--step'}")
        start, end = _span(args)
        series = _select(reader, args)
        out: list[dict[str, Any]] = []
        if args.rollups:
            for row, bucket, count, lo, hi, total in reader.rollups(series, start, end):
                out.append({"time": date_and_time(bucket), "ts": bucket, "source": row.source, "name": row.name,
                            "labels": row.labels, "count": count, "min": lo, "max": hi,
                            "avg": total / count if count else None})
            cols = ["time", "source", "name", "labels", "count", "min", "max", "avg"]
        else:
            step = duration_ns(args.step) if args.step else None
            if step is not None and step <= 0:
                raise ValueError(f"--step must be positive, got {args.step!r}")
            for row, ts, value in reader.samples(series, start, end, limit=args.limit, last_only=args.last,
                                                 step_ns=step):
                out.append({"time": date_and_time(ts), "ts": ts, "source": row.source, "name": row.name,
                            "labels": row.labels, "value": value})
            cols = ["time", "source", "name", "labels", "value"]
        if args.format == "json":
            json.dump(out, sys.stdout, indent=1)
            print()
        else:
            _print_table(cols, [[_label_text(r[c]) if c == "labels" else r[c] for c in cols] for r in out])
        return EXIT_OK
    return _run(args, body)


def _cmd_alarm_log(args: argparse.Namespace, reader: StoreReader) -> int:
    start, end = _span(args)
    log = reader.alarm_log(agent=args.agent, start_ns=start, end_ns=end)
    if args.format == "json":
        json.dump([{"seq": e.seq, "time": date_and_time(e.ts_ns), "event": e.event, "alarm-id": e.alarm_id,
                    "agent": e.agent, "rule": e.rule, "action": e.action or None, "outcome": e.outcome or None,
                    "detail": e.detail} for e in log], sys.stdout, indent=1)
        print()
    else:
        _print_table(["time", "event", "agent", "rule", "action", "outcome", "detail"],
                     [[date_and_time(e.ts_ns), e.event, e.agent, e.rule, e.action, e.outcome, e.detail] for e in log])
    return EXIT_OK


def _cmd_alarms(args: argparse.Namespace) -> int:
    def body(reader: StoreReader) -> int:
        if args.log:
            return _cmd_alarm_log(args, reader)
        start, end = _span(args)
        alarms = reader.alarms(state=args.state, agent=args.agent, start_ns=start, end_ns=end)
        if args.format == "json":
            json.dump([dict(a.to_yang(), rule=a.rule) for a in alarms], sys.stdout, indent=1)
            print()
        else:
            _print_table(["raised", "cleared", "state", "severity", "agent", "rule", "text"],
                         [[date_and_time(a.raised_ns), date_and_time(a.cleared_ns) if a.cleared_ns else "",
                           a.state, a.severity.rsplit(":", 1)[-1], a.agent, a.rule, a.text] for a in alarms])
        return EXIT_OK
    return _run(args, body)


_Latest = namedtuple("_Latest", "target path value ts")


def _cmd_summary(args: argparse.Namespace) -> int:
    """What a person asks first: which store, how much is in it, the links' latest figures and the
    alarms; `samples`, `series` and `alarms` give the detail."""
    def body(reader: StoreReader) -> int:
        series = reader.series()
        latest = [_Latest(row.source, row.path, value, ts)
                  for row, ts, value in reader.samples([r for r in series if is_view_series(r.path)], 0, 2**63 - 1,
                                                       last_only=True)]
        first, last = reader.time_range()
        alarms = reader.alarms(start_ns=last - 3600 * 10**9 if last else 0)
        links = link_rows(latest)
        if args.format == "json":
            json.dump({"store": str(reader.path), "series": len(series),
                       "agents": sorted({r.source for r in series if r.source}),
                       "from": date_and_time(first) if first else None, "to": date_and_time(last) if last else None,
                       "links": [vars(r) for r in links],
                       "alarms": [dict(a.to_yang(), rule=a.rule) for a in alarms]}, sys.stdout, indent=1)
            print()
            return EXIT_OK
        agents = sorted({r.source for r in series if r.source})  # "": the collector's own series
        span = (f"samples {date_and_time(first)} .. {date_and_time(last)}" if first else "no samples yet")
        print(f"store {reader.path}: {len(series)} series from {len(agents)} agents ({', '.join(agents) or '-'}); "
              f"{span}")
        rows = [[r.kind.upper(), r.link_id[:8], r.agent, r.status, si(r.rate, "b/s" if r.kind == "qkd" else "Hz"),
                 percent(r.qber) if r.kind == "qkd" else "-", "-" if r.fidelity is None else f"{r.fidelity:.3f}",
                 si(r.key_available, "b") if r.kind == "qkd" else "-"] for r in links]
        if rows:
            print()
            _print_table(["link", "id", "agent", "status", "rate", "qber", "fidelity", "key stored"], rows)
        active = [a for a in alarms if not a.cleared_ns]
        print()
        print(f"alarms: {len(active)} active, {len(alarms) - len(active)} cleared in the last hour of data")
        for a in alarms:
            state = "active since" if not a.cleared_ns else "cleared " + date_and_time(a.cleared_ns) + ", raised"
            print(f"  {a.rule} on {a.agent} ({a.severity.rsplit(':', 1)[-1]}): {state} {date_and_time(a.raised_ns)}"
                  f": {a.text}")
        print()
        print("more: qstrata query samples --name '*secret_key_rate*' --last | series | alarms  (--help for each)")
        return EXIT_OK
    return _run(args, body)
