"""`qstrata up --eavesdropper FIBRE:FRACTION@START-STOP` (issue 20, section 3), run as people run it
from a working folder: an intercept-resend eavesdropper attacks 30 % of the pulses on the only
fibre of an alice-bob link for a while. While she is there the QBER is what the physics says
(e_d + f (1/4 - e_d/2)), the finite-key bound leaves no key (30 % is above its threshold), ETSI 015
reports the link down over NETCONF with the eavesdropper's fibre, the collector raises its QBER
alarm, and the KME refuses an application's ETSI GS QKD 014 request (`qstrata keys get`) with a
503 naming the compromised link, although its store still holds the key distilled before the
attack: no key of an attacked block is stored, and none is handed out meanwhile. When she leaves,
clean blocks come and the same request gets keys again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from lxml import etree

pytest.importorskip("ncclient")
from agent_processes import QSTRATA  # noqa: E402
from qstrata.agents.devices.physics import intercept_resend  # noqa: E402
from qstrata.agents.devices.qkd_twin import qkd_parameters  # noqa: E402
from qstrata.agents.devices.topology import TopologyError  # noqa: E402
from qstrata.agents.devices.world import World  # noqa: E402
from qstrata.agents.testbed.network import UpOptions, check  # noqa: E402
from test_up import QKD, SS, connect, start_up, stop  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnmi"))
from gnmi_helpers import wait_until  # noqa: E402

TOPOLOGY = Path(__file__).with_name("topologies") / "eavesdropper.yaml"
LINK = "77777777-0000-4000-8000-0000000000ab"
FRACTION = 0.3
SPEED = 10  # the attack from 90 to 150 simulated seconds: 9 to 15 s of wall time after configuration


def keys_get(work: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), "keys", "get", "sae-bob", "--sae", "sae-alice", "--number", "2", "--size",
                           "256"], cwd=work, capture_output=True, text=True, timeout=60)


def link_figures(endpoints: dict) -> dict:
    """alice's view of the link and its key store (NETCONF <get>)."""
    with connect(endpoints, "alice") as m:
        data = etree.fromstring(m.get(filter=("subtree", f'<qkd_node xmlns="{QKD}"><qkd_links/></qkd_node>'))
                                .data_xml.encode())
        store = etree.fromstring(m.get(filter=("subtree", f'<service-stratum xmlns="{SS}"><kme><key-stores/>'
                                                          "<key-delivery/></kme></service-stratum>")).data_xml.encode())
    return {"status": (data.findtext(f".//{{{QKD}}}qkdl_status") or "").split(":")[-1],
            "skr": int(data.findtext(f".//{{{QKD}}}skr") or -1),
            "qber": float(data.findtext(f".//{{{QKD}}}phys_perf/{{{QKD}}}value") or -1),
            "stored": int(store.findtext(f".//{{{SS}}}stored-bits") or 0),
            "discarded": int(store.findtext(f".//{{{SS}}}discarded-bits") or 0),
            "discarded_blocks": int(store.findtext(f".//{{{SS}}}discarded-blocks") or 0),
            "compromised": store.findtext(f".//{{{SS}}}compromised-since"),
            "refused": {r.findtext(f"{{{SS}}}reason"): int(r.findtext(f"{{{SS}}}count") or 0)
                        for r in store.iter(f"{{{SS}}}refused")}}


def notifications(m, seconds: float) -> list[etree._Element]:
    """ETSI 015 notifications that arrive within `seconds`."""
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        note = m.take_notification(block=True, timeout=1)
        if note is not None:
            out.append(etree.fromstring(note.notification_xml.encode()))
    return out


def test_an_eavesdropper_is_seen_and_no_key_of_hers_is_delivered(tmp_path):
    world = World.from_yaml(TOPOLOGY, deterministic=True)
    params = qkd_parameters(world.topology.options.get("qkd_parameters"))
    loss = world.plant.fibres["f-alice-bob"].loss_db
    assert FRACTION > intercept_resend.threshold(params, loss)  # above the bound's threshold: no key at all
    want_qber = intercept_resend.signal_qber(params, loss, FRACTION)

    proc, _ = start_up(Path("state/up"), "--topology", str(TOPOLOGY), "--speed", str(SPEED), "--no-dashboard",
                       "--eavesdropper", f"f-alice-bob:{FRACTION}@90-150", cwd=tmp_path)
    try:
        log = tmp_path / "state/up/up.log"
        endpoints = json.loads((tmp_path / "state/up/endpoints.json").read_text())
        added = subprocess.run([str(QSTRATA), "sae", "add", "sae-alice", "--state-dir", "state/up/alice"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        before = wait_until(lambda: (done := keys_get(tmp_path)).returncode == 0 and done, 20)
        assert before, keys_get(tmp_path).stderr  # key is delivered before she comes
        with connect(endpoints, "alice") as m:
            m.create_subscription()  # before she comes: ETSI 015 tells what happens next
            seen: list[etree._Element] = []
            deadline = time.monotonic() + 40
            while (done := keys_get(tmp_path)).returncode == 0 and time.monotonic() < deadline:
                seen += notifications(m, 0.5)
            refused = done
            seen += notifications(m, 2)
        # the application is refused with a reason it can act on: 503, the link, the fibre
        assert refused.returncode == 1, refused.stderr  # a refusal, as `qstrata keys` exits on any
        assert "refused (503): QKD link " + LINK + " is compromised since " in refused.stderr, refused.stderr
        assert "eavesdropper on fibre f-alice-bob" in refused.stderr, refused.stderr
        assert refused.stdout == ""
        figures = link_figures(endpoints)
        assert figures["status"] == "PASSIVE" and figures["skr"] == 0, figures
        assert figures["qber"] == pytest.approx(want_qber, abs=0.003), (figures, want_qber)
        assert figures["compromised"] and figures["discarded_blocks"] > 0, figures
        assert figures["stored"] > 0, "the key made before the attack is kept, not delivered meanwhile"
        assert figures["refused"].get("link-compromised", 0) >= 1, figures  # the KME's telemetry says why
        # ETSI 015 over NETCONF: the link went down, and the alarm says why
        told = {etree.QName(child).localname: " ".join(child.itertext()) for note in seen for child in note
                if LINK in " ".join(child.itertext())}
        assert "eavesdropper on fibre f-alice-bob" in told.get("sdqkdn_link_down", ""), told
        assert "eavesdropper on fibre f-alice-bob" in told.get("alarm", ""), told
        # the collector's QBER alarm
        assert wait_until(lambda: "alarm raised: qber-high on alice (MAJOR)" in log.read_text(), 15), \
            log.read_text()[-3000:]
        assert "scenario: eavesdropper on fibre f-alice-bob: intercept-resend on 30% of the pulses" in log.read_text()

        # she leaves: clean blocks, the link ACTIVE again and key delivered again
        after = wait_until(lambda: (done := keys_get(tmp_path)).returncode == 0 and done, 40)
        assert after, keys_get(tmp_path).stderr
        assert "scenario: the eavesdropper leaves fibre f-alice-bob" in log.read_text()
        figures = link_figures(endpoints)
        assert figures["status"] == "ACTIVE" and figures["compromised"] is None, figures
        assert wait_until(lambda: "alarm cleared: qber-high on alice" in log.read_text(), 15), log.read_text()[-3000:]
    finally:
        assert stop(proc) == 0


def test_the_eavesdropper_is_a_scenario_event_in_the_topology_too(tmp_path):
    doc = yaml.safe_load(TOPOLOGY.read_text())
    doc["scenario"] = [{"at_s": 30, "fibre": "f-alice-bob", "eavesdropper": 0.25, "until_s": 90, "text": "Eve"}]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    steps = check(UpOptions(topology=path, eavesdroppers=("f-alice-bob:10%@100",)))[2].scenario
    assert [(s.at_s, s.fibre, s.eavesdropper) for s in steps] == [
        (30, "f-alice-bob", 0.25), (90, "f-alice-bob", 0.0), (100, "f-alice-bob", 0.1)]
    doc["scenario"] = [{"at_s": 30, "fibre": "f-alice-bob", "eavesdropper": 1.5},
                       {"at_s": 30, "fibre": "f-alice-bob", "eavesdropper": 0.5, "until_s": 20}]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TopologyError) as bad:
        check(UpOptions(topology=path))
    assert bad.value.issues == [f"{path}: scenario[0].eavesdropper: 1.5 is not a fraction of the pulses (0 to 1)",
                                f"{path}: scenario[1].until_s: 20 is not after at_s (30)"]


@pytest.mark.parametrize(("flag", "says"), [
    ("f-alice-bb:0.3", "unknown fibre 'f-alice-bb' (did you mean 'f-alice-bob'?)"),
    ("f-alice-bob:1.3", "the fraction of pulses attacked is above 0 and at most 1 (or 100%), not 1.3"),
    ("f-alice-bob", "expected FIBRE:FRACTION[@START[-STOP]], e.g. spool-25:0.3@60-120"),
    ("f-alice-bob:0.3@60-20", "START is 0 or more and STOP after START (simulated seconds)"),
    ("f-alice-bob:x@1", "FRACTION, START and STOP are numbers, e.g. spool-25:0.3@60-120"),
])
def test_a_bad_eavesdropper_flag_is_one_line_and_exit_2_before_anything_starts(tmp_path, flag, says):
    done = subprocess.run([str(QSTRATA), "up", "--topology", str(TOPOLOGY), "--eavesdropper", flag], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == f"--eavesdropper {flag}: {says}\n", done.stderr
    assert not (tmp_path / "state").exists()
