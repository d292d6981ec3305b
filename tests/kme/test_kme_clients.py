"""Our KME against ETSI GS QKD 014 clients nobody here wrote: `qkd014-client`
(etsi-qkd-014-client), `qkdsec` and its `doctor` conformance probe, and curl, each run as a
separate process with an SAE's certificate, as an application developer runs them.

The network: alice and bob (agents around a world service, configured over NETCONF), one link.
Pairs: sae-a (alice) -> sae-b (bob) across the link; sae-a -> sae-al, both on alice (a local
pair); sae-self on alice paired with itself, which is how `qkdsec doctor` (one certificate, and
dec_keys called by that same SAE with its `-s` in the path) passes against a KME that keeps to
ETSI GS QKD 014's rule that dec_keys is the slave's call."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from kme_net import SS, KmeNetwork, Link, Pair

pytest.importorskip("ncclient")

BIN = Path(sys.executable).parent
QKD014 = BIN / "qkd014-client"
QKDSEC = BIN / "qkdsec"
if not (QKD014.exists() and QKDSEC.exists()):  # the test extra installs both
    pytest.skip("etsi-qkd-014-client and qkdsec are not installed (pip install -e '.[test]')", allow_module_level=True)

L1 = "44444444-0000-4000-8000-0000000000ab"
SAES = {"sae-a": "alice", "sae-al": "alice", "sae-self": "alice", "sae-b": "bob"}
AB = Pair("dddddddd-0000-4000-8000-0000000000ab", "sae-a", ("sae-b",), "5e553333-0000-4000-8000-0000000000ab")
LOCAL = Pair("dddddddd-0000-4000-8000-0000000000aa", "sae-a", ("sae-al",), "5e553333-0000-4000-8000-0000000000aa")
SELF = Pair("dddddddd-0000-4000-8000-00000000005e", "sae-self", ("sae-self",), "5e553333-0000-4000-8000-00000000005e")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory):
    network = KmeNetwork(tmp_path_factory.mktemp("clients"), names=("alice", "bob")).start()
    try:
        network.configure([Link(L1, "alice", 1, "bob", 1)], SAES, [AB, LOCAL, SELF])
        network.certs = {sae: network.sae(node, sae) for sae, node in SAES.items()}
        network.wait_for_key("alice", network.certs["sae-a"], "sae-b", 200)
        yield network
    finally:
        network.stop()


def run(cmd: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, cwd=cwd)


# -- etsi-qkd-014-client ------------------------------------------------------------------------


def qkd014(net: KmeNetwork, node: str, sae: str, *args: str) -> tuple[int, dict[str, str]]:
    """`qkd014-client` as `sae` against the node's KME: (HTTP status, the "Name : value" lines).
    It exits 0 on HTTP errors too, so the status is read from its "Response code : N" line."""
    cert, key = net.certs[sae]
    done = run([QKD014, "-H", f"127.0.0.1:{net.kme_ports[node]}", "-c", cert, "-k", key, "-r", net.ca(node), *args])
    assert done.returncode == 0, done.stdout + done.stderr
    fields = dict(line.split(" : ", 1) for line in done.stdout.splitlines() if " : " in line)
    return int(fields.pop("Response code")), fields


def test_qkd014_client_status_get_and_get_by_id(net: KmeNetwork) -> None:
    status, fields = qkd014(net, "alice", "sae-a", "get_status", "sae-b")
    assert status == 200, fields
    assert fields == {**fields, "source_KME_ID": net.kme_id("alice"), "target_KME_ID": net.kme_id("bob"),
                      "master_SAE_ID": "sae-a", "slave_SAE_ID": "sae-b", "key_size": "256"}
    assert int(fields["stored_key_count"]) >= 1 and int(fields["max_key_per_request"]) >= 1
    status, got = qkd014(net, "alice", "sae-a", "get_key", "sae-b")
    assert status == 200, got
    key_id, key = got["Key id"], got["Key"]
    assert len(base64.b64decode(key)) == 32, "the KME's default size, 256 bits"
    status, again = qkd014(net, "bob", "sae-b", "get_key_with_id", key_id, "sae-a")
    assert (status, again["Key id"], again["Key"]) == (200, key_id, key), "the slave gets the master's key"
    status, refused = qkd014(net, "bob", "sae-b", "get_key_with_id", key_id, "sae-a")
    assert status == 401 and "not all available" in refused["Message"], "once only"
    status, refused = qkd014(net, "alice", "sae-a", "get_status", "nobody")
    assert status == 401 and refused["Message"].startswith("SAE sae-a may not get keys for nobody: no qkd_app")


def test_qkd014_client_self_paired_sae(net: KmeNetwork) -> None:
    status, got = qkd014(net, "alice", "sae-self", "get_key", "sae-self")
    assert status == 200, got
    status, again = qkd014(net, "alice", "sae-self", "get_key_with_id", got["Key id"], "sae-self")
    assert (status, again["Key"]) == (200, got["Key"])


# -- qkdsec --------------------------------------------------------------------------------------


def qkdsec(net: KmeNetwork, node: str, sae: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`qkdsec ARGS...` as `sae`, its TLS options pointing at the SAE's files and the node's CA."""
    cert, key = net.certs[sae]
    return run([QKDSEC, *args, "--cert", cert, "--key", key, "--ca-cert", net.ca(node)])


def test_qkdsec_status_get_and_retrieve(net: KmeNetwork) -> None:
    url = net.url("alice")
    done = qkdsec(net, "alice", "sae-a", "status", url, "sae-b", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored_key_count"] >= 1
    done = qkdsec(net, "alice", "sae-a", "keys", "get", url, "sae-b", "--number", "3", "--size", "512",
                  "--method", "POST", "--json")
    assert done.returncode == 0, done.stderr
    keys = json.loads(done.stdout)
    assert [k["size_bits"] for k in keys] == [512, 512, 512]
    done = qkdsec(net, "bob", "sae-b", "keys", "retrieve", net.url("bob"), "sae-a", *(k["key_id"] for k in keys),
                  "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == keys, "bit for bit the master's keys, under the same key_IDs"
    done = qkdsec(net, "alice", "sae-a", "keys", "get", url, "sae-b", "--size", "100")
    assert done.returncode == 1 and "HTTP 400: size 100 is not a multiple of 8" in done.stderr


def doctor(net: KmeNetwork, sae: str, slave: str) -> tuple[int, dict]:
    done = qkdsec(net, "alice", sae, "doctor", net.url("alice"), "-s", slave, "-f", "json")
    return done.returncode, json.loads(done.stdout)


def test_qkdsec_doctor_passes_self_paired(net: KmeNetwork) -> None:
    """Exit 0, nothing FAIL. The one WARN left is the standard's price: doctor wants 404 for an
    unknown key_ID, ETSI GS QKD 014 V1.1.1 has no 404 (400, 401, 503), and an unknown, delivered
    or foreign key_ID gets one refusal (401) so nobody learns whether a key exists."""
    code, report = doctor(net, "sae-self", "sae-self")
    verdicts = {r["name"]: r["status"] for r in report["results"]}
    assert code == 0 and report["passed"] and report["counts"]["fail"] == 0, report
    assert {n for n, v in verdicts.items() if v != "pass"} == {"error_contract_404"}, verdicts
    assert len(verdicts) == 10


def test_qkdsec_doctor_across_a_pair_fails_the_round_trip_only(net: KmeNetwork) -> None:
    """With a master's certificate and its slave's ID, doctor calls dec_keys as the master:
    the KME refuses it (dec_keys is the slave's call, at the slave's KME), and that is all
    doctor finds wrong."""
    code, report = doctor(net, "sae-a", "sae-b")
    verdicts = {r["name"]: r["status"] for r in report["results"]}
    assert code == 1 and {n for n, v in verdicts.items() if v == "fail"} == {"dec_keys_roundtrip"}, verdicts


# -- curl: every endpoint, GET and POST ----------------------------------------------------------


def test_curl_every_endpoint_get_and_post_json(net: KmeNetwork) -> None:
    a, al = net.certs["sae-a"], net.certs["sae-al"]
    status, body = net.curl("alice", a, "/api/v1/keys/sae-al/status")
    assert status == 200 and body["target_KME_ID"] == body["source_KME_ID"] == net.kme_id("alice"), body
    status, body = net.curl("alice", a, "/api/v1/keys/sae-al/status", {}, curl_json=True)
    assert status == 405 and "Method Not Allowed" in body["message"], "status is a GET"
    status, got = net.curl("alice", a, "/api/v1/keys/sae-al/enc_keys?number=2&size=128")
    assert status == 200 and len(got["keys"]) == 2, got
    status, posted = net.curl("alice", a, "/api/v1/keys/sae-al/enc_keys", {"number": 2, "size": 128}, curl_json=True)
    assert status == 200 and len(posted["keys"]) == 2, posted
    keys = {k["key_ID"]: k["key"] for k in got["keys"] + posted["keys"]}
    first, *rest = keys
    status, one = net.curl("alice", al, f"/api/v1/keys/sae-a/dec_keys?key_ID={first}")
    assert status == 200 and one["keys"] == [{"key_ID": first, "key": keys[first]}]
    status, more = net.curl("alice", al, "/api/v1/keys/sae-a/dec_keys",
                            {"key_IDs": [{"key_ID": i} for i in rest]}, curl_json=True)
    assert status == 200 and {k["key_ID"]: k["key"] for k in more["keys"]} == {i: keys[i] for i in rest}
    status, body = net.curl("alice", a, f"/api/v1/keys/sae-a/dec_keys?key_ID={first}")
    assert status == 401, "the master cannot fetch its key again as a slave"


def test_a_local_pair_drains_one_of_the_nodes_own_stores(net: KmeNetwork) -> None:
    """Keys for sae-a -> sae-al (both on alice) come from alice's only link store, and nothing is
    relayed: the store drains by exactly the keys, no relay hop is counted."""
    def drained() -> int:
        data = net.get("alice", f'<service-stratum xmlns="{SS}"><kme><key-stores><key-store><qkdl-id>{L1}'
                                "</qkdl-id></key-store></key-stores></kme></service-stratum>")
        return int(data.findtext(f".//{{{SS}}}drained-bits"))

    before = drained()
    status, body = net.curl("alice", net.certs["sae-a"], "/api/v1/keys/sae-al/enc_keys?number=4&size=1024")
    assert status == 200, body
    assert drained() - before == 4 * 1024
    relay = net.get("alice", f'<service-stratum xmlns="{SS}"><kme><key-relay/></kme></service-stratum>')
    hops = {h.findtext(f"{{{SS}}}qkdl-id"): int(h.findtext(f"{{{SS}}}consumed-bits")) for h in relay.iter(f"{{{SS}}}hop")}
    app = net.get("alice", f'<qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node"><qkd_applications><qkd_app>'
                           f"<app_id>{LOCAL.app_id}</app_id></qkd_app></qkd_applications></qkd_node>")
    assert [r.text for r in app.iter(f"{{{SS}}}route")] == [net.kme_id("alice")], "delivered where it was made"
    ids = [k["key_ID"] for k in body["keys"]]
    status, got = net.curl("alice", net.certs["sae-al"], "/api/v1/keys/sae-a/dec_keys",
                           {"key_IDs": [{"key_ID": i} for i in ids]})
    assert status == 200 and [k["key"] for k in got["keys"]] == [k["key"] for k in body["keys"]]
    relay = net.get("alice", f'<service-stratum xmlns="{SS}"><kme><key-relay/></kme></service-stratum>')
    assert {h.findtext(f"{{{SS}}}qkdl-id"): int(h.findtext(f"{{{SS}}}consumed-bits"))
            for h in relay.iter(f"{{{SS}}}hop")} == hops, "a local delivery is no relay hop"


# -- strict X.509 (what Python >= 3.13 clients verify) -------------------------------------------


def test_strict_x509_clients_accept_the_agents_certificates(net: KmeNetwork, tmp_path: Path) -> None:
    for pem in (net.agents["alice"].state_dir / "gnmi" / "server.pem", net.certs["sae-a"][0]):
        done = run(["openssl", "verify", "-x509_strict", "-CAfile", net.ca("alice"), pem])
        assert done.returncode == 0, done.stdout + done.stderr
    context = ssl.create_default_context(cafile=str(net.ca("alice")))
    context.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN  # Python 3.13's defaults
    context.load_cert_chain(*map(str, net.certs["sae-a"]))
    with urllib.request.urlopen(net.url("alice") + "/api/v1/keys/sae-b/status", context=context, timeout=10) as r:
        assert r.status == 200 and json.load(r)["slave_SAE_ID"] == "sae-b"


def test_key_ids_are_uuids_and_keys_standard_base64(net: KmeNetwork) -> None:
    status, body = net.curl("alice", net.certs["sae-self"], "/api/v1/keys/sae-self/enc_keys?number=8&size=64")
    assert status == 200
    for k in body["keys"]:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", k["key_ID"])
        assert re.fullmatch(r"[A-Za-z0-9+/]{11}=", k["key"]), "8 bytes: standard alphabet, padded"


# -- qstrata conform --profile etsi-qkd-014 -----------------------------------------------------


def conform(cwd: Path, *args: str | Path) -> tuple[int, dict[str, dict], str]:
    """`qstrata conform` as a user runs it from a folder: exit code, results by id, stderr."""
    done = run([BIN / "qstrata", "conform", *args, "--report", "kme.json"], cwd=cwd)
    report = json.loads((cwd / "kme.json").read_text()) if (cwd / "kme.json").exists() else {"results": []}
    return done.returncode, {r["id"]: r for r in report["results"]}, done.stdout + done.stderr


def passed(results: dict[str, dict], not_applicable: set[str] = frozenset()) -> bool:
    return {i: r["verdict"] for i, r in results.items()} == {
        i: "not-applicable" if i in not_applicable else "pass" for i in results}


def test_conform_self_paired_sae_passes(net: KmeNetwork, tmp_path: Path) -> None:
    cert, key = net.certs["sae-self"]
    code, results, out = conform(tmp_path, "--profile", "etsi-qkd-014", "--kme", net.url("alice"), "--cert", cert,
                                 "--key", key, "--ca", net.ca("alice"))
    assert code == 0 and len(results) == 19, out
    assert passed(results, {"KME-DEC-004"}), out
    assert "not JSON" in json.dumps(results["KME-ENC-012"]["evidence"]), "the evidence shows what came back"


def test_conform_across_a_link_with_the_slaves_certificate_passes(net: KmeNetwork, tmp_path: Path) -> None:
    (cert, key), (slave_cert, slave_key) = net.certs["sae-a"], net.certs["sae-b"]
    code, results, out = conform(tmp_path, "--kme", net.url("alice"), "--cert", cert, "--key", key, "--ca",
                                 net.ca("alice"), "--slave", "sae-b", "--slave-cert", slave_cert, "--slave-key",
                                 slave_key, "--slave-kme", net.url("bob"), "--slave-ca", net.ca("bob"))
    assert code == 0 and passed(results), out


def test_conform_from_endpoints_json(net: KmeNetwork, tmp_path: Path) -> None:
    """endpoints.json's kme blocks (written here by hand, relative paths): the master's KME from
    --agent, its certificate from the agent's SAE folder, the slave's KME from where its
    certificate is."""
    agents = []
    for name in ("alice", "bob"):
        state = net.agents[name].state_dir
        agents.append({"name": name, "kind": "qkd", "state_dir": str(state), "credentials": "",
                       "netconf": {"host": "127.0.0.1", "port": net.agents[name].port}, "gnmi": None,
                       "kme": {"url": net.url(name), "ca": str(Path("..") / state.relative_to(net.base) / "gnmi" /
                                                                "ca.pem"),
                               "sae_dir": str(Path("..") / state.relative_to(net.base) / "sae")}})
    folder = net.base / "up"
    folder.mkdir(exist_ok=True)
    (folder / "endpoints.json").write_text(json.dumps({"network": "t", "topology": "", "state_dir": ".", "pid": 0,
                                                       "agents": agents, "collector": None}))
    code, results, out = conform(net.base, "--endpoints", "up/endpoints.json", "--agent", "alice", "--profile",
                                 "etsi-qkd-014", "--sae", "sae-a", "--slave", "sae-b")
    assert code == 0 and passed(results), out
    code, _, out = conform(net.base, "--endpoints", "up/endpoints.json", "--agent", "alice", "--profile",
                           "etsi-qkd-014")
    assert code == 2 and out.count("\n") == 1 and "pick the master SAE with --sae (sae-a, sae-al, sae-self)" in out
    code, _, out = conform(net.base, "--endpoints", "up/endpoints.json", "--agent", "alice", "--profile",
                           "etsi-qkd-014", "--sae", "sae-b")
    assert code == 2 and "no certificate of SAE sae-b in" in out


def test_conform_names_what_a_kme_gets_wrong(net: KmeNetwork, tmp_path: Path) -> None:
    """A pair the KME does not know is the user's set-up mistake, said in one line with the KME's
    reason (exit 2), not a failed check; a KME that is not there is one line, exit 2."""
    cert, key = net.certs["sae-al"]
    code, _, out = conform(tmp_path, "--kme", net.url("alice"), "--cert", cert, "--key", key, "--ca",
                           net.ca("alice"), "--slave", "sae-b", "--check", "KME-STATUS-001")
    assert code == 2 and out.count("\n") == 1 and "HTTP 401" in out and "no qkd_app" in out, out
    code, _, out = conform(tmp_path, "--kme", "https://127.0.0.1:1", "--cert", cert, "--key", key, "--ca",
                           net.ca("alice"))
    assert code == 2 and out.count("\n") == 1 and "unreachable" in out


# -- durability of a local pair (last: it restarts alice) ----------------------------------------


def test_kill_9_after_local_delivery_keeps_every_key_for_the_slave(net: KmeNetwork) -> None:
    """Requests of the local pair in flight when alice is killed with -9: every key the master
    got is in the journal, so after the restart the slave gets each one, equal, once."""
    context = ssl.create_default_context(cafile=str(net.ca("alice")))
    context.load_cert_chain(*map(str, net.certs["sae-a"]))
    got: dict[str, str] = {}

    async def fetch(http: aiohttp.ClientSession) -> None:
        for _ in range(200):
            try:
                async with http.get(net.url("alice") + "/api/v1/keys/sae-al/enc_keys?number=2&size=256",
                                    ssl=context) as r:
                    body = await r.json()
            except (aiohttp.ClientError, TimeoutError, OSError):
                return
            assert r.status == 200, body
            got.update({k["key_ID"]: k["key"] for k in body["keys"]})

    async def load() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            workers = [asyncio.create_task(fetch(http)) for _ in range(4)]
            while len(got) < 40:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(net.kill, "alice")
            await asyncio.gather(*workers)

    asyncio.run(load())
    net.restart("alice")
    ids = list(got)
    for i in range(0, len(ids), 100):
        chunk = ids[i:i + 100]
        status, body = net.curl("alice", net.certs["sae-al"], "/api/v1/keys/sae-a/dec_keys",
                                {"key_IDs": [{"key_ID": k} for k in chunk]})
        assert status == 200, body
        assert {k["key_ID"]: k["key"] for k in body["keys"]} == {k: got[k] for k in chunk}
    status, _ = net.curl("alice", net.certs["sae-al"], f"/api/v1/keys/sae-a/dec_keys?key_ID={ids[0]}")
    assert status == 401
