"""The embedded telemetry store: one SQLite file in WAL mode.

Tables: `series` (one row per (source, path): name, labels as JSON, counter or gauge),
`samples` (series, timestamp, value; primary key (series, ts), so a sample delivered twice --
NATS redelivery, a replayed stream -- is stored once), `rollups` (per series and bucket: count,
min, max, sum of the numeric samples), `alarms` (primary key (alarm id, raised time): a clear
updates the raise it clears) and `alarm_log` (every raise, action result and clear, numbered in
the order the collector recorded them: what happened to an alarm, in sequence).

Writes happen in one thread of their own (`StoreWriter`), one transaction per call, so the event
loop never waits on the disk. Crash semantics: a committed transaction survives a crash of the
process (WAL, synchronous=NORMAL); what was queued for the writer but not yet committed is lost
(at most the last write batch, see collectors/README.md). A power loss may also lose the last
transactions committed before it (synchronous=NORMAL does not fsync every commit).

Retention: raw samples are kept `raw_retention` seconds, then only as rollups of `bucket`
seconds, which are kept `rollup_retention` seconds. Times are the agents' timestamps.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring as _jstr
from pathlib import Path
from typing import Any

from .model import Alarm, Batch, Series

NS = 1_000_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    counter INTEGER NOT NULL,
    UNIQUE(source, path));
CREATE INDEX IF NOT EXISTS series_name ON series(name);
CREATE TABLE IF NOT EXISTS samples(
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value,
    PRIMARY KEY(series_id, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups(
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL, max REAL, sum REAL,
    PRIMARY KEY(series_id, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms(
    alarm_id TEXT NOT NULL,
    raised_ns INTEGER NOT NULL,
    cleared_ns INTEGER,
    agent TEXT NOT NULL,
    resource TEXT NOT NULL,
    severity TEXT NOT NULL,
    text TEXT NOT NULL,
    rule TEXT NOT NULL,
    PRIMARY KEY(alarm_id, raised_ns)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarm_log(
    seq INTEGER PRIMARY KEY,
    alarm_id TEXT NOT NULL,
    raised_ns INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    event TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alarm_log_alarm ON alarm_log(alarm_id, raised_ns);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _labels_json(labels: tuple[tuple[str, str], ...]) -> str:
    """The labels as a JSON object; json.dumps per series was half the cost of a new series."""
    return "{" + ",".join(f"{_jstr(k)}:{_jstr(v)}" for k, v in labels) + "}"


def _log_rows(batches: list[Batch]) -> list[tuple]:
    """`alarm_log` rows in recording order: per batch its alarms, then its action runs."""
    rows: list[tuple] = []
    for batch in batches:
        for a in batch.alarms:
            rows.append((a.alarm_id, a.raised_ns, a.raised_ns if a.cleared_ns is None else a.cleared_ns, a.state, "",
                         "", a.text))
        for r in batch.runs:
            rows.append((r.alarm_id, r.raised_ns, r.ts_ns, "action", r.action, r.outcome, r.detail))
    return rows


def _where(conditions: list[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    """The SQL conditions whose argument was given (not None), and their arguments."""
    given = [(c, a) for c, a in conditions if a is not None]
    return [c for c, _ in given], [a for _, a in given]


@dataclass(frozen=True)
class AlarmLogEntry:
    """One line of an alarm's story: raised, an action's result, cleared."""

    seq: int
    """Order of recording."""
    alarm_id: str
    raised_ns: int
    ts_ns: int
    """Raised or cleared time; for an action, when the run ended."""
    event: str
    """'raised', 'cleared' or 'action'."""
    action: str
    outcome: str
    """An action's: 'ok', 'failed', 'rate-limited', 'queue-full'."""
    detail: str
    """The alarm's text, or what the action did (or why it failed)."""
    agent: str = ""
    rule: str = ""


class StoreError(Exception):
    """The store file cannot be opened or is not a qstrata store."""


@dataclass(frozen=True)
class Retention:
    raw: float = 7 * 86400.0
    """Seconds raw samples are kept."""
    bucket: float = 300.0
    """Rollup bucket, seconds."""
    rollups: float = 400 * 86400.0
    """Seconds rollups are kept."""


def parse_store_url(url: str) -> Path:
    """``sqlite:PATH`` (or a bare path) -> PATH."""
    if url.startswith("sqlite:"):
        url = url[len("sqlite:"):]
    elif ":" in url.split("/")[0] and not Path(url).exists():
        raise StoreError(f"unsupported store {url!r}: only sqlite:PATH")
    if not url:
        raise StoreError("empty store path (use sqlite:PATH)")
    return Path(url)


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    try:
        if readonly:
            if not path.exists():
                raise StoreError(f"{path}: no such store")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("SELECT count(*) FROM series").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from None
    return conn


class StoreWriter:
    """The write side. Not thread-safe: call it from one thread (the output's executor)."""

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = path
        self.retention = retention or Retention()
        self.conn = _connect(path)
        self.samples_written = 0
        self.alarms_written = 0

    def _register(self, new: list[Series]) -> None:
        """Row ids for series this writer has not seen, in bulk (the initial sync brings hundreds of
        thousands at once): insert the missing ones, then read every id back with one join."""
        conn = self.conn
        conn.executemany(
            "INSERT INTO series(source, path, name, labels, counter) VALUES (?,?,?,?,?) ON CONFLICT(source, path) DO NOTHING",
            [(s.target, s.path, s.name, _labels_json(s.labels), int(s.counter)) for s in new])
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted(k INTEGER PRIMARY KEY, source TEXT, path TEXT)")
        conn.execute("DELETE FROM wanted")
        conn.executemany("INSERT INTO wanted(k, source, path) VALUES (?,?,?)", [(i, s.target, s.path) for i, s in enumerate(new)])
        for k, sid in conn.execute("SELECT w.k, s.id FROM wanted w JOIN series s ON s.source = w.source AND s.path = w.path"):
            new[k].store_id = sid

    def write(self, batches: Iterable[Batch]) -> int:
        """Everything in `batches`, in one transaction. Returns the number of samples."""
        batches = list(batches)
        alarms: list[Alarm] = []
        conn = self.conn
        conn.execute("BEGIN")
        try:
            new = {id(s): s for batch in batches for s in batch.series if not s.store_id}
            if new:
                self._register(list(new.values()))
            rows = [(s.store_id, t, v) for batch in batches
                    for s, v, t in zip(batch.series, batch.values, batch.ts, strict=True)]
            for batch in batches:
                alarms.extend(batch.alarms)
            log_rows = _log_rows(batches)
            if rows:
                conn.executemany("INSERT OR REPLACE INTO samples(series_id, ts, value) VALUES (?,?,?)", rows)
            if alarms:
                conn.executemany(
                    "INSERT INTO alarms(alarm_id, raised_ns, cleared_ns, agent, resource, severity, text, rule) "
                    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(alarm_id, raised_ns) DO UPDATE SET "
                    "cleared_ns=coalesce(excluded.cleared_ns, cleared_ns), text=excluded.text",
                    [(a.alarm_id, a.raised_ns, a.cleared_ns, a.agent, a.resource, a.severity, a.text, a.rule)
                     for a in alarms])
            if log_rows:
                conn.executemany("INSERT INTO alarm_log(alarm_id, raised_ns, ts_ns, event, action, outcome, detail) "
                                 "VALUES (?,?,?,?,?,?,?)", log_rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            for s in new.values():  # ids handed out in a rolled-back transaction do not exist
                s.store_id = 0
            raise
        self.samples_written += len(rows)
        self.alarms_written += len(alarms)
        return len(rows)

    def maintain(self, now_ns: int | None = None) -> dict[str, int]:
        """Roll up complete buckets not rolled up yet, then apply retention."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        r = self.retention
        bucket = int(r.bucket * NS)
        conn = self.conn
        row = conn.execute("SELECT value FROM meta WHERE key='rolled_until'").fetchone()
        start = int(row[0]) if row else conn.execute("SELECT coalesce(min(ts), 0) FROM samples").fetchone()[0]
        start -= start % bucket
        end = (now_ns - bucket) - (now_ns - bucket) % bucket  # buckets that ended one bucket ago
        rolled = 0
        conn.execute("BEGIN")
        try:
            if end > start:
                cur = conn.execute(
                    "INSERT OR REPLACE INTO rollups(series_id, bucket, count, min, max, sum) "
                    "SELECT series_id, ts - ts % ?1, count(value), min(value), max(value), sum(value) FROM samples "
                    "WHERE ts >= ?2 AND ts < ?3 AND typeof(value) IN ('integer', 'real') "
                    "GROUP BY series_id, ts - ts % ?1", (bucket, start, end))
                rolled = cur.rowcount
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('rolled_until', ?)", (str(end),))
            raw = conn.execute("DELETE FROM samples WHERE ts < ?", (now_ns - int(r.raw * NS),)).rowcount
            old = conn.execute("DELETE FROM rollups WHERE bucket < ?", (now_ns - int(r.rollups * NS),)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {"rolled_up": rolled, "raw_deleted": raw, "rollups_deleted": old}

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()


@dataclass(frozen=True)
class SeriesRow:
    id: int
    source: str
    path: str
    name: str
    labels: dict[str, str]
    counter: bool


class StoreReader:
    """The read side (`qstrata query`); opens the file read-only, safe next to a live writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = _connect(path, readonly=True)

    def series(self, *, name: str | None = None, path: str | None = None, source: str | None = None,
               labels: dict[str, str] | None = None) -> list[SeriesRow]:
        """Series matching every filter given; `name` and `path` are globs (``*qber``)."""
        where, args = _where([("name GLOB ?", name or None), ("path GLOB ?", path or None), ("source = ?", source)])
        for k, v in (labels or {}).items():
            where.append("json_extract(labels, ?) = ?")
            args += [f'$."{k}"', v]
        sql = "SELECT id, source, path, name, labels, counter FROM series"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY name, source, path"
        return [SeriesRow(i, s, p, n, json.loads(lab), bool(c)) for i, s, p, n, lab, c in self.conn.execute(sql, args)]

    def samples(self, series: list[SeriesRow], start_ns: int, end_ns: int, *, limit: int | None = None,
                last_only: bool = False, step_ns: int | None = None) -> Iterator[tuple[SeriesRow, int, Any]]:
        """Samples in [start, end] per series, oldest first. `step_ns`: downsampled, one point per
        step (the average of the numeric samples in it, stamped with the step's start) -- how a
        plot of hours of 1 s samples stays a few hundred points."""
        for row in series:
            if step_ns:
                step = max(1, int(step_ns))
                yield from ((row, ts, value) for ts, value in self.conn.execute(
                    "SELECT ts - ts % ?1 AS t, avg(value) FROM samples WHERE series_id=?2 AND ts>=?3 AND ts<=?4 "
                    "AND typeof(value) IN ('integer', 'real') GROUP BY t ORDER BY t"
                    + (f" LIMIT {int(limit)}" if limit else ""), (step, row.id, start_ns, end_ns)))
                continue
            if last_only:
                sql = "SELECT ts, value FROM samples WHERE series_id=? AND ts>=? AND ts<=? ORDER BY ts DESC LIMIT 1"
            else:
                sql = "SELECT ts, value FROM samples WHERE series_id=? AND ts>=? AND ts<=? ORDER BY ts"
                if limit:
                    sql += f" LIMIT {int(limit)}"
            for ts, value in self.conn.execute(sql, (row.id, start_ns, end_ns)):
                yield row, ts, value

    def rollups(self, series: list[SeriesRow], start_ns: int, end_ns: int
                ) -> Iterator[tuple[SeriesRow, int, int, float, float, float]]:
        for row in series:
            for bucket, count, lo, hi, total in self.conn.execute(
                    "SELECT bucket, count, min, max, sum FROM rollups WHERE series_id=? AND bucket>=? AND bucket<=? "
                    "ORDER BY bucket", (row.id, start_ns, end_ns)):
                yield row, bucket, count, lo, hi, total

    def alarms(self, *, state: str | None = None, agent: str | None = None, start_ns: int = 0,
               end_ns: int = 2**63 - 1) -> list[Alarm]:
        where, args = ["raised_ns <= ?", "(cleared_ns IS NULL OR cleared_ns >= ?)"], [end_ns, start_ns]
        if state == "raised":
            where.append("cleared_ns IS NULL")
        elif state == "cleared":
            where.append("cleared_ns IS NOT NULL")
        if agent:
            where.append("agent = ?")
            args.append(agent)
        sql = ("SELECT alarm_id, agent, resource, severity, raised_ns, cleared_ns, text, rule FROM alarms WHERE "
               + " AND ".join(where) + " ORDER BY raised_ns")
        return [Alarm(alarm_id=a, agent=ag, resource=r, severity=sev, raised_ns=rn, cleared_ns=cn, text=t, rule=ru)
                for a, ag, r, sev, rn, cn, t, ru in self.conn.execute(sql, args)]

    def alarm_log(self, *, alarm_id: str | None = None, agent: str | None = None, start_ns: int = 0,
                  end_ns: int = 2**63 - 1) -> list[AlarmLogEntry]:
        """Raises, action results and clears in the order the collector recorded them (a store
        written before the log existed has none)."""
        where, args = _where([("l.ts_ns >= ?", start_ns), ("l.ts_ns <= ?", end_ns), ("l.alarm_id = ?", alarm_id or None),
                              ("a.agent = ?", agent or None)])
        sql = ("SELECT l.seq, l.alarm_id, l.raised_ns, l.ts_ns, l.event, l.action, l.outcome, l.detail, "
               "coalesce(a.agent, ''), coalesce(a.rule, '') FROM alarm_log l LEFT JOIN alarms a "
               "ON a.alarm_id = l.alarm_id AND a.raised_ns = l.raised_ns WHERE " + " AND ".join(where)
               + " ORDER BY l.seq")
        try:
            return [AlarmLogEntry(*row) for row in self.conn.execute(sql, args)]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def time_range(self) -> tuple[int, int]:
        """(oldest, newest) sample timestamp, (0, 0) when there is none."""
        first, last = self.conn.execute("SELECT min(ts), max(ts) FROM samples").fetchone()
        return first or 0, last or 0

    def close(self) -> None:
        self.conn.close()
