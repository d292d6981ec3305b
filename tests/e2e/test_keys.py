"""`qstrata keys` and `qstrata up`'s built-in key delivery application, against a real `qstrata up`
of tests/e2e/topologies/keys.yaml run as people run it: from a working folder with the default,
relative state directory (state/up), SAE certificates from `qstrata sae add` and from `up` itself.

The topology's applications are made to be refused: sae-alice -> sae-bob fetches four times what its
token bucket allows ("rate limited"), sae-alice -> sae-charlie is relayed through bob over a 120 km
hop that makes a quarter of what it fetches ("not enough key"); sae-people -> sae-bob is for
`qstrata keys`."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from agent_processes import QSTRATA
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnmi"))
from gnmi_helpers import wait_until  # noqa: E402
from qstrata.agents.testbed.controller import kme_xml  # noqa: E402
from qstrata.agents.testbed.keyapp import route_via  # noqa: E402
from qstrata.agents.testbed.network import NETWORK_TOPOLOGY, UpOptions, check  # noqa: E402

TOPOLOGY = Path(__file__).with_name("topologies") / "keys.yaml"
QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
SS = "urn:qstrata:yang:qstrata-ss"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
APP_DIRECT, APP_RELAYED = "55555555-0000-4000-8000-000000000001", "55555555-0000-4000-8000-000000000002"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The working folder of a running `qstrata up --topology keys.yaml --speed 2`; its state in
    state/up (the default); `qstrata sae add sae-people` done as a person would."""
    work = tmp_path_factory.mktemp("keys")
    out = (work / "up.out").open("w")
    proc = subprocess.Popen([str(QSTRATA), "up", "--topology", str(TOPOLOGY), "--speed", "2", "--no-dashboard"],
                            cwd=work, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: (work / "state/up/endpoints.json").exists() or proc.poll() is not None, 60)
        assert proc.poll() is None, (work / "up.out").read_text()
        added = subprocess.run([str(QSTRATA), "sae", "add", "sae-people", "--state-dir", "state/up/alice"], cwd=work,
                               capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        yield work
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(30) == 0, (work / "up.out").read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
            out.close()


def keys(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), "keys", *args], cwd=work, capture_output=True, text=True, timeout=60)


def ready(work: Path) -> subprocess.CompletedProcess:
    """`keys status` of the people's pair once its link holds key."""
    def status():
        done = keys(work, "status", "sae-bob", "--sae", "sae-people", "--format", "json")
        return done if done.returncode == 0 and json.loads(done.stdout)["stored_key_count"] > 16 else None

    done = wait_until(status, 30)
    assert done, keys(work, "status", "sae-bob", "--sae", "sae-people").stderr
    return done


def test_get_then_get_by_id_gives_the_slave_the_same_keys(work):
    ready(work)
    got = keys(work, "get", "sae-bob", "--sae", "sae-people", "--number", "3", "--size", "512")
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(UUID + r"  [0-9a-f]{128}", line) for line in lines), lines
    assert got.stderr.strip() == ("3 key(s) of 512 bits for sae-bob, who get them with: qstrata keys get-by-id "
                                  "sae-people KEY_ID... --sae sae-bob")
    ids = [line.split()[0] for line in lines]
    fetched = keys(work, "get-by-id", "sae-people", *ids, "--sae", "sae-bob")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.splitlines() == lines  # the slave's keys are the master's, bit for bit
    again = keys(work, "get-by-id", "sae-people", ids[0], "--sae", "sae-bob")
    assert again.returncode == 1 and again.stdout == ""
    assert re.fullmatch(r"qstrata keys: the KME at https://127\.0\.0\.1:\d+ refused \(401\): the key_IDs asked are not "
                        r"all available to SAE sae-bob from master sae-people: unknown, already delivered, or for "
                        r"another SAE\n", again.stderr), again.stderr


def test_keys_as_json_and_base64(work):
    ready(work)
    got = keys(work, "get", "sae-bob", "--sae", "sae-people", "--number", "2", "--format", "json")
    assert got.returncode == 0, got.stderr
    container = json.loads(got.stdout)  # the ETSI GS QKD 014 Key container: keys in base64, the KME's key_size
    assert [len(base64.b64decode(k["key"], validate=True)) for k in container["keys"]] == [32, 32]
    ids = [k["key_ID"] for k in container["keys"]]
    fetched = keys(work, "get-by-id", "sae-people", *ids, "--sae", "sae-bob", "--encoding", "base64")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.splitlines() == [f"{k['key_ID']}  {k['key']}" for k in container["keys"]]


def test_status_for_people_and_as_json(work):
    doc = json.loads(ready(work).stdout)
    assert (doc["master_SAE_ID"], doc["slave_SAE_ID"], doc["key_size"]) == ("sae-people", "sae-bob", 256)
    text = keys(work, "status", "sae-bob", "--sae", "sae-people")
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line.split()[1:] for line in text.stdout.splitlines()}
    assert list(rows) == list(doc)  # every field of the Status object, in the KME's order
    assert rows["key_size"] == ["256", "bits"] and rows["max_key_size"] == [f"{doc['max_key_size']:,}", "bits"]
    assert rows["stored_key_count"][1] == "keys" and int(rows["stored_key_count"][0].replace(",", "")) > 16
    assert rows["source_KME_ID"] == [doc["source_KME_ID"]]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["get", "sae-bob", "--sae", "sae-people", "--size", "100"], 1,
     r"the KME at https://127\.0\.0\.1:\d+ refused \(400\): size 100 is not a multiple of 8"),
    (["get", "sae-bob", "--sae", "sae-people", "--number", "0"], 1,
     r"the KME at https://127\.0\.0\.1:\d+ refused \(400\): number 0 is outside 1\.\.1024"),
    (["status", "sae-charlie", "--sae", "sae-people"], 1,
     r"the KME at https://127\.0\.0\.1:\d+ refused \(401\): SAE sae-people may not get keys for sae-charlie: no "
     r"qkd_app has server_app_id sae-people and these client_app_ids"),
    (["get", "sae-bob"], 2, r"which SAE are you\? give --sae NAME \(certificates here: sae-alice \(alice\), "
                            r"sae-people \(alice\), sae-bob \(bob\), sae-charlie \(charlie\)\)"),
    (["get", "sae-bob", "--sae", "nobody"], 2,
     r"no certificate for SAE nobody in state/up/alice/sae, state/up/bob/sae, state/up/charlie/sae: issue one with "
     r"`qstrata sae add nobody --state-dir state/up/alice`"),
    (["get", "sae-bob", "--sae", "sae-people", "--kme", "dave"], 2,
     r"no KME 'dave' in this network \(KMEs: alice, bob, charlie\)"),
    (["get", "sae-bob", "--sae", "sae-people", "--state-dir", "elsewhere"], 2,
     r"no network is running in elsewhere \(no elsewhere/endpoints\.json\): start one with `bash scripts/dev\.sh "
     r"run`, or give --state-dir or --endpoints"),
], ids=["size", "number", "no-app", "no-sae", "no-certificate", "no-kme", "no-network"])
def test_every_mistake_is_one_line(work, args, code, message):
    ready(work)
    done = keys(work, *args)
    assert done.returncode == code and done.stdout == "", (done.stdout, done.stderr)
    assert re.fullmatch(f"qstrata keys: {message}\n", done.stderr), done.stderr


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "{path} is not an endpoints.json of qstrata up (agents[] with name and kme {{url, ca, sae_dir}})"),
    ('{"agents": [{"name": "alice", "kme": {"url": 1}}]}',
     "{path} is not an endpoints.json of qstrata up (agents[] with name and kme {{url, ca, sae_dir}})"),
    ("{", "cannot read {path}: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
], ids=["a-list", "a-bad-kme", "not-json"])
def test_what_is_not_an_endpoints_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "endpoints.json"
    path.write_text(content)
    done = keys(tmp_path, "get", "sae-bob", "--sae", "sae-alice", "--endpoints", "endpoints.json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"qstrata keys: {message.format(path='endpoints.json')}\n"


def test_an_endpoints_file_left_by_a_network_that_ended_is_no_network(tmp_path):
    """`kill -9` of `up` leaves its endpoints.json; nobody holds the folder's lock any more."""
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "endpoints.json").write_text(json.dumps({"agents": [
        {"name": "alice", "kme": {"url": "https://127.0.0.1:9", "ca": "ca.pem", "sae_dir": "gone/alice/sae"}}]}))
    done = keys(tmp_path, "get", "sae-bob", "--sae", "sae-alice", "--state-dir", "gone")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("qstrata keys: no network is running in gone (its endpoints.json is left from one that "
                           "ended): start one with `bash scripts/dev.sh run`\n")


def test_a_closed_stdout_ends_keys_quietly(work):
    """`qstrata keys get ... | head -1`: the reader leaves once it has its line; keys ends with
    exit 0 and nothing on stderr, as `query` and `yang` do (was: `qstrata keys: Broken pipe`, exit
    1, after the keys were delivered). The keys are more than a pipe's buffer (8 KiB), so the write
    fails while keys prints, not at exit."""
    def stored() -> bool:
        doc = json.loads(ready(work).stdout)
        return doc["stored_key_count"] * doc["key_size"] >= 20 * 2048

    assert wait_until(stored, 40)
    for _ in range(2):
        reader, writer = os.pipe()
        os.close(reader)  # the `head` that has read its line
        try:
            done = subprocess.run([str(QSTRATA), "keys", "get", "sae-bob", "--sae", "sae-people", "--number", "20",
                                   "--size", "2048"], cwd=work, stdout=writer, stderr=subprocess.PIPE, text=True,
                                  timeout=60)
        finally:
            os.close(writer)
        assert done.returncode == 0 and done.stderr == "", (done.returncode, done.stderr)


def test_sae_add_refuses_the_networks_folder(work):
    """`qstrata sae add y --state-dir state/up` issued a certificate from the gNMI gateway's CA,
    which no KME accepts; now it names the agent's folder to use instead."""
    done = subprocess.run([str(QSTRATA), "sae", "add", "y", "--state-dir", "state/up"], cwd=work, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, ""), done
    assert done.stderr == ("qstrata sae: state/up is a network's folder; an agent's is state/up/<node>, e.g. "
                           "state/up/alice\n")
    assert not (work / "state/up/sae").exists()


def _deliveries(work: Path) -> dict[str, dict[str, int]]:
    """alice's KME figures per application: refusals by reason, and keys delivered (NETCONF)."""
    from ncclient import manager

    doc = json.loads((work / "state/up/endpoints.json").read_text())
    alice = next(a for a in doc["agents"] if a["name"] == "alice")
    cred = json.loads(Path(alice["credentials"]).read_text())
    with manager.connect(host="127.0.0.1", port=alice["netconf"]["port"], username=cred["username"],
                         password=cred["password"], hostkey_verify=False, allow_agent=False, look_for_keys=False,
                         timeout=20) as m:
        data = etree.fromstring(m.get(filter=("subtree", f'<qkd_node xmlns="{QKD}"><qkd_applications/></qkd_node>'))
                                .data_xml.encode())
    out = {}
    for app in data.iter(f"{{{QKD}}}qkd_app"):
        figures = app.find(f"{{{SS}}}key-delivery")
        if figures is None:
            continue
        counts = {r.findtext(f"{{{SS}}}reason"): int(r.findtext(f"{{{SS}}}count")) for r in figures.iter(f"{{{SS}}}refused")}
        counts["keys-delivered"] = int(figures.findtext(f"{{{SS}}}keys-delivered"))
        out[app.findtext(f"{{{QKD}}}app_id")] = counts
    return out


def test_the_application_gets_keys_and_counts_refusals_by_reason(work):
    """Both pairs get keys, equal at both ends (the application compares them), and are refused
    for what the KME says: the bucket for the direct pair, the 120 km hop for the relayed one --
    told once each with the KME's message, counted in the status line, and the same reasons the
    KME itself reports over NETCONF."""
    state = work / "state" / "up"
    def log() -> str:
        return (state / "up.log").read_text()

    wanted = ["keys: sae-alice->sae-bob: first ", "keys: sae-alice->sae-charlie: first ",
              "keys: sae-alice->sae-bob: enc_keys refused: 503 rate limited: the session's token bucket holds ",
              "keys: sae-alice->sae-charlie: enc_keys refused: 503 not enough key: "]
    assert wait_until(lambda: all(w in log() for w in wanted), 40), [w for w in wanted if w not in log()]
    assert re.search(r"keys: sae-alice->sae-charlie: first \d+ keys of 2048 bits delivered through bob, equal at "
                     r"both ends", log())
    assert "(expected when the route's links make less key than the pair fetches" in log()
    assert "MISMATCH" not in log()
    assert log().count("enc_keys refused: 503 rate limited") == 1  # told once; counted from then on

    def status_line() -> bool:
        """The latest status line (every 10 s) counts keys and refusals of both pairs."""
        lines = [line for line in (work / "up.out").read_text().splitlines() if " status: keys " in line]
        found = re.search(r"keys sae-alice->sae-bob (\d+) delivered .* (\d+) refused \| keys sae-alice->sae-charlie "
                          r"(\d+) delivered .* (\d+) refused", lines[-1]) if lines else None
        return bool(found) and all(int(n) > 0 for n in found.groups())

    assert wait_until(status_line, 25), (work / "up.out").read_text()[-1500:]
    kme = _deliveries(work)
    assert kme[APP_DIRECT].get("rate-limited", 0) > 0 and kme[APP_DIRECT]["keys-delivered"] > 0, kme
    assert kme[APP_RELAYED].get("not-enough-key", 0) > 0 and kme[APP_RELAYED]["keys-delivered"] > 0, kme
    # the certificates the application used: issued from each node's CA, kept in its state dir
    for node, sae in (("alice", "sae-alice"), ("bob", "sae-bob"), ("charlie", "sae-charlie")):
        assert (state / node / "sae" / f"{sae}.pem").is_file()
        assert (state / node / "sae" / f"{sae}.key").stat().st_mode & 0o777 == 0o600


def test_the_built_in_network_relays_alice_charlie_through_bob():
    """The controller's KME configuration of the built-in network: alice reaches bob directly and
    charlie through bob (a trusted node), over the alice-bob link; bob reaches charlie directly."""
    _, _, plan = check(UpOptions())
    c = plan.controller
    alice_bob, bob_charlie = (link.id for link in c.qkd_links)
    routes = c.kme_routes()
    assert routes["alice"] == {"bob": ("bob", alice_bob), "charlie": ("bob", alice_bob)}
    assert routes["bob"] == {"alice": ("alice", alice_bob), "charlie": ("charlie", bob_charlie)}
    assert [route_via(c, app) for app in c.qkd_apps] == [(), ("bob",)]
    fetched = sum(app.fetch.rate for app in c.qkd_apps)
    assert 0.88e6 < fetched < 2.78e6, "more than the 50 km spare makes, less than the 25 km primary"
    config = kme_xml("kme-a", {"sae-alice": "kme-a"}, [("kme-c", "kme-b", alice_bob)], list(c.qkd_apps), speed=10)
    assert f"<urn-prefix>urn:qkd:kme:kme-c</urn-prefix><next-hop-kme>kme-b</next-hop-kme><qkd-link>{alice_bob}" in config
    assert f"<rate>{c.qkd_apps[0].session.rate * 10}</rate>" in config  # buckets count wall seconds
    assert yaml.safe_load(NETWORK_TOPOLOGY.read_text())["controller"]["saes"][2] == {"id": "sae-charlie",
                                                                                       "node": "charlie"}
