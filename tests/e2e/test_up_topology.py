"""An invalid topology is refused before anything starts: every problem as FILE: YAML.PATH: what is
wrong, exit code 2, no traceback, no state written. The checks themselves are table-driven here
too (topology_check is pure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY, TopologyError, load
from qstrata.agents.devices.topology_check import check
from qstrata.agents.testbed.network import NETWORK_TOPOLOGY, UpOptions
from qstrata.agents.testbed.network import check as check_up


def network_doc() -> dict:
    return yaml.safe_load(NETWORK_TOPOLOGY.read_text())


def _unknown_node(d):
    d["fibres"][2]["a"]["device"] = "carol"


def _port_twice(d):
    d["fibres"][3]["a"]["port"] = 9


def _negative(d):
    d["fibres"][2]["length_km"] = -25


def _missing(d):
    del d["fibres"][1]["length_km"]


def _wrong_type(d):
    d["nodes"][2]["ports"] = "sixteen"


def _bad_kind(d):
    d["nodes"][0]["kind"] = "qdk"


def _controller_unknown(d):
    d["controller"]["qkd_links"][0]["b"]["node"] = "mem-a"


def _collector_bad_rule(d):
    d["collector"]["alarms"][0]["above"] = "high"


CASES = [
    (_unknown_node, "fibres[2].a.device", "unknown node 'carol'"),
    (_port_twice, "fibres[3].a.port", "sw1 port 9 is already used by fibres[2] (spool-25)"),
    (_negative, "fibres[2].length_km", "must not be negative, got -25"),
    (_missing, "fibres[1]", "missing field 'length_km'"),
    (_wrong_type, "nodes[2].ports", "expected an integer, got a string 'sixteen'"),
    (_bad_kind, "nodes[0].kind", "expected one of qkd, memory, switch, got 'qdk'"),
    (_controller_unknown, "controller.qkd_links[0].b.node", "mem-a is a memory node, not a qkd node"),
    (_collector_bad_rule, "collector.alarms[0].above", ""),
]


@pytest.mark.parametrize("mutate,where,what", CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_each_problem_is_reported_with_its_yaml_path(tmp_path, mutate, where, what):
    doc = network_doc()
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(TopologyError) as err:
        check_up(UpOptions(topology=path))
    assert any(i.startswith(f"{path}: {where}: {what}") for i in err.value.issues), err.value.issues


def test_the_shipped_topologies_are_valid():
    assert check(network_doc()) == []
    load(DEFAULT_TOPOLOGY)
    check_up(UpOptions())


def test_several_problems_are_all_reported():
    issues = check({"nodes": [{"name": "a", "kind": "qkd"}, {"name": "a", "kind": "qkd"}],
                    "fibres": [{"id": "f", "length_km": True, "a": {"device": "a", "port": 1}}]})
    assert [str(i) for i in issues] == [
        "nodes[1].name: node a is defined twice",
        "fibres[0].length_km: expected a number, got a boolean True",
        "fibres[0]: missing field 'b' (a fibre end: {device, port})",
    ]


def test_not_a_mapping_and_not_yaml(tmp_path):
    assert [str(i) for i in check(["nodes"])] == ["(top): expected a mapping, got a list"]
    bad = tmp_path / "t.yaml"
    bad.write_text("nodes: [\n")
    with pytest.raises(TopologyError, match=r"t\.yaml: line \d+ column \d+: not YAML"):
        load(bad)


@pytest.mark.parametrize("mutate,where,what", [CASES[1], CASES[2]], ids=["port-twice", "negative"])
def test_qstrata_up_exits_2_before_starting_anything(tmp_path, mutate, where, what):
    doc = network_doc()
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    state = tmp_path / "state"
    qstrata = Path(sys.executable).with_name("qstrata")
    result = subprocess.run([str(qstrata), "up", "--topology", str(path), "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{path}: {where}: {what}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not state.exists()
