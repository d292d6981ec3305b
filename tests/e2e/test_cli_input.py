"""Careless input to the `qstrata` commands: one clear error line and a non-zero exit before
anything starts, never a traceback, a network that never configures or a port wrapped modulo 65536.
No network is needed: argparse refuses, or the command refuses the file it was given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from qstrata.agents.cli import build_parser
from qstrata.agents.testbed.keyapp import refusal_summary
from qstrata.agents.testbed.kme_client import KmeRefusal
from qstrata.collectors.model import Batch, Series
from qstrata.collectors.store import StoreWriter
from qstrata.collectors.timefmt import parse_time_arg

QSTRATA = Path(sys.executable).with_name("qstrata")
ROOT = Path(__file__).resolve().parents[2]
UUID = "cde56ac9-1111-4111-8111-111111111111"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), *map(str, args)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=cwd)


def one_line_error(proc: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert fragment in proc.stderr.strip().splitlines()[-1], proc.stderr


# -- numbers and ports: argparse refuses them, every command alike -----------------------------

BAD_OPTIONS = [
    (["up", "--speed", "nan"], "--speed: must be a finite number"),
    (["up", "--speed", "inf"], "--speed: must be a finite number"),
    (["up", "--duration", "nan"], "--duration: must be a finite number"),
    (["up", "--dashboard-port", "99999"], "--dashboard-port: a port is 0..65535"),
    (["up", "--dashboard-port", "-1"], "--dashboard-port: a port is 0..65535"),
    (["up", "--base-port", "70000"], "--base-port: a port is 0..65535"),
    (["testbed", "--speed=-inf"], "--speed: must be a finite number"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--netconf-port", "99999"],
     "--netconf-port: a port is 0..65535"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--gnmi-port", "65536"], "--gnmi-port: a port"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--kme-port", "-5"], "--kme-port: a port"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--restconf-port", "1e3"],
     "--restconf-port: not an integer"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--speed", "0"], "--speed: must be positive"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--idle-timeout", "inf"],
     "--idle-timeout: must be a finite number"),
    (["agent", "--kind", "qkd", "--name", "a", "--state-dir", "x", "--login-timeout", "-1"],
     "--login-timeout: must not be negative"),
    (["validate", "--max-size", "-1", "f.xml"], "--max-size: must be at least 1"),
    (["keys", "get", "sae-bob", "--sae", "sae-alice", "--timeout", "inf"], "--timeout: must be a finite number"),
    (["demo", "--timeout", "nan"], "--timeout: must be a finite number"),
    (["collect", "--targets", "t.yaml", "--gnmi-port", "99999"], "--gnmi-port: a port is 0..65535"),
    (["query", "samples", "--limit", "-3"], "--limit: must be at least 1"),
]


@pytest.mark.parametrize("argv,message", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_numbers_and_ports_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_up_with_a_bad_speed_starts_nothing(tmp_path):
    """Was: a network that never configures (nan) or a port wrapped to 34463 (99999)."""
    for args in (["--speed", "nan"], ["--duration", "inf"], ["--dashboard-port", "99999"]):
        proc = run("up", "--state-dir", tmp_path / "up", "-q", *args)
        one_line_error(proc, 2, args[0])
        assert not (tmp_path / "up").exists()


# -- times the store cannot count ---------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "collector.db"
    writer = StoreWriter(path)
    batch = Batch()
    batch.add(Series(1, "alice", "/x", "/x", "x", (), counter=False, numeric=True, resource=""), 1.0, 10**18)
    writer.write([batch])
    writer.close()
    return path


@pytest.mark.parametrize("args,message", [
    (["--step", "99999999999999999999s"], "duration '99999999999999999999s' is too long"),
    (["--step", "9" * 400], "too long"),
    (["--from", "99999999999999999999"], "time out of range"),
    (["--from", "9999-01-01T00:00:00Z"], "time out of range"),
    (["--to", "9" * 400 + "d"], "not a time"),
])
def test_query_times_beyond_the_store_are_one_line(store, args, message):
    """Was: OverflowError: Python int too large to convert to SQLite INTEGER."""
    one_line_error(run("query", "samples", "--store", f"sqlite:{store}", *args), 2, message)


def test_query_still_reads_in_range(store):
    proc = run("query", "samples", "--store", f"sqlite:{store}", "--from", "2001-01-01T00:00:00Z",
               "--to", "2262-01-01T00:00:00Z", "--step", "1d", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["value"] == 1.0, proc.stderr


def test_time_arguments_within_64_bit_ns():
    assert parse_time_arg("2262-04-11T00:00:00Z") > 0 and parse_time_arg("1h", now_ns=0) == -3600 * 10**9
    for text in ("2263-01-01T00:00:00Z", "1677-01-01T00:00:00Z", "300000d"):
        with pytest.raises(ValueError, match="out of range|too long"):
            parse_time_arg(text)


# -- files that are not an endpoints.json --------------------------------------------------------

@pytest.mark.parametrize("name,message", [
    ("README.md", "cannot read README.md: Expecting value"),
    ("yang/examples/valid-qstrata-qfs-endpoint.json", "is not an endpoints.json of qstrata up"),
])
def test_demo_and_keys_refuse_a_file_that_is_not_endpoints_json(name, message):
    """Was: JSONDecodeError and KeyError: 'agents' tracebacks from `demo`; `keys` said it in one line."""
    for command in (["demo"], ["keys", "status", "sae-bob", "--sae", "sae-alice"]):
        one_line_error(run(*command, "--endpoints", name, cwd=ROOT), 2, message)


# -- sae: only a QKD agent's folder ---------------------------------------------------------------

@pytest.fixture
def network(tmp_path) -> Path:
    """A network's folder as `qstrata up` leaves it: agents' folders, a QKD agent's with kme/."""
    net = tmp_path / "state" / "up"
    for agent, marker in (("alice", "kme"), ("bob", "kme"), ("sw1", "datastore")):
        (net / agent / marker).mkdir(parents=True)
        (net / agent / "datastore").mkdir(exist_ok=True)
    (net / "up.log").write_text("")
    return tmp_path


@pytest.mark.parametrize("args,message", [
    (["add", "y", "--state-dir", "state/up"],
     "state/up is a network's folder; an agent's is state/up/<node>, e.g. state/up/alice"),
    (["add", "x", "--state-dir", "state/up/sw1"], "state/up/sw1 is the folder of an agent that is not a QKD agent"),
    (["add", "x", "--state-dir", "state/up/nobody"], "no state directory state/up/nobody"),
    (["list", "--state-dir", "/nonexistent"], "no state directory /nonexistent"),
    (["list", "--state-dir", "state/up"], "is a network's folder"),
    (["delete", "x", "--state-dir", "state/up/sw1"], "not a QKD agent"),
])
def test_sae_refuses_a_folder_that_is_not_a_qkd_agents(network, args, message):
    """Was: a certificate from the gNMI gateway's CA (network folder), one for a switch, and
    "no SAE certificates" with exit 0 for a folder that does not exist."""
    one_line_error(run("sae", *args, cwd=network), 2, message)
    assert not list(network.glob("state/up/**/sae"))


def test_sae_add_in_a_qkd_agents_folder(network):
    proc = run("sae", "add", "sae-x", "--state-dir", "state/up/alice", cwd=network)
    assert proc.returncode == 0 and "CA of the KME:           state/up/alice/gnmi/ca.pem" in proc.stdout, proc.stderr
    assert run("sae", "list", "--state-dir", "state/up/alice", cwd=network).stdout.count("\nsae-x ") == 1


# -- the key application's summary ----------------------------------------------------------------

def test_refusals_are_counted_by_reason_in_words():
    """Was: `1 refused (0 unreachable)` and `4 refused (503 KME cde56ac9-…)`."""
    refusals = [KmeRefusal(503, f"KME {UUID} is unreachable: connection refused")] * 4 + [
        KmeRefusal(0, "cannot reach the KME at https://127.0.0.1:4000: connection refused"),
        KmeRefusal(503, "not enough key: 3 keys of 256 bits stored on QKD link x (to KME y), 9 asked"),
        KmeRefusal(503, "not enough key: 0 keys of 256 bits stored on QKD link z (to KME y), 2 asked")]
    counts: dict[str, int] = {}
    for refusal in refusals:
        counts[refusal.reason] = counts.get(refusal.reason, 0) + 1
    assert refusal_summary(counts) == ("7 requests refused: 4 the next KME on the route is unreachable (HTTP 503), "
                                       "2 not enough key (HTTP 503), 1 KME unreachable (no HTTP answer)")
    assert refusal_summary({"rate limited (HTTP 503)": 1}) == "1 request refused: 1 rate limited (HTTP 503)"
