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


def mutated(tmp_path: Path, mutate) -> Path:
    """The built-in network changed by `mutate`, as tmp_path/bad.yaml."""
    doc = network_doc()
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def issues_of(path: Path) -> list[str]:
    with pytest.raises(TopologyError) as err:
        check_up(UpOptions(topology=path))
    return err.value.issues


def _unknown_node(d):
    d["fibres"][2]["a"]["device"] = "carol"


def _port_twice(d):
    d["fibres"][3]["a"]["port"] = 9


def _negative(d):
    d["fibres"][2]["length_km"] = -25


def _missing(d):
    del d["fibres"][1]["length_km"]


def _wrong_type(d):
    d["nodes"][3]["ports"] = "sixteen"


def _bad_kind(d):
    d["nodes"][0]["kind"] = "qdk"


def _controller_unknown(d):
    d["controller"]["qkd_links"][0]["b"]["node"] = "mem-a"


def _pairs_to_a_qkd_node(d):
    d["controller"]["entanglement_apps"][1]["destination"] = "charlie"


def _pairs_to_a_node_without_urn(d):
    del d["nodes"][6]["urn"]


def _pairs_fidelity_above_one(d):
    d["controller"]["entanglement_apps"][0]["fidelity"] = 1.5


def _collector_bad_rule(d):
    d["collector"]["alarms"][0]["above"] = "high"


CASES = [
    (_unknown_node, "fibres[2].a.device", "unknown node 'carol'"),
    (_port_twice, "fibres[3].a.port", "sw1 port 9 is already used by fibres[2] (spool-25)"),
    (_negative, "fibres[2].length_km", "must not be negative, got -25"),
    (_missing, "fibres[1]", "missing field 'length_km'"),
    (_wrong_type, "nodes[3].ports", "expected an integer, got a string 'sixteen'"),
    (_bad_kind, "nodes[0].kind", "expected one of qkd, memory, switch, got 'qdk'"),
    (_controller_unknown, "controller.qkd_links[0].b.node", "mem-a is a memory node, not a qkd node"),
    (_pairs_to_a_qkd_node, "controller.entanglement_apps[1].destination", "charlie is a qkd node, not a memory node"),
    (_pairs_to_a_node_without_urn, "controller.entanglement_apps[1].destination",
     "mem-c has no urn in the topology: units name their destination by it"),
    (_pairs_fidelity_above_one, "controller.entanglement_apps[0].fidelity", "a fidelity is at most 1, got 1.5"),
    (_collector_bad_rule, "collector.alarms[0].above", ""),
]


@pytest.mark.parametrize("mutate,where,what", CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_each_problem_is_reported_with_its_yaml_path(tmp_path, mutate, where, what):
    path = mutated(tmp_path, mutate)
    issues = issues_of(path)
    assert any(i.startswith(f"{path}: {where}: {what}") for i in issues), issues


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
    path = mutated(tmp_path, mutate)
    state = tmp_path / "state"
    qstrata = Path(sys.executable).with_name("qstrata")
    result = subprocess.run([str(qstrata), "up", "--topology", str(path), "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{path}: {where}: {what}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not state.exists()


# ---------------------------------------------------------------- every mistake is named
# Each mutation of the built-in network and the exact lines `qstrata up` prints for it (after
# "FILE: "): an unknown key is named at its path with the key it probably was, a misspelt required
# key is not also "missing", a misspelt section hides no cascade of unknown references.

def _rename(entry: dict, old: str, new: str) -> None:
    entry[new] = entry.pop(old)


EXPECTED_NODE_KEYS = ("name, kind, location, qkdn_id, netconf_port, gnmi_port, interfaces, parameters, estimator, "
                      "relock_s, perf_interval_s, perf_change, kme, version")

MISTAKES = [
    ("node-key-misspelt", lambda d: _rename(d["nodes"][0], "location", "locaton"),
     ["nodes[0].locaton: unknown key (did you mean 'location'?)"]),
    ("node-key-unknown", lambda d: d["nodes"][1].update(colour="red"),
     [f"nodes[1].colour: unknown key; expected one of {EXPECTED_NODE_KEYS}"]),
    ("node-key-of-another-kind", lambda d: d["nodes"][0].update(memories=[]),
     [f"nodes[0].memories: unknown key; expected one of {EXPECTED_NODE_KEYS}"]),
    ("qkd-interface-key", lambda d: _rename(d["nodes"][0]["interfaces"][0], "role_support", "role"),
     ["nodes[0].interfaces[0].role: unknown key; expected one of id, att_point, role_support, wavelength_range, "
      "max_absorption, model"]),
    ("switch-option", lambda d: _rename(d["nodes"][3], "insertion_loss_db", "insertion_loss"),
     ["nodes[3].insertion_loss: unknown key (did you mean 'insertion_loss_db'?)"]),
    ("switch-cross-connect-required-key", lambda d: d["nodes"][3].update(cross_connects=[{"ingres": 1, "egress": 9}]),
     ["nodes[3].cross_connects[0].ingres: unknown key (did you mean 'ingress'?)"]),
    ("memory-key", lambda d: _rename(d["nodes"][4]["memories"][0], "capacity", "capacty"),
     ["nodes[4].memories[0].capacty: unknown key (did you mean 'capacity'?)"]),
    ("memory-required-id", lambda d: _rename(d["nodes"][4]["memories"][0], "id", "ids"),
     ["nodes[4].memories[0].ids: unknown key (did you mean 'id'?)"]),
    ("qkd-parameter-set", lambda d: d.update(qkd_parameters="modrn"),
     ["qkd_parameters: unknown parameter set 'modrn' (did you mean 'modern'?)"]),
    ("qkd-parameter-field", lambda d: d.update(qkd_parameters={"base": "modern", "muu": 0.4}),
     ["qkd_parameters.muu: unknown key (did you mean 'mu'?)"]),
    ("qkd-decoy-intensities", lambda d: d.update(qkd_parameters={"base": "modern", "nu": 0.6}),
     ["qkd_parameters: mu (0.5) must exceed nu + mu3 (0.6 + 0.0002)"]),
    ("qkd-block-size-as-text", lambda d: d.update(qkd_parameters={"base": "modern", "block_bits": "1e6"}),
     ["qkd_parameters.block_bits: expected a number, got a string '1e6' (YAML reads a number without a dot in "
      "its mantissa as text: write 1.0e+7 or 10000000)"]),
    ("qkd-probabilities", lambda d: d["nodes"][0].update(parameters={"base": "gys", "p_mu": 0.8, "q_x": 1}),
     ["nodes[0].parameters: p_mu (0.8) and p_nu (0.3) must be positive and leave mu3 a share (p_mu + p_nu < 1)",
      "nodes[0].parameters: q_x (1.0) must lie strictly between 0 and 1"]),
    ("qkd-estimator", lambda d: d["nodes"][0].update(estimator="finite"),
     ["nodes[0].estimator: expected one of finite-key, weak+vacuum, asymptotic, got 'finite'"]),
    ("fibre-key", lambda d: d["fibres"][0].update(colour="yellow"),
     ["fibres[0].colour: unknown key; expected one of id, length_km, attenuation_db_per_km, connector_loss_db, a, b"]),
    ("fibre-required-key-misspelt", lambda d: _rename(d["fibres"][1], "length_km", "lenght_km"),
     ["fibres[1].lenght_km: unknown key (did you mean 'length_km'?)"]),
    ("fibre-end-key", lambda d: _rename(d["fibres"][0]["a"], "device", "devce"),
     ["fibres[0].a.devce: unknown key (did you mean 'device'?)"]),
    ("channel-key", lambda d: _rename(d["classical_channels"][0], "wavelength_nm", "wavelength"),
     ["classical_channels[0].wavelength: unknown key (did you mean 'wavelength_nm'?)"]),
    ("section-misspelt", lambda d: _rename(d, "fibres", "fibers"),
     ["fibers: unknown section (did you mean 'fibres'?)"]),
    ("required-section-misspelt", lambda d: _rename(d, "nodes", "node"),
     ["node: unknown section (did you mean 'nodes'?)"]),
    ("section-unknown", lambda d: d.update(owner="lab 3"),
     ["owner: unknown section; expected one of name, seed, qkd_parameters, nodes, fibres, classical_channels, "
      "gnmi_gateway_port, controller, scenario, collector"]),
    ("controller-key", lambda d: _rename(d["controller"], "qkd_links", "qkd_link"),
     ["controller.qkd_link: unknown key (did you mean 'qkd_links'?)"]),
    ("controller-cross-connect", lambda d: _rename(d["controller"]["cross_connects"][0], "switch", "swich"),
     ["controller.cross_connects[0].swich: unknown key (did you mean 'switch'?)"]),
    ("qkd-link-end", lambda d: _rename(d["controller"]["qkd_links"][0]["a"], "interface", "iface"),
     ["controller.qkd_links[0].a.iface: unknown key (did you mean 'interface'?)"]),
    ("entanglement-link", lambda d: _rename(d["controller"]["entanglement_links"][0], "cutoff_ms", "cutoff"),
     ["controller.entanglement_links[0].cutoff: unknown key (did you mean 'cutoff_ms'?)"]),
    ("scenario-step", lambda d: _rename(d["scenario"][0], "at_s", "at"),
     ["scenario[0].at: unknown key (did you mean 'at_s'?)"]),
    ("collector-section", lambda d: _rename(d["collector"], "prometheus_port", "prometheus"),
     ["collector.prometheus: unknown key (did you mean 'prometheus_port'?)"]),
    ("collector-alarm", lambda d: _rename(d["collector"]["alarms"][0], "severity", "severty"),
     ["collector.alarms[0].severty: unknown key (did you mean 'severity'?)"]),
    ("sae-key", lambda d: _rename(d["controller"]["saes"][0], "node", "nodes"),
     ["controller.saes[0].nodes: unknown key (did you mean 'node'?)"]),
    ("sae-on-a-switch", lambda d: d["controller"]["saes"].append({"id": "sae-sw", "node": "sw1"}),
     ["controller.saes[3].node: sw1 is a switch node, not a qkd node"]),
    ("sae-twice", lambda d: d["controller"]["saes"].append({"id": "sae-bob", "node": "charlie"}),
     ["controller.saes[3].id: SAE sae-bob is listed twice"]),
    ("sae-id", lambda d: d["controller"]["saes"].append({"id": "sae/x", "node": "alice"}),
     ["controller.saes[3].id: expected an SAE ID ([A-Za-z0-9][A-Za-z0-9._-]*, at most 255), got 'sae/x'"]),
    ("qkd-app-slave", lambda d: d["controller"]["qkd_apps"][1].update(slaves=["sae-charly"]),
     ["controller.qkd_apps[1].slaves[0]: 'sae-charly' is not an SAE of controller.saes (did you mean "
      "'sae-charlie'?)"]),
    ("qkd-app-master-is-a-slave", lambda d: d["controller"]["qkd_apps"][0].update(slaves=["sae-alice"]),
     ["controller.qkd_apps[0].slaves[0]: sae-alice is the master or listed twice"]),
    ("qkd-app-key", lambda d: _rename(d["controller"]["qkd_apps"][0], "slaves", "slave"),
     ["controller.qkd_apps[0].slave: unknown key (did you mean 'slaves'?)"]),
    ("session-key", lambda d: _rename(d["controller"]["qkd_apps"][0]["session"], "burst", "bursts"),
     ["controller.qkd_apps[0].session.bursts: unknown key (did you mean 'burst'?)"]),
    ("session-rate", lambda d: d["controller"]["qkd_apps"][0]["session"].update(rate=0),
     ["controller.qkd_apps[0].session.rate: must be at least 1, got 0"]),
    ("fetch-key-size", lambda d: d["controller"]["qkd_apps"][0]["fetch"].update(key_size=100),
     ["controller.qkd_apps[0].fetch.key_size: must be a multiple of 8 bits, got 100"]),
    ("fetch-rate", lambda d: d["controller"]["qkd_apps"][0]["fetch"].update(rate="fast"),
     ["controller.qkd_apps[0].fetch.rate: expected a number, got a string 'fast'"]),
    ("wrong-type-fibre", lambda d: d["fibres"][0].update(length_km="ten"),
     ["fibres[0].length_km: expected a number, got a string 'ten'"]),
    ("wrong-type-node-option", lambda d: d["nodes"][0].update(relock_s="soon"),
     ["nodes[0].relock_s: expected a number, got a string 'soon'"]),
    ("wrong-type-section", lambda d: d.update(scenario={"at_s": 60}),
     ["scenario: expected a list, got a mapping"]),
    ("world-and-plan-together", lambda d: (_rename(d["fibres"][1], "length_km", "lenght_km"),
                                          _rename(d["scenario"][0], "text", "txt")),
     ["fibres[1].lenght_km: unknown key (did you mean 'length_km'?)",
      "scenario[0].txt: unknown key (did you mean 'text'?)"]),
]


@pytest.mark.parametrize("mutate,lines", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_every_mistake_is_named_exactly_once(tmp_path, mutate, lines):
    path = mutated(tmp_path, mutate)
    assert issues_of(path) == [f"{path}: {line}" for line in lines]


BAD = """\
name: lab
nodes:
  - {name: alice, kind: qkd, locaton: Lab A}
  - {name: bob, kind: qkd, colour: red}
fibers:
  - {id: f1, lenght_km: 10, a: {device: alice, port: 1}, b: {device: bob, port: 1}}
classical_channels:
  - {id: c1, fibre: f1, from: alice, launch_power_dbm: -10}
controller:
  qkd_links: [{id: 5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01, a: {node: alice}, b: {nod: bob}}]
"""
WORLD_LINES = [
    "bad.yaml: fibers: unknown section (did you mean 'fibres'?)",
    "bad.yaml: nodes[0].locaton: unknown key (did you mean 'location'?)",
    f"bad.yaml: nodes[1].colour: unknown key; expected one of {EXPECTED_NODE_KEYS}",
]
"""The user's file: what it says about the world, named as the user named the file."""
QSTRATA = Path(sys.executable).with_name("qstrata")


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_qstrata_up_names_every_mistake_of_a_relative_file_and_starts_nothing(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD)
    result = _run(tmp_path, "up", "--topology", "bad.yaml", "--state-dir", "state", "--no-dashboard")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [*WORLD_LINES, "bad.yaml: controller.qkd_links[0].b.nod: unknown key "
                                                        "(did you mean 'node'?)"]
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no state directory, no agent


def test_qstrata_agent_and_collect_refuse_the_same_file_the_same_way(tmp_path):
    """Both read the file's world (nodes, fibres, channels: the agent its twin, the collector its
    dashboard's drawing), so both name every mistake in it; `qstrata up`'s own sections are its."""
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "targets.yaml").write_text("targets: []\n")
    agent = _run(tmp_path, "agent", "--kind", "qkd", "--name", "alice", "--topology", "bad.yaml",
                 "--state-dir", "agent-state", "--netconf-port", "0")
    collect = _run(tmp_path, "collect", "--targets", "targets.yaml", "--store", "none", "--dashboard", "127.0.0.1:0",
                   "--topology", "bad.yaml", "--state-dir", "collector-state")
    for result in (agent, collect):
        assert (result.returncode, result.stderr.splitlines(), result.stdout) == (2, WORLD_LINES, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "targets.yaml"]
