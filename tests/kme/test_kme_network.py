"""ETSI GS QKD 014 key delivery on a network of real processes: a world service, three
`qstrata agent --kme-port` processes (alice - bob - charlie, direct links alice-bob and
bob-charlie), configured over NETCONF like a controller does, and curl with the SAE
certificates `qstrata sae add` wrote. SAEs on alice and charlie get their keys relayed through bob."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from kme_net import SS, KmeNetwork, Link, Pair
from qstrata.bindings.wire import connections as bound

pytest.importorskip("ncclient")

L1 = "11111111-0000-4000-8000-0000000000ab"
L2 = "11111111-0000-4000-8000-0000000000bc"
SAES = {"sae-a": "alice", "sae-slow": "alice", "sae-b": "bob", "sae-c": "charlie", "sae-c2": "charlie"}
AB = Pair("aaaaaaaa-0000-4000-8000-0000000000ab", "sae-a", ("sae-b",), "5e550000-0000-4000-8000-0000000000ab",
          rate=10**12, burst=10**12)
AC = Pair("aaaaaaaa-0000-4000-8000-0000000000ac", "sae-a", ("sae-c",), "5e550000-0000-4000-8000-0000000000ac",
          rate=10**12, burst=10**12)
AC2 = Pair("aaaaaaaa-0000-4000-8000-0000000000a2", "sae-a", ("sae-c2",), "5e550000-0000-4000-8000-0000000000a2")
BC = Pair("aaaaaaaa-0000-4000-8000-0000000000bc", "sae-b", ("sae-c",), "5e550000-0000-4000-8000-0000000000bc",
          rate=10**12, burst=10**12)
SLOW = Pair("aaaaaaaa-0000-4000-8000-00000000005b", "sae-slow", ("sae-b",), "5e550000-0000-4000-8000-00000000005b",
            rate=1, burst=1024)
LIMITS = (f'<service-stratum xmlns="{SS}"><kme><limits><max-key-size>1048576</max-key-size>'
          "<max-key-per-request>1000</max-key-per-request><max-sae-id-count>2</max-sae-id-count></limits></kme>"
          "</service-stratum>")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory):
    network = KmeNetwork(tmp_path_factory.mktemp("kme")).start()
    try:
        network.configure([Link(L1, "alice", 1, "bob", 1), Link(L2, "bob", 2, "charlie", 1)], SAES,
                          [AB, AC, AC2, BC, SLOW])
        for node in ("alice", "bob"):
            network.edit(node, LIMITS)
        network.certs = {sae: network.sae(node, sae) for sae, node in SAES.items()}
        wait_for_key(network, "alice", "sae-a", "sae-c")
        yield network
    finally:
        network.stop()


def wait_for_key(net: KmeNetwork, node: str, master: str, slave: str, keys: int = 1000) -> None:
    net.wait_for_key(node, net.certs[master], slave, keys)


def store(net: KmeNetwork, node: str, link: str) -> dict[str, int]:
    data = net.get(node, f'<service-stratum xmlns="{SS}"><kme><key-stores><key-store><qkdl-id>{link}</qkdl-id>'
                         "</key-store></key-stores></kme></service-stratum>")
    entry = data.find(f".//{{{SS}}}key-store")
    return {leaf: int(entry.findtext(f"{{{SS}}}{leaf}")) for leaf in ("stored-bits", "capacity-bits", "drained-bits")}


def enc(net: KmeNetwork, master: str, slave: str, number: int, size: int, node: str = "alice") -> dict[str, bytes]:
    status, body = net.curl(node, net.certs[master], f"/api/v1/keys/{slave}/enc_keys?number={number}&size={size}")
    assert status == 200, body
    return {k["key_ID"]: base64.b64decode(k["key"]) for k in body["keys"]}


def dec(net: KmeNetwork, node: str, slave: str, master: str, ids: list[str]) -> tuple[int, object]:
    return net.curl(node, net.certs[slave], f"/api/v1/keys/{master}/dec_keys",
                    {"key_IDs": [{"key_ID": i} for i in ids]})


def test_status_tells_the_true_figures_of_the_path(net: KmeNetwork) -> None:
    for slave, hops in (("sae-b", [("alice", L1)]), ("sae-c", [("alice", L1), ("charlie", L2)])):
        before = min(store(net, n, link)["stored-bits"] for n, link in hops)
        status, body = net.curl("alice", net.certs["sae-a"], f"/api/v1/keys/{slave}/status")
        after = min(store(net, n, link)["stored-bits"] for n, link in hops)
        assert status == 200, body
        capacity = min(store(net, n, link)["capacity-bits"] for n, link in hops)
        assert before // 256 <= body["stored_key_count"] <= after // 256 or after // 256 <= body[
            "stored_key_count"] <= before // 256
        assert body == {**body, "source_KME_ID": net.kme_id("alice"),
                        "target_KME_ID": net.kme_id("bob" if slave == "sae-b" else "charlie"),
                        "master_SAE_ID": "sae-a", "slave_SAE_ID": slave, "key_size": 256,
                        "max_key_count": capacity // 256, "max_key_per_request": 1000, "max_key_size": 1048576,
                        "min_key_size": 64, "max_SAE_ID_count": 2}


def test_keys_relayed_through_bob_are_the_same_at_both_ends_and_drain_every_hop(net: KmeNetwork) -> None:
    before = {(n, link): store(net, n, link)["drained-bits"] for n, link in
              (("alice", L1), ("bob", L1), ("bob", L2), ("charlie", L2))}
    keys = enc(net, "sae-a", "sae-c", 5, 512)
    assert len(keys) == 5 and all(len(k) == 64 for k in keys.values())
    assert all(uuid.UUID(i).version == 4 for i in keys)
    status, body = dec(net, "charlie", "sae-c", "sae-a", list(keys))
    assert status == 200, body
    assert {k["key_ID"]: base64.b64decode(k["key"]) for k in body["keys"]} == keys
    after = {where: store(net, *where)["drained-bits"] for where in before}
    assert {where: after[where] - before[where] for where in before} == dict.fromkeys(before, 5 * 512), \
        "every hop's store drained by exactly the keys delivered (both ends see one store)"
    relay = net.get("bob", f'<service-stratum xmlns="{SS}"><kme><key-relay/></kme></service-stratum>')
    hop = {h.findtext(f"{{{SS}}}qkdl-id"): h for h in relay.iter(f"{{{SS}}}hop")}
    assert L2 in hop and hop[L2].findtext(f"{{{SS}}}next-hop-kme") == net.kme_id("charlie")
    app = net.get("alice", f'<qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node"><qkd_applications><qkd_app>'
                           f"<app_id>{AC.app_id}</app_id></qkd_app></qkd_applications></qkd_node>")
    route = [r.text for r in app.iter(f"{{{SS}}}route")]
    assert route == [net.kme_id("alice"), net.kme_id("bob"), net.kme_id("charlie")]


def test_direct_keys_post_and_get_and_each_key_id_once(net: KmeNetwork) -> None:
    status, body = net.curl("alice", net.certs["sae-a"], "/api/v1/keys/sae-b/enc_keys",
                            {"number": 3, "size": 256, "extension_optional": [{"x": 1}]})
    assert status == 200, body
    keys = {k["key_ID"]: k["key"] for k in body["keys"]}
    first = next(iter(keys))
    status, got = net.curl("bob", net.certs["sae-b"], f"/api/v1/keys/sae-a/dec_keys?key_ID={first}")
    assert status == 200 and got["keys"] == [{"key_ID": first, "key": keys[first]}]
    status, got = dec(net, "bob", "sae-b", "sae-a", list(keys)[1:])
    assert status == 200 and {k["key_ID"]: k["key"] for k in got["keys"]} == dict(list(keys.items())[1:])
    status, again = net.curl("bob", net.certs["sae-b"], f"/api/v1/keys/sae-a/dec_keys?key_ID={first}")
    assert status == 401, "a key_ID is handed to its slave once"


def test_get_dec_keys_takes_as_many_key_ids_as_a_request_may_carry(net: KmeNetwork) -> None:
    """ETSI GS QKD 014's GET dec_keys repeats key_ID in the query: max_key_per_request of them
    (1000, 44 kB of query) must fit in the request line."""
    status, info = net.curl("alice", net.certs["sae-a"], "/api/v1/keys/sae-b/status")
    number = info["max_key_per_request"]
    status, body = net.curl("alice", net.certs["sae-a"], f"/api/v1/keys/sae-b/enc_keys?number={number}&size=64")
    assert status == 200, body
    keys = {k["key_ID"]: k["key"] for k in body["keys"]}
    query = "&".join(f"key_ID={key_id}" for key_id in keys)
    assert len(query) > 40_000
    status, got = net.curl("bob", net.certs["sae-b"], f"/api/v1/keys/sae-a/dec_keys?{query}")
    assert status == 200, got
    assert {k["key_ID"]: k["key"] for k in got["keys"]} == keys


def test_dec_keys_by_another_sae_another_pair_or_again_are_refused_alike(net: KmeNetwork) -> None:
    keys = enc(net, "sae-a", "sae-c", 1, 256)
    key_id = next(iter(keys))
    other_sae = dec(net, "charlie", "sae-c2", "sae-a", [key_id])      # another SAE of the same KME
    other_pair = dec(net, "charlie", "sae-c", "sae-b", [key_id])      # the right slave naming another master
    unknown = dec(net, "charlie", "sae-c", "sae-a", [str(uuid.uuid4())])
    assert dec(net, "charlie", "sae-c", "sae-a", [key_id])[0] == 200
    replay = dec(net, "charlie", "sae-c", "sae-a", [key_id])

    def shape(answer: tuple[int, object]) -> tuple[int, str]:
        status, body = answer
        return status, body["message"].replace("sae-c2", "SAE").replace("sae-c", "SAE").replace("sae-b", "M").replace(
            "sae-a", "M")

    assert shape(other_sae) == shape(other_pair) == shape(unknown) == shape(replay)
    assert shape(replay)[0] == 401


def test_refusals_say_what_is_wrong(net: KmeNetwork) -> None:
    a = net.certs["sae-a"]
    cases = {
        "/api/v1/keys/sae-b/enc_keys?size=100": (400, "size 100 is not a multiple of 8"),
        "/api/v1/keys/sae-b/enc_keys?number=0": (400, "number 0 is outside 1..1000"),
        "/api/v1/keys/sae-b/enc_keys?number=-1": (400, "number -1 is outside"),
        "/api/v1/keys/sae-b/enc_keys?number=1000000000": (400, "number 1000000000 is outside"),
        "/api/v1/keys/sae-b/enc_keys?number=two": (400, "number 'two' is not an integer"),
        "/api/v1/keys/sae-b/enc_keys?number=1&number=2": (400, "number is given 2 times in the query"),
        "/api/v1/keys/sae-b/enc_keys?size=2147483648": (400, "size 2147483648 is outside 64..1048576"),
        "/api/v1/keys/sae-b/enc_keys?size=4294967296": (400, "size 4294967296 is outside 64..1048576"),
        "/api/v1/keys/sae-b/enc_keys?size=1048584": (400, "size 1048584 is outside 64..1048576"),
        "/api/v1/keys/nobody/enc_keys": (400, "slave SAE nobody is unknown"),
        "/api/v1/keys/sae-c2/dec_keys?key_ID=not-a-uuid": (400, "is not a UUID"),
        "/api/v1/keys/sae-b/nothing": (404, "Not Found"),
    }
    for path, (want, words) in cases.items():
        status, body = net.curl("alice", a, path)
        assert (status, words in body["message"]) == (want, True), (path, status, body)
    status, body = net.curl("alice", a, "/api/v1/keys/sae-b/enc_keys", {"number": 1, "extension_mandatory": [
        {"abc_route_type": "direct"}]})
    assert status == 400 and "unsupported mandatory extension(s): abc_route_type" in body["message"]
    status, body = net.curl("alice", a, "/api/v1/keys/sae-b/enc_keys", raw=b'{"number": 1,')
    assert status == 400 and "not JSON" in body["message"]
    for call in ("enc_keys", "dec_keys"):  # the parser's recursion limit is a bad request, not a 503
        status, body = net.curl("alice", a, f"/api/v1/keys/sae-b/{call}", raw=b"[" * 100_000)
        assert (status, body) == (400, {"message": "the request body is nested too deeply to be an ETSI GS QKD "
                                                   "014 object"}), call
    huge = b'{"number": 1, "pad": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    status, body = net.curl("alice", a, "/api/v1/keys/sae-b/enc_keys", raw=huge)
    assert (status, body) == (400, {"message": f"the request body has {len(huge)} bytes, at most 1048576 are read"})
    status, body = net.curl("alice", a, "/api/v1/keys/sae-b/enc_keys", raw=huge, headers=("Transfer-Encoding: chunked",))
    assert (status, body) == (400, {"message": "the request body is larger than 1048576 bytes"}), "no length given"
    status, _ = net.curl("alice", net.certs["sae-b"], "/api/v1/keys/sae-a/status")
    assert status < 0, "a certificate of another agent's CA: the TLS handshake fails"
    status, body = net.curl("alice", alice_issued(net, "sae-b"), "/api/v1/keys/sae-a/status")
    assert status == 401 and "sae-b is not attached to this KME" in body["message"], "another KME's SAE"
    status, body = net.curl("alice", a, "/api/v1/keys/sae-c2/enc_keys",
                            {"additional_slave_SAE_IDs": ["sae-c"]})
    assert status == 401 and "no qkd_app" in body["message"], "a slave outside the application"
    status, _ = net.curl("alice", None, "/api/v1/keys/sae-b/status")
    assert status < 0, "no client certificate: the TLS handshake fails"


def test_a_short_store_and_an_empty_bucket_refuse_with_their_figures(net: KmeNetwork) -> None:
    status, body = net.curl("alice", net.certs["sae-a"], "/api/v1/keys/sae-b/enc_keys?number=1000&size=1048576")
    assert status == 503 and body["message"].startswith("not enough key: ") and "1000 asked" in body["message"]
    figures = body["details"][0]
    assert figures["qkdl_id"] == L1 and figures["key_size"] == 1048576 and figures["asked"] == 1000
    assert figures["stored_key_count"] == figures["stored_bits"] // 1048576 < 1000
    status, body = net.curl("alice", net.certs["sae-slow"], "/api/v1/keys/sae-b/enc_keys?number=8&size=256")
    assert status == 503 and "token bucket holds" in body["message"], body
    assert body["details"][0] == {**body["details"][0], "asked_bits": 2048, "rate": 1, "burst": 1024}
    data = net.get("alice", f'<service-stratum xmlns="{SS}"><kme><sessions><session><session-id>{SLOW.session}'
                            "</session-id></session></sessions></kme></service-stratum>")
    assert int(data.findtext(f".//{{{SS}}}rejected")) >= 1
    delivery = net.get("alice", f'<service-stratum xmlns="{SS}"><kme><key-delivery/></kme></service-stratum>')
    refused = {r.findtext(f"{{{SS}}}reason"): int(r.findtext(f"{{{SS}}}count"))
               for r in delivery.iter(f"{{{SS}}}refused")}
    assert refused.get("rate-limited", 0) >= 1 and refused.get("not-enough-key", 0) >= 1


def alice_issued(net: KmeNetwork, sae: str) -> tuple[Path, Path]:
    """A certificate of alice's CA for an SAE that is not alice's."""
    folder = net.agents["alice"].state_dir / "sae"
    if not (folder / f"{sae}.pem").exists():
        net.sae("alice", sae)
    return folder / f"{sae}.pem", folder / f"{sae}.key"


def test_an_sae_id_in_the_path_never_names_the_caller(net: KmeNetwork) -> None:
    """A certificate naming sae-c (alice's CA) asking alice for keys with sae-a's relations in
    the path: refused as sae-c, whatever the path says."""
    for path in ("/api/v1/keys/sae-b/enc_keys", "/api/v1/keys/sae-a/enc_keys", "/api/v1/keys/sae-b/status"):
        status, body = net.curl("alice", alice_issued(net, "sae-c"), path)
        assert status == 401 and "SAE sae-c is not attached" in body["message"], (path, body)


def test_sae_cli(net: KmeNetwork, tmp_path: Path) -> None:
    import subprocess

    from agent_processes import QSTRATA

    state = net.agents["alice"].state_dir
    run = [str(QSTRATA), "sae"]
    listed = subprocess.run([*run, "list", "--state-dir", str(state)], capture_output=True, text=True)
    assert listed.returncode == 0 and "sae-slow" in listed.stdout
    again = subprocess.run([*run, "add", "sae-a", "--state-dir", str(state)], capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "--replace" in again.stderr
    bad = subprocess.run([*run, "add", "a/b", "--state-dir", str(state)], capture_output=True, text=True)
    assert bad.returncode == 1 and "not an SAE ID" in bad.stderr and bad.stderr.count("\n") == 1
    added = subprocess.run([*run, "add", "sae-tmp", "--state-dir", str(state)], capture_output=True, text=True)
    assert added.returncode == 0 and f"curl --cacert {state / 'gnmi' / 'ca.pem'}" in added.stdout
    assert net.url("alice") in added.stdout
    assert (state / "sae" / "sae-tmp.key").stat().st_mode & 0o777 == 0o600
    gone = subprocess.run([*run, "delete", "sae-tmp", "--state-dir", str(state)], capture_output=True, text=True)
    assert gone.returncode == 0 and not (state / "sae" / "sae-tmp.pem").exists()


def sae_context(net: KmeNetwork, node: str, sae: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(net.ca(node)))
    context.load_cert_chain(*map(str, net.certs[sae]))
    return context


def test_a_thousand_concurrent_enc_keys_on_one_store(net: KmeNetwork) -> None:
    """1,000 enc_keys at once on alice's store towards bob, each on its own connection: every
    key_ID comes out once, the slave gets each key equal and once, and the store drained exactly
    the keys delivered (no request failed, so none were lost; none invented)."""
    net.wait_for_key("alice", net.certs["sae-a"], "sae-b", 1100)
    before = store(net, "alice", L1)["drained-bits"]
    context = sae_context(net, "alice", "sae-a")

    async def fetch(http: aiohttp.ClientSession) -> tuple[int, dict]:
        async with http.get(f"{net.url('alice')}/api/v1/keys/sae-b/enc_keys?number=1&size=256", ssl=context) as r:
            return r.status, await r.json()

    async def burst() -> list[tuple[int, dict]]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
            return await asyncio.gather(*(fetch(http) for _ in range(1000)))

    answers = asyncio.run(burst())
    assert [status for status, _ in answers] == [200] * 1000, {s: b for s, b in answers if s != 200}
    keys = [(k["key_ID"], k["key"]) for _, body in answers for k in body["keys"]]
    assert len(keys) == 1000 and len(dict(keys)) == 1000, "every key_ID once"
    assert store(net, "alice", L1)["drained-bits"] - before == 1000 * 256, "drained = delivered"
    assert store(net, "bob", L1)["drained-bits"] - before == 1000 * 256, "one store, both ends"
    ids = [{"key_ID": i} for i, _ in keys]
    status, got = net.curl("bob", net.certs["sae-b"], "/api/v1/keys/sae-a/dec_keys", {"key_IDs": ids})
    assert status == 200 and [(k["key_ID"], k["key"]) for k in got["keys"]] == keys
    status, again = net.curl("bob", net.certs["sae-b"], "/api/v1/keys/sae-a/dec_keys", {"key_IDs": ids})
    assert status == 401, again


def test_slow_and_silent_clients_cannot_hold_the_kme(net: KmeNetwork) -> None:
    """Slowloris: 200 TLS connections with an SAE's certificate send a request head a byte every
    0.2 s, 50 TCP connections never start TLS, one more sends its body a byte every 0.2 s.
    Meanwhile another SAE's requests are answered at once, each slow connection is cut within
    the 10 s a head or a handshake may take, and the slow body is refused after the 10 s a body
    may take. (How many the KME holds at once: test_kme_connections.)"""
    port = net.kme_ports["alice"]
    context = sae_context(net, "alice", "sae-a")
    head = b"GET /api/v1/keys/sae-b/status HTTP/1.1\r\nHost: kme\r\nX-Slow: " + b"z" * 1000
    held: dict[int, tuple[float, float | None]] = {}
    silent: dict[int, tuple[float, float | None]] = {}

    async def wait_closed(reader: asyncio.StreamReader, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(reader.read(100), timeout) == b""
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True

    async def slow(n: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        except (ConnectionError, ssl.SSLError, OSError):
            return  # dropped during the handshake: the table was full
        held[n] = (loop.time(), None)
        try:
            for byte in head:
                writer.write(bytes([byte]))
                if await wait_closed(reader, 0.2):
                    break
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        held[n] = (held[n][0], loop.time())
        writer.close()

    async def quiet(n: int) -> None:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        silent[n] = (loop.time(), None)
        while not await wait_closed(reader, 0.5) and loop.time() - silent[n][0] < 30:
            pass
        silent[n] = (silent[n][0], loop.time())
        writer.close()

    async def slow_body() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=sae_context(net, "alice", "sae-slow"))
        t = time.monotonic()
        writer.write(b"POST /api/v1/keys/sae-b/enc_keys HTTP/1.1\r\nHost: kme\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        answer = b""
        for _ in range(1000):
            writer.write(b" ")
            try:
                answer = await asyncio.wait_for(reader.read(4096), 0.2)
                break
            except TimeoutError:
                continue
        writer.close()
        return time.monotonic() - t, answer

    async def attack() -> tuple[list[float], tuple[float, bytes]]:
        posting = asyncio.create_task(slow_body())
        tasks = [asyncio.create_task(slow(n)) for n in range(200)] + [asyncio.create_task(quiet(n)) for n in range(50)]
        await asyncio.sleep(3)
        assert sum(1 for _, closed in held.values() if closed is None) > 150, "the slow clients hold connections"
        latencies = []
        for _ in range(10):
            t = time.monotonic()
            status, body = await asyncio.to_thread(net.curl, "alice", net.certs["sae-slow"],
                                                   "/api/v1/keys/sae-b/status")
            latencies.append(time.monotonic() - t)
            assert status == 200, body
        await asyncio.gather(*tasks)
        return latencies, await posting

    latencies, (took, answer) = asyncio.run(attack())
    assert max(latencies) < 2.0, f"the KME kept serving others: {latencies}"
    assert all(closed is not None and closed - opened < bound.HEAD_TIMEOUT_S + 2 for opened, closed in held.values())
    assert all(closed is not None and closed - opened < bound.HANDSHAKE_TIMEOUT_S + 2
               for opened, closed in silent.values())
    assert answer.startswith(b"HTTP/1.1 400 ") and b'"the request body did not arrive within 10 s"' in answer
    assert bound.BODY_TIMEOUT_S <= took < bound.BODY_TIMEOUT_S + 2
