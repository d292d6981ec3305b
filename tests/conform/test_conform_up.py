"""`qstrata conform` against a network started by `qstrata up`, both run as a user runs them: `up`
from a working folder with a relative `--state-dir state/up`, then `qstrata conform --endpoints
state/up/endpoints.json --agent NAME` from the same folder. Every check of every agent passes for
its own reason (issue 17: 11 gNMI checks failed, there was no way to name the gNMI target, and
the per-agent credentials.json carried no CA).

The network is the default one, closed loop included: the QKD checks run while the scripted
disturbance re-routes the link, and both must do their job (the checks wait for a link that is
being re-routed; the re-route still happens). One `up` for the module, at --speed 20."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from conform_helpers import QSTRATA, results  # noqa: E402
from lxml import etree  # noqa: E402
from test_up import OPSW, connect, start_up, stop  # noqa: E402

ENDPOINTS = "state/up/endpoints.json"


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """`qstrata up --state-dir state/up` started in a fresh working folder (the process inherits the
    folder, so the relative path is resolved as a user's would be)."""
    cwd = tmp_path_factory.mktemp("conform-up")
    here = os.getcwd()
    os.chdir(cwd)
    try:
        proc, lines = start_up(Path("state/up"), "--speed", "20")
    finally:
        os.chdir(here)
    yield {"cwd": cwd, "proc": proc, "lines": lines}
    stop(proc)


def conform(network, *args: str, timeout: float = 240) -> tuple[int, str, str]:
    proc = subprocess.run([str(QSTRATA), "conform", *args], cwd=network["cwd"], capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def read_until(network, words: str, timeout: float) -> str:
    """`up`'s output (events, one status line every 10 s) up to the first line containing `words`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = network["proc"].stdout.readline()
        network["lines"].append(line)
        if words in line:
            return line
        if not line:
            break
    pytest.fail(f"`qstrata up` never said {words!r}:\n" + "".join(network["lines"][-30:]))


def endpoints(network) -> dict:
    return json.loads((network["cwd"] / ENDPOINTS).read_text())


def test_qkd_checks_and_the_closed_loop_both_do_their_job(network, tmp_path):
    """The link life cycle checks run as the scripted disturbance strikes: they wait for a link the
    closed loop is re-routing, and the closed loop still re-routes it over the spare."""
    read_until(network, "scenario:", 60)
    out = tmp_path / "qkd.json"
    code, stdout, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", "alice", "--check", "QKD",
                                   "--report", str(out))
    assert code == 0, stdout + stderr
    got = results(out)
    assert [r["verdict"] for r in got.values()] == ["pass"] * 4, stdout
    read_until(network, "action reroute-spare (raise): ok", 60)


def test_every_check_passes_on_alice(network, tmp_path):
    out = tmp_path / "alice.json"
    code, stdout, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", "alice", "--report", str(out))
    got = results(out)
    bad = {k: (r["verdict"], r["reason"]) for k, r in got.items() if r["verdict"] != "pass" and k != "NC-CAP-005"}
    assert not bad and code == 0, stdout + stderr
    report = json.loads(out.read_text())
    gateway = next(a for a in endpoints(network)["agents"] if a["name"] == "alice")["gnmi"]
    assert report["profile"] == "etsi-qkd-015"
    assert report["targets"]["gnmi"] == f"127.0.0.1:{gateway['port']}" and report["targets"]["gnmi_target"] == "alice"
    assert len([k for k in got if k.startswith("GN-")]) == 13 and len([k for k in got if not k.startswith("RC-")]) == 66
    if next(a for a in endpoints(network)["agents"] if a["name"] == "alice").get("restconf"):
        assert len([k for k in got if k.startswith("RC-")]) >= 50  # the agent's RESTCONF, from endpoints.json
    # GN-GET-002 passed for the path: its control Get (same target, same login) was answered
    exchanges = got["GN-GET-002"]["evidence"]["exchanges"]
    assert "no-such-conform-leaf" in exchanges[-2]["received"] and "(control)" in exchanges[-1]["sent"]
    assert 'target: "alice"' in exchanges[-1]["received"]


@pytest.mark.parametrize(("agent", "profile"), [("bob", "etsi-qkd-015"), ("sw1", "optical-switch"), ("mem-a", "qfs")])
def test_each_kind_passes_with_the_profile_of_its_kind(network, tmp_path, agent, profile):
    """The profile follows the agent's kind; editing and error checks and the gNMI checks (all but
    the 5 s cadence one, which alice's run covers) pass on each."""
    out = tmp_path / f"{agent}.json"
    code, stdout, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", agent, "--check", "NC-EDIT",
                                   "--check", "NC-ERR", "--check", "GN", "--check", "QKD-PERF", "--skip", "GN-SUB-003",
                                   "--report", str(out))
    got = results(out)
    assert code == 0 and all(r["verdict"] == "pass" for r in got.values()), stdout + stderr
    assert json.loads(out.read_text())["profile"] == profile
    assert len([k for k in got if k.startswith("GN-")]) == 12


def test_the_credentials_recipe_with_a_target(network, tmp_path):
    """An agent's credentials.json under `up` names the CA of the gateway that serves its gNMI, so
    `--credentials FILE --gnmi HOST:PORT --target NAME` needs nothing else."""
    alice = next(a for a in endpoints(network)["agents"] if a["name"] == "alice")
    creds = json.loads(Path(alice["credentials"]).read_text())
    assert creds["ca"] == alice["gnmi"]["ca"] and Path(creds["ca"]).is_file()
    out = tmp_path / "recipe.json"
    code, stdout, stderr = conform(network, "--credentials", "state/up/alice/credentials.json", "--gnmi",
                                   f"127.0.0.1:{alice['gnmi']['port']}", "--target", "alice", "--check", "GN-GET",
                                   "--check", "GN-AUTH", "--check", "GN-SET", "--check", "GN-SUB-001",
                                   "--report", str(out))
    assert code == 0 and all(r["verdict"] == "pass" for r in results(out).values()), stdout + stderr


def test_without_a_target_no_gnmi_check_passes_for_the_wrong_reason(network, tmp_path):
    """The gateway serves seven agents: without --target it answers every Get, Set and Subscribe
    'set prefix.target'. Only Capabilities (which names no target) passes; GN-GET-002, which
    expects INVALID_ARGUMENT for a bad path, used to pass on that INVALID_ARGUMENT."""
    alice = next(a for a in endpoints(network)["agents"] if a["name"] == "alice")
    out = tmp_path / "no-target.json"
    code, stdout, stderr = conform(network, "--credentials", "state/up/alice/credentials.json", "--ca",
                                   "state/up/gnmi/ca.pem", "--gnmi", f"127.0.0.1:{alice['gnmi']['port']}",
                                   "--check", "GN", "--report", str(out))
    got = results(out)
    assert code == 1, stdout + stderr
    assert {k for k, r in got.items() if r["verdict"] == "pass"} == {"GN-CAP-001"}, stdout
    assert "prefix.target" in got["GN-GET-002"]["reason"]


def test_endpoints_mistakes_are_one_line(network):
    code, _, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", "carol")
    assert code == 2 and stderr.strip() == (
        f"qstrata conform: no agent 'carol' in {ENDPOINTS}; known: alice, bob, charlie, sw1, mem-a, mem-b, mem-c"), stderr
    code, _, stderr = conform(network, "--endpoints", ENDPOINTS)
    assert code == 2 and "--agent NAME (alice, bob, charlie, sw1, mem-a, mem-b, mem-c)" in stderr and len(stderr.splitlines()) == 1


@pytest.mark.parametrize("agent", ["sw1", "mem-a"])
def test_every_restconf_check_passes_on_each_kind(network, tmp_path, agent):
    """A switch reports the read-only status of every port it has: the kit's "nothing written"
    follow-ups read configuration only (content=config), "an entry that does not exist" is a port
    the switch does not have, and the fields check leaves out a sibling the switch has. Ten RC
    checks failed on sw1 for the kit's own mistake."""
    out = tmp_path / f"rc-{agent}.json"
    code, stdout, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", agent, "--check", "RC",
                                   "--hostile", "--report", str(out))
    got = results(out)
    bad = {k: r["reason"] for k, r in got.items() if r["verdict"] not in ("pass", "not-applicable")}
    assert not bad and code == 0, bad
    assert len([r for r in got.values() if r["verdict"] == "pass"]) >= 50, stdout


def test_the_readme_restconf_recipe(network):
    """`--restconf URL --credentials FILE`, the README's line: credentials.json's `ca` names the
    gNMI gateway's CA, its `restconf_ca` the agent's own, which signed its RESTCONF certificate."""
    bob = next(a for a in endpoints(network)["agents"] if a["name"] == "bob")
    code, stdout, stderr = conform(network, "--restconf", bob["restconf"]["url"], "--credentials",
                                   "state/up/bob/credentials.json", "--check", "RC-GET", "-q")
    assert code == 0 and "0 failed" in stdout, stdout + stderr


def test_restconf_tls_mistakes_say_what_happened(network):
    """A certificate the CA given does not verify is said as such (not "unreachable"); without a
    CA the kit refuses, as it does for gNMI, unless told --restconf-insecure, which it says aloud."""
    bob = next(a for a in endpoints(network)["agents"] if a["name"] == "bob")
    url = bob["restconf"]["url"]
    code, _, stderr = conform(network, "--restconf", url, "--credentials", "state/up/bob/credentials.json",
                              "--ca", "state/up/gnmi/ca.pem", "-q")
    assert code == 2 and stderr.strip() == (f"qstrata conform: RESTCONF {url}: its certificate does not verify "
                                            "against the CA state/up/gnmi/ca.pem: self-signed certificate in "
                                            "certificate chain"), stderr
    code, _, stderr = conform(network, "--restconf", url, "--user", "admin", "--password", "x", "-q")
    assert code == 2 and stderr.strip() == ("qstrata conform: RESTCONF over HTTPS needs --ca FILE (the CA of its "
                                            "certificate) or --restconf-insecure"), stderr
    code, stdout, stderr = conform(network, "--restconf", url, "--credentials", "state/up/bob/credentials.json",
                                   "--restconf-insecure", "--check", "RC-GET-001", "-q")
    assert code == 0 and "1 passed" in stdout and "not verified" in stderr, stdout + stderr


def test_a_kme_pair_that_is_no_application_is_a_set_up_mistake(network):
    """An unknown slave: the KME rightly refuses the pair; the kit says so in one line (exit 2)
    instead of failing the KME on checks whose precondition never held."""
    code, stdout, stderr = conform(network, "--profile", "etsi-qkd-014", "--endpoints", ENDPOINTS, "--agent", "alice",
                                   "--sae", "sae-alice", "--slave", "nobody", "-q")
    assert code == 2 and not stdout and len(stderr.strip().splitlines()) == 1, stdout + stderr
    assert "refuses the pair master sae-alice, slave nobody" in stderr and "HTTP 401" in stderr, stderr


def test_a_mistyped_check_id_is_a_usage_error(network):
    code, stdout, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", "alice", "--check", "NOSUCH")
    assert code == 2 and not stdout and stderr.strip() == (
        "qstrata conform: unknown check id NOSUCH; ids start with GN-, HX-, NC-, QKD-, RC- (--list shows them)"), stderr


def switch_ports(network) -> dict[int, str | None]:
    """sw1's configured ports in running: port-id -> label."""
    with connect(endpoints(network), "sw1") as m:
        data = etree.fromstring(m.get_config("running", filter=("subtree", f'<port-config xmlns="{OPSW}"/>'))
                                .data_xml.encode())
    return {int(p.findtext(f"{{{OPSW}}}port-id")): p.findtext(f"{{{OPSW}}}label") for p in data.iter(f"{{{OPSW}}}port")}


def test_a_run_leaves_the_switch_ports_as_it_found_them(network, tmp_path):
    """A switch's test entries are real ports (1-3: it refuses configuration of ports it does not
    have), labelled by its operator; NETCONF, gNMI and RESTCONF checks edit and delete them. After
    the run they are as the run found them."""
    before = switch_ports(network)
    assert before.get(1) and before.get(2), before
    code, stdout, stderr = conform(network, "--endpoints", ENDPOINTS, "--agent", "sw1", "--check", "NC-EDIT",
                                   "--check", "GN-SET", "--check", "RC-PUT", "--check", "RC-DELETE", "-q")
    assert code == 0, stdout + stderr
    assert switch_ports(network) == before
    sw1 = next(a for a in endpoints(network)["agents"] if a["name"] == "sw1")
    code, stdout, stderr = conform(network, "--restconf", sw1["restconf"]["url"], "--credentials",
                                   "state/up/sw1/credentials.json", "--profile", "optical-switch", "--check", "RC-PUT",
                                   "--check", "RC-DELETE", "-q")
    assert code == 0, stdout + stderr
    assert switch_ports(network) == before, "RESTCONF alone: the ports as the run found them"
