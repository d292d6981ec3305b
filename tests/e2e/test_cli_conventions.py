"""What every `qstrata` sub-command shares with the others: help that states defaults in one style,
tables rounded for people, and no document taken for valid when there is none."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from qstrata.agents.cli import build_parser
from qstrata.agents.testbed.status import AgentRow, KeyRow, StatusDisplay, StatusView, render_table
from qstrata.bindings.wire import argtypes
from qstrata.collectors.query import human
from qstrata.collectors.views import LinkRow

QSTRATA = Path(sys.executable).with_name("qstrata")


def _parsers(parser: argparse.ArgumentParser, prefix: str = "qstrata"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


def test_every_option_with_a_default_says_it_in_one_style():
    missing = []
    for command, parser in _parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            default = action.default
            if (not action.option_strings or action.nargs == 0 or default is None or default is False
                    or default == [] or default is argparse.SUPPRESS):
                continue
            shown = parser._get_formatter()._expand_help(action)  # the option's help as --help prints it
            if "(default: " not in shown:
                missing.append(f"{command} {action.option_strings[-1]}")
        assert "(default " not in " ".join(text.split()), f"{command}: '(default X)' instead of '(default: X)'"
    assert not missing, "options whose help hides the default: " + ", ".join(missing)


NUMERIC = {"port": (argtypes.port,),
           "speed": (argtypes.positive_float,), "duration": (argtypes.positive_float,),
           "timeout": (argtypes.positive_float, argtypes.non_negative_float),
           "max-size": (argtypes.positive_int,),
           "limit": (argtypes.positive_int,), "max-sessions": (argtypes.positive_int,),
           "max-unauthenticated": (argtypes.positive_int,)}
NOT_OURS: set[str] = set()
"""Options left to another judge (`keys get --number/--size` are the KME's to judge: it refuses
them with its own limits, and their names are no numeric word here)."""


def test_every_numeric_option_is_checked_by_a_shared_type():
    """Every port, speed, duration, timeout and count of every sub-command has a type from
    qstrata.bindings.wire.argtypes (no plain `int`/`float` lets 99999, -1, nan or inf through)."""
    loose = []
    for command, parser in _parsers(build_parser()):
        for action in parser._actions:
            for option in action.option_strings:
                word = next((w for w in NUMERIC if option.endswith(f"-{w}") or f"-{w}-" in option), None)
                if word and f"{command} {option}" not in NOT_OURS and action.type not in NUMERIC[word]:
                    loose.append(f"{command} {option} ({getattr(action.type, '__name__', action.type)})")
    assert not loose, "numeric options without a checking type: " + ", ".join(loose)


def test_up_help_shows_its_defaults():
    proc = subprocess.run([str(QSTRATA), "up", "--help"], capture_output=True, text=True, timeout=60)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    for shown in ("(default: state/up)", "(default: 1.0)", "(default: 127.0.0.1)", "(default: 8765"):
        assert shown in text, shown


def test_human_rounding():
    assert human(0.008999999999999998) == "0.009"
    assert human(4215872.3) == "4215872"
    assert human(1.0) == "1"
    assert human(0.056000000000000001) == "0.056"
    assert human(123.456789) == "123.457"
    assert human(None) == "" and human(7) == "7" and human("ACTIVE") == "ACTIVE"


def test_validate_says_what_is_wrong_with_a_file_that_is_no_document(tmp_path):
    """Empty files, and truncated XML: where it stops being XML, not what the schema layer makes of
    its first element ("Missing XML namespace")."""
    files = {"empty.xml": ("", "empty file: no XML or JSON-IETF document to validate"),
             "blank.json": (" \n\t\n", "empty file: no XML or JSON-IETF document to validate"),
             "bare.xml": ("<a><b>", "not well-formed XML: Premature end of data in tag b line 1, line 1, column 7"),
             "etsi.xml": ('<qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node"><qkdn_id>',
                          "not well-formed XML: Premature end of data in tag qkdn_id line 1, line 1, column 60")}
    for name, (text, _) in files.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run([str(QSTRATA), "validate", *(str(tmp_path / name) for name in files)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"{tmp_path / name}: {said}" for name, (_, said) in files.items()]


def _view(agents: int, events: int, pairs: int = 2) -> StatusView:
    rows = [AgentRow(f"a{i}", "qkd", f"127.0.0.1:{1000 + i}", "127.0.0.1:9", kme=f"127.0.0.1:{2000 + i}")
            for i in range(agents)]
    links = [LinkRow("qkd", f"{i:08x}-0000", f"a{i}", status="ACTIVE", rate=1e6, qber=0.01) for i in range(agents)]
    keys = [KeyRow(f"sae-a{i}->sae-b{i}", "direct" if i % 2 else "bob", 123_456, 1_011_351_552, 1.6e6, i, 2_000_000,
                   f"503 not enough key: {i} keys of 8192 bits stored" if i % 2 else None, bool(i % 2))
            for i in range(pairs)]
    return StatusView("title", rows, ["dashboard  http://127.0.0.1:8765/", "endpoints  state/up/endpoints.json"],
                      links, ["sw1: 1<->9"], [], [f"event {i}" for i in range(events)], keys)


def test_status_frame_fits_any_window():
    for agents, height in ((5, 24), (500, 24), (500, 10), (3, 60)):
        lines = render_table(_view(agents, 30), height)
        assert len(lines) <= height, (agents, height, len(lines))
        assert lines[1].startswith("dashboard "), lines[:3]
    small = render_table(_view(500, 30), 24)
    assert any("more agents" in line for line in small)
    roomy = render_table(_view(3, 30), 60)
    assert roomy[-1] == "EVENT      event 29" and sum(line.startswith("EVENT") for line in roomy) == 8
    # the KEY DELIVERY block: a row per pair, the refusal and what it means; the KME column
    (header,) = [line for line in roomy if line.startswith("KEY PAIR")]
    assert header.split() == ["KEY", "PAIR", "VIA", "KEYS", "BITS", "RATE", "REFUSED", "ON", "ROUTE"]
    row = roomy[roomy.index(header) + 2]
    assert row.split() == ["sae-a1->sae-b1", "direct", "123456", "1.01", "Gb", "1.60", "Mb/s", "1", "2.00", "Mb"]
    assert "REFUSED    sae-a1->sae-b1: 503 not enough key: 1 keys of 8192 bits stored" in roomy
    assert any(line.startswith("NOTE       refusals are expected") for line in roomy)
    assert all(len(line) < 80 for line in roomy if not line.startswith(("EVENT", "REFUSED")))
    assert "KME" in roomy[roomy.index("") + 1].split()
    for pairs, height in ((40, 24), (2, 24), (40, 60)):
        lines = render_table(_view(5, 30, pairs), height)
        assert len(lines) <= height and any(line.startswith("KEY PAIR") for line in lines), (pairs, height, lines)
    assert any("more key delivery rows" in line for line in render_table(_view(5, 30, 40), 24))


def test_status_frame_never_scrolls():
    display = StatusDisplay(out=sys.stdout, tty=True)
    frame = display.frame(_view(500, 30), size=(80, 24))
    assert frame.startswith("\x1b[?1049h")  # the alternate screen, once
    body = frame.split("\x1b[H", 1)[1]
    assert body.count("\n") <= 23 and not body.endswith("\n")
    assert all(len(line.replace("\x1b[K", "").replace("\x1b[J", "")) < 80 for line in body.split("\n"))
    assert not display.frame(_view(5, 0), size=(80, 24)).startswith("\x1b[?1049h")
