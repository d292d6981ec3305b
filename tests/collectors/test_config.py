"""Collector configuration: YAML and a testbed's endpoints.json, every problem as FILE: YAML.PATH:
message, the file watched and re-applied while running (targets added, changed, removed), and
`qstrata collect` failing with one line on stderr."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from qstrata.collectors.app import CollectOptions, Collector
from qstrata.collectors.config import ConfigError, load
from qstrata.collectors.processors.alarms import ThresholdRule, UnreachableRule

QSTRATA = Path(sys.executable).with_name("qstrata")


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "alice" / "credentials.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"username": "admin", "password": "s3cret"}))
    return path


GOOD = """
targets:
  - name: alice
    address: 127.0.0.1:9339
    kind: qkd
    credentials-file: alice/credentials.json
    netconf: 127.0.0.1:8300
    tags: {site: lab-a}
  - name: sw1
    address: 127.0.0.1
    port: 9340
    username: admin
    password: pw
    subscriptions:
      - paths: [/optical-switch:opm-power]
        mode: sample
        sample-interval: 2s
      - /optical-switch:cross-connects
alarms:
  - {name: qber-high, metric: qber, above: 0.11, clear-below: 0.10, severity: major, actions: [noc]}
  - {name: key-low, metric: key-available, below: 100000, clear-above: 200000, severity: WARNING, arm: true}
  - {name: fidelity-low, metric: fidelity, below: 0.8}
  - {name: unreachable, unreachable-for: 30s, severity: CRITICAL, actions: [noc, disable]}
  - {name: power, metric: /optical-switch:opm-power/port/power, above: -10}
actions:
  - {name: noc, type: webhook, url: "http://127.0.0.1:8080/hook", on: [raise, clear], rate-limit: 6/1m}
  - name: disable
    type: netconf
    agent: "{agent}"
    config: <qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node"><qkdn_location_id>{text}</qkdn_location_id></qkd_node>
store:
  retention: {raw: 2d, bucket: 1m, rollups: 30d}
"""


def write(tmp_path: Path, text: str, name: str = "collector.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_full_configuration(tmp_path, creds):
    cfg = load(write(tmp_path, GOOD))
    alice, sw1 = cfg.targets["alice"], cfg.targets["sw1"]
    assert (alice.address, alice.port, alice.netconf, alice.tags) == ("127.0.0.1", 9339, ("127.0.0.1", 8300),
                                                                        (("site", "lab-a"),))
    assert alice.credentials() == ("admin", "s3cret")
    assert alice.subscriptions[0].paths == ("/etsi-qkd-sdn-node:qkd_node", "/qstrata-ss:service-stratum")
    assert (sw1.port, sw1.credentials()) == (9340, ("admin", "pw"))
    assert [(s.paths, s.sample_interval) for s in sw1.subscriptions] == [(("/optical-switch:opm-power",), 2.0),
                                                                         (("/optical-switch:cross-connects",), 10.0)]
    qber, key, fid, down, power = cfg.rules
    assert qber == ThresholdRule("qber-high", "/qstrata-telemetry:telemetry/qkd-links/qkd-link/qber",
                                 "etsi-qkd-node-types:MAJOR", above=0.11, clear=0.10, actions=("noc",))
    assert (key.below, key.clear, key.severity, key.arm) == (100000, 200000, "qstrata-telemetry:WARNING", True)
    assert not qber.arm
    assert fid.path.endswith("qfs-link/fidelity")
    assert down == UnreachableRule("unreachable", 30.0, "qstrata-telemetry:CRITICAL", actions=("noc", "disable"))
    assert power.path == "/optical-switch:opm-power/port/power"
    noc, disable = cfg.actions
    assert (noc.on, noc.rate_limit) == (frozenset({"raise", "clear"}), (6, 60.0))
    assert disable.kind == "netconf" and disable.options["agent"] == "{agent}"
    assert (cfg.retention.raw, cfg.retention.bucket, cfg.retention.rollups) == (172800, 60, 2592000)


def test_endpoints_json(tmp_path, creds):
    endpoints = {"agents": [
        {"name": "alice", "kind": "qkd", "netconf": {"host": "127.0.0.1", "port": 8300},
         "gnmi": {"host": "127.0.0.1", "port": 9300}, "credentials": str(creds)},
        {"name": "mem-a", "kind": "memory", "netconf": {"host": "127.0.0.1", "port": 8304},
         "credentials_file": "alice/credentials.json"},
    ]}
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(endpoints))
    cfg = load(path)
    alice, mem = cfg.targets["alice"], cfg.targets["mem-a"]
    assert (alice.address, alice.port, alice.netconf, alice.protocol) == ("127.0.0.1", 9300, ("127.0.0.1", 8300), "gnmi")
    assert (mem.address, mem.netconf, mem.protocol) == (None, ("127.0.0.1", 8304), "netconf")
    assert mem.subscriptions[0].paths == ("/qstrata-qfs:qfs-node", "/qstrata-ss:service-stratum/entanglement-requests") and mem.credentials() == ("admin", "s3cret")
    path.write_text(json.dumps(endpoints["agents"]))  # a bare list works too
    assert set(load(path).targets) == {"alice", "mem-a"}
    yaml_ref = write(tmp_path, "targets-file: endpoints.json\nalarms: [{name: down, unreachable-for: 10s}]\n")
    both = load(yaml_ref)
    assert set(both.targets) == {"alice", "mem-a"} and both.files == (yaml_ref, path)


BAD = [
    ("targets: [{name: alice, address: 127.0.0.1:9339}]", "targets[0]: no subscriptions, and no kind"),
    ("targets: [{name: 'bad name', address: h:1, kind: qkd}]", "targets[0].name: required: an agent name"),
    ("targets: [{name: a, address: 'h:99999', kind: qkd}]", "targets[0].address: expected a host and a port 1-65535"),
    ("targets: [{name: a, address: h:1, kind: router}]", "targets[0].kind: expected one of qkd, memory, switch"),
    ("targets: [{name: a, address: h:1, kind: qkd, credentials-file: nope.json}]",
     "targets[0].credentials-file: cannot read"),
    ("targets: [{name: a, address: h:1, kind: qkd, colour: red}]", "targets[0].colour: unknown key; expected one of"),
    ("targets: [{name: a, adress: h:1, kind: qkd}]", "targets[0].adress: unknown key (did you mean 'address'?)"),
    ("alarms: [{name: q, metric: qber, above: 0.1, severty: MAJOR}]",
     "alarms[0].severty: unknown key (did you mean 'severity'?)"),
    ("actions: [{name: a, type: webhook, url: 'http://x', timout: 5s}]",
     "actions[0].timout: unknown key (did you mean 'timeout'?)"),
    ("store: {retension: {raw: 1d}}", "store.retension: unknown key (did you mean 'retention'?)"),
    ("alarm: []", "alarm: unknown key (did you mean 'alarms'?)"),
    ("targets: [{name: a, address: h:1, kind: qkd, subscriptions: [{paths: [rel/path]}]}]",
     "targets[0].subscriptions[0].paths: expected a list of absolute paths"),
    ("targets: [{name: a, address: h:1, kind: qkd, subscriptions: [{paths: [/a:b], sample-interval: fast}]}]",
     "targets[0].subscriptions[0].sample-interval: not a duration: 'fast'"),
    ("targets: [{name: a, address: h:1, kind: qkd}, {name: a, address: h:2, kind: qkd}]",
     "targets[1].name: duplicate target name 'a'"),
    ("alarms: [{name: q, metric: qber, above: high}]", "alarms[0].above: expected a number, got 'high'"),
    ("alarms: [{name: q, metric: qber, above: 0.11, below: 0.01}]", "alarms[0]: give exactly one of 'above' and 'below'"),
    ("alarms: [{name: q, metric: qber, above: 0.11, clear-below: 0.2}]", "must not be above 'above'"),
    ("alarms: [{name: q, metric: qbr, above: 0.11}]", "alarms[0].metric: unknown metric 'qbr'"),
    ("alarms: [{name: q, metric: status, above: 1}]", "alarms[0].metric: metric 'status' is ambiguous"),
    ("alarms: [{name: q, metric: /etsi-qkd-sdn-node:qkd_node/qkdn_location_id, above: 1}]", "not a number"),
    ("alarms: [{name: q, metric: /nope:x/y, above: 1}]", "is not a leaf of any module"),
    ("alarms: [{name: q, metric: qber, above: 0.1, severity: awful}]", "alarms[0].severity: unknown severity 'awful'"),
    ("alarms: [{name: q, metric: qber, above: 0.1, actions: [page]}]", "alarms[0].actions: unknown action 'page'"),
    ("alarms: [{name: q, unreachable-for: soon}]", "alarms[0].unreachable-for: not a duration"),
    ("alarms: [{name: q, metric: qber, above: 0.1, clear-readings: 0}]",
     "alarms[0].clear-readings: expected a whole number of readings, at least 1, got 0"),
    ("alarms: [{name: q, unreachable-for: 5s, clear-readings: 2}]", "an unreachable-for rule takes no clear-readings"),
    ("alarms: [{name: q, metric: key-available, below: 1, arm: yes please}]", "alarms[0].arm: expected true or false"),
    ("alarms: [{name: q, unreachable-for: 5s, arm: true}]", "an unreachable-for rule takes no arm"),
    ("alarms: [{name: q, metric: requests, above: 1}]", "alarms[0].metric: metric 'requests' is ambiguous"),
    ("actions: [{name: a, type: email}]", "actions[0].type: expected one of webhook, netconf"),
    ("actions: [{name: a, type: webhook, url: 'ftp://x'}]", "actions[0].url: required: an http:// or https:// URL"),
    ("actions: [{name: a, type: webhook, url: 'http://x', rate-limit: lots}]", "actions[0].rate-limit: expected N/DURATION"),
    ("actions: [{name: a, type: netconf, config: '<a><b></a>'}]", "actions[0].config: not well-formed XML"),
    ("actions: [{name: a, type: netconf, agent: bob, config: '<a/>'}]", "actions[0].agent: unknown target 'bob'"),
    ("store: {retention: {raw: forever}}", "store.retention.raw: not a duration"),
    ("targets: {alice: {}}", "targets: expected a list, got a mapping"),
    ("just a string", "(top): expected a mapping"),
    ("targets: [\n  - name: a\n  bad indent", "line 2 column 3: not YAML"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_configuration_names_file_and_yaml_path(tmp_path, text, message):
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as exc:
        load(path)
    assert any(issue.startswith(f"{path}: ") and message in issue for issue in exc.value.issues), exc.value.issues


def test_cli_bad_configuration_is_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, "alarms: [{name: q, metric: qber, above: high}]\ntargets: 5\n")
    out = subprocess.run([str(QSTRATA), "collect", "--targets", str(path), "--store", "none"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"qstrata collect: {path}: targets: expected a list, got a number (and 1 more)"]
    missing = subprocess.run([str(QSTRATA), "collect", "--targets", str(tmp_path / "nope.yaml")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "nope.yaml: cannot read: No such file or directory" in missing.stderr
    prom = subprocess.run([str(QSTRATA), "collect", "--targets", str(write(tmp_path, "targets: []")), "--prometheus",
                           "nowhere"], capture_output=True, text=True, timeout=60)
    assert prom.returncode == 2 and prom.stderr.strip() == "qstrata collect: --prometheus wants HOST:PORT, got 'nowhere'"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.active: dict[str, object] = {}

    def target_added(self, target) -> None:
        self.active[target.name] = target
        self.events.append(("add", target.name))

    def target_changed(self, target) -> None:
        self.active[target.name] = target
        self.events.append(("change", target.name))

    def target_removed(self, name) -> None:
        self.active.pop(name)
        self.events.append(("remove", name))


def test_watched_file_adds_changes_and_removes_targets(tmp_path):
    base = "targets:\n  - {name: a, address: 'h:1', kind: qkd}\n  - {name: b, address: 'h:2', kind: qkd}\n"
    path = write(tmp_path, base)

    def rewrite(text: str) -> None:
        path.write_text(text)
        stamp = path.stat().st_mtime_ns + 1_000_000_000  # a distinct mtime even on coarse clocks
        os.utime(path, ns=(stamp, stamp))

    async def main():
        rec = Recorder()
        collector = Collector(CollectOptions(config=load(path), store=None), target_input=rec)
        await collector.start()
        assert rec.events == [("add", "a"), ("add", "b")]
        rewrite("targets:\n  - {name: a, address: 'h:10', kind: qkd}\n  - {name: c, address: 'h:3', kind: memory}\n"
                "alarms: [{name: q, metric: qber, above: 0.11}]\n")
        assert collector.watcher.check()
        assert rec.events[2:] == [("remove", "b"), ("change", "a"), ("add", "c")]
        assert rec.active["a"].port == 10 and [r.name for r in collector.alarms.rules] == ["q"]
        rewrite("targets: [{name: a}]\n")  # broken: the running configuration stays
        assert not collector.watcher.check()
        assert "targets[0]" in collector.health()["config"]["error"] and set(rec.active) == {"a", "c"}
        rewrite("targets:\n  - {name: a, address: 'h:10', kind: qkd, enabled: false}\n")
        assert collector.watcher.check()
        assert rec.active == {} and collector.health()["config"]["error"] is None
        await collector.stop()

    asyncio.run(main())
