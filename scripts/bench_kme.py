#!/usr/bin/env python3
"""Key delivery benchmark (ETSI GS QKD 014): how fast one KME process hands out keys end to end,
against a ceiling measured side by side in the same run.

What is measured: a master SAE's `enc_keys` (GET, `number=16`, 256-bit keys) at alice's KME, then
its slave's `dec_keys` (POST, the Key IDs object of those key_IDs) at bob's KME, each pair of
answers checked equal; concurrency 1 and 64 (that many such loops at once), and at 64 once more
with the slave at charlie (the keys relayed through bob, a trusted node). A request is one
enc_keys or one dec_keys; keys/s counts keys that made the whole trip (the master's and the
slave's answer). Latency is per request, p50 and p99.

The network (as users run it): `qstrata up --bare` on `tests/kme/topologies/relay.yaml` (alice -10
km- bob -10 km- charlie, the twins and both KMEs in one process; `--processes`: each agent in its
own process around the world service), configured over NETCONF (links, SAEs, applications with
their token-bucket sessions, forwarding tables) and SAE certificates from `qstrata sae add`,
exactly as tests/kme/test_kme_up.py does (its helpers are used).

Key supply: the twins' 10 km links make about 14 Mb/s each (55,000 keys of 256 bits a second: the
physics at real time, no `--speed`, nothing put into a store by hand), more than the KME
delivers, so the supply is never the limit: every key delivered was made by the twin, since its
link locked (a store fills up to its 10^9-bit capacity in about 70 s) or during the run. The
memory run prints the least the store held along the way. (The built-in network's 25 km link,
with the switch and patch cords, makes 4.2 Mb/s, about 16,000 keys a second: that is the figure
the KME must beat.)

The ceiling: a bare aiohttp server (the same aiohttp, uvloop, `qstrata.bindings.wire.tls.server_ssl_context`:
the agents' own server certificates, the same mutual TLS with the same SAE certificates) that
answers both calls with a prebuilt Key container of 16 keys of the same size. Ours and the
ceiling are measured alternately, round after round, and each ratio is ours/ceiling from the same
run (this machine is shared and noisy).

The front end alone: in the ceiling's process, our own server (`start_kme_server`: its connection
guard, aiohttp app, error middleware, request parsing, the caller's SAE ID from its certificate,
the Key container written as for real keys) over a core that does no key work and answers the
same prebuilt keys, measured in the same rounds (rows c1 and c64). It splits the gap to the
ceiling in two: what our HTTP front end costs, and what the key work costs (checks, token bucket,
key_IDs, the journal and its syncs, the relay to the slaves' KME, the key material): the rest of
our CPU per request.

The client: lean HTTP/1.1 over asyncio streams with uvloop (one request line, one read of the
head and `Content-Length` body), keep-alive connections opened before the window, one SSL
context per SAE, in its own processes (`--clients`, default 2 at concurrency 64). Its CPU is
measured and printed next to the servers' (every process: share of one core over the window), so
a reader can see that the server, not the client, was the limit.

Memory: one more run of 1,000,000 keys at concurrency 64, the RSS of every server process (the
KME's, or each agent's and the world service's, and the journals' sync helpers) sampled every
0.5 s (flat: the growth from a tenth of the run, once buffers and caches are warm, to its end).

Before and after in the same run: `--baseline DIR` (a qstrata source tree, e.g. `git worktree add
/tmp/base main` or `git archive main | tar -x -C /tmp/base`) starts a second network from that code
and measures it in the same rounds as ours and the ceiling (rows c1 and c64), so a change is judged
against the code before it under the same load of the machine, not against a figure of another day.

Usage: .venv/bin/python scripts/bench_kme.py [--quick] [--processes] [--keys N] [--seconds S] [--baseline DIR]
Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_collector import percentile as pct  # noqa: E402
from bench_collector import proc_cpu  # noqa: E402
from bench_netconf import free_port, rss_mb  # noqa: E402

QSTRATA = Path(sys.executable).with_name("qstrata")
TOPOLOGY = ROOT / "tests" / "kme" / "topologies" / "relay.yaml"
NUMBER, SIZE = 16, 256
L1 = "44444444-0000-4000-8000-0000000000ab"
L2 = "44444444-0000-4000-8000-0000000000bc"
SAES = {"sae-a": "alice", "sae-b": "bob", "sae-c": "charlie"}
UNLIMITED = 10**12
"""Token bucket rate (bit/s) and burst (bits) of the benchmark's sessions: the bucket is policed
on every request but never refuses (the API is what is measured)."""

# -- the client (its own processes) --------------------------------------------------------------


class Connection:
    """One keep-alive HTTPS connection; `call` sends a request and reads its answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, end: dict[str, Any], context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection(end["host"], end["port"], ssl=context)
        return cls(reader, writer)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        length = int(head[at + 17:head.index(b"\r\n", at + 2)])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def client_context(end: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=end["ca"])
    context.load_cert_chain(end["cert"], end["key"])
    return context


def get(end: dict[str, Any], path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {end['host']}:{end['port']}\r\n\r\n".encode()


def post(end: dict[str, Any], path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {end['host']}:{end['port']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Loop:
    """enc_keys then dec_keys, over and over, on two connections of its own."""

    def __init__(self, spec: dict[str, Any], contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
        self.spec, self.contexts = spec, contexts
        self.enc_ms: list[float] = []
        self.dec_ms: list[float] = []
        self.keys = 0
        self.requests = 0

    async def open(self) -> None:
        self.enc = await Connection.open(self.spec["enc"], self.contexts[0])
        self.dec = await Connection.open(self.spec["dec"], self.contexts[1])

    async def pair(self, record: bool) -> None:
        enc, dec = self.spec["enc"], self.spec["dec"]
        t0 = time.perf_counter()
        status, body = await self.enc.call(get(enc, enc["path"]))
        t1 = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"enc_keys answered {status}: {body[:300]!r}")
        keys = {k["key_ID"]: k["key"] for k in json.loads(body)["keys"]}
        ids = json.dumps({"key_IDs": [{"key_ID": key_id} for key_id in keys]}).encode()
        t2 = time.perf_counter()
        status, body = await self.dec.call(post(dec, dec["path"], ids))
        t3 = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"dec_keys answered {status}: {body[:300]!r}")
        if {k["key_ID"]: k["key"] for k in json.loads(body)["keys"]} != keys:
            raise RuntimeError("the slave's keys differ from the master's")
        if record:
            self.enc_ms.append((t1 - t0) * 1000)
            self.dec_ms.append((t3 - t2) * 1000)
            self.keys += len(keys)
            self.requests += 2


async def client(spec: dict[str, Any]) -> dict[str, Any]:
    """Run `spec["concurrency"]` loops from wall time `spec["start"]` for `spec["seconds"]`, or
    until `spec["keys"]` keys went through; the figures of the window, and this process's CPU."""
    contexts = (client_context(spec["enc"]), client_context(spec["dec"]))
    loops = [Loop(spec, contexts) for _ in range(spec["concurrency"])]
    await asyncio.gather(*(loop.open() for loop in loops))
    for _ in range(2):  # warm: handshakes done, first answers served
        await asyncio.gather(*(loop.pair(False) for loop in loops))
    await asyncio.sleep(max(0.0, spec["start"] - time.time()))
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + spec["seconds"] if spec.get("seconds") else None
    target = spec.get("keys")

    async def run(loop: Loop) -> None:
        while True:
            if deadline is not None and time.perf_counter() >= deadline:
                return
            if target is not None and sum(x.keys for x in loops) >= target:
                return
            await loop.pair(True)

    await asyncio.gather(*(run(loop) for loop in loops))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for loop in loops:
        loop.enc.close()
        loop.dec.close()
    return {"elapsed": elapsed, "cpu": cpu, "keys": sum(x.keys for x in loops),
            "requests": sum(x.requests for x in loops),
            "enc_ms": [round(v, 3) for x in loops for v in x.enc_ms],
            "dec_ms": [round(v, 3) for x in loops for v in x.dec_ms]}


def client_main() -> None:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop
        result = uvloop.run(client(spec))
    except ImportError:
        result = asyncio.run(client(spec))
    Path(spec["out"]).write_text(json.dumps(result))


# -- the ceiling (its own process) ---------------------------------------------------------------

CEILING = r'''
import asyncio, base64, json, sys
from aiohttp import web
from qstrata.agents.kme014.server import start_kme_server
from qstrata.bindings.wire.tls import TlsFiles
from qstrata.bindings.wire.tls import server_ssl_context as ssl_context
spec = json.load(open(sys.argv[1]))
container = open(spec["container"], "rb").read()
async def keys(request):
    if request.method == "POST":
        await request.read()
    return web.Response(body=container, content_type="application/json")
async def main():
    for end in spec["ends"]:
        app = web.Application()
        for call in ("enc_keys", "dec_keys"):
            app.router.add_route("*", "/api/v1/keys/{sae_id}/" + call, keys)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        tls = TlsFiles(*(end[k] for k in ("ca", "cert", "key")))
        await web.TCPSite(runner, "127.0.0.1", end["port"], ssl_context=ssl_context(tls), backlog=1024,
                          reuse_address=True).start()
    # the front end alone: our own server (start_kme_server: the connection guard, the aiohttp app
    # with its error middleware, request parsing, the caller's SAE ID, the Key container written as
    # for real keys) over a core that does no key work and answers the same prebuilt keys
    prebuilt = [(k["key_ID"], base64.b64decode(k["key"])) for k in json.loads(container)["keys"]]
    class NoKeyWork:
        async def enc_keys(self, caller, slave, *request):
            return prebuilt
        async def dec_keys(self, caller, master, key_ids):
            return prebuilt
    fronts = [await start_kme_server(NoKeyWork(), "127.0.0.1", end["front_port"],
                                     TlsFiles(*(end[k] for k in ("ca", "cert", "key"))))
              for end in spec["ends"]]
    print("ready", flush=True)
    await asyncio.Event().wait()
try:
    import uvloop; uvloop.run(main())
except ImportError:
    asyncio.run(main())
'''


# -- the orchestra ---------------------------------------------------------------------------------






def descendants(pid: int) -> dict[int, str]:
    """The processes under `pid` (and itself), each named after its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        found += frontier
    names = {}
    for p in found:
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv if a]
        if "--name" in text:
            names[p] = f"agent {text[text.index('--name') + 1]}"
        elif any("remote.service" in a for a in text):
            names[p] = "world service"
        elif "qstrata-kme-syncer" in text:
            names[p] = f"journal syncer of {Path(text[-2]).parent.parent.name}"
        else:
            names[p] = "qstrata up"
    return names


class Bench:
    """One network (`qstrata up`) and its ceiling. `code`: a qstrata source tree to run the network
    from instead of the installed one (`--baseline`: the same benchmark of older code, measured in
    the same rounds); `ceiling`: start the ceiling too."""

    def __init__(self, args: argparse.Namespace, tmp: Path, code: Path | None = None, ceiling: bool = True) -> None:
        self.args, self.tmp = args, tmp
        self.code, self.with_ceiling = code, ceiling
        self.up: subprocess.Popen | None = None
        self.ceiling: subprocess.Popen | None = None
        self.kme_pids: dict[int, str] = {}
        self.ceiling_ends: dict[str, dict[str, Any]] = {}

    # -- set-up ----------------------------------------------------------------------------------

    def start(self) -> None:
        sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "kme")]
        from kme_net import KmeNetwork, Link, Pair

        extra = ["--processes"] if self.args.processes else []
        env = None
        if self.code is not None:  # `qstrata` imported from there: a folder that holds it under that name
            (self.tmp / "code").mkdir()
            (self.tmp / "code" / "qstrata").symlink_to(self.code.resolve())
            env = {**os.environ, "PYTHONPATH": str(self.tmp / "code")}
        self.up = subprocess.Popen([str(QSTRATA), "up", "--bare", "--topology", str(TOPOLOGY), "--state-dir", "state",
                                    "--no-dashboard", "--no-collector", "-q", *extra], cwd=self.tmp, env=env,
                                   stdout=open(self.tmp / "up.log", "wb"), stderr=subprocess.STDOUT)
        endpoints = self.tmp / "state" / "endpoints.json"
        deadline = time.monotonic() + 120
        while not endpoints.exists():
            if self.up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"qstrata up did not start: {(self.tmp / 'up.log').read_text()[-2000:]}")
            time.sleep(0.1)
        net = self.net = KmeNetwork.from_endpoints(endpoints)
        pairs = [Pair("dddddddd-0000-4000-8000-0000000000ab", "sae-a", ("sae-b",),
                      "5e554444-0000-4000-8000-0000000000ab", UNLIMITED, UNLIMITED),
                 Pair("dddddddd-0000-4000-8000-0000000000ac", "sae-a", ("sae-c",),
                      "5e554444-0000-4000-8000-0000000000ac", UNLIMITED, UNLIMITED)]
        net.configure([Link(L1, "alice", 1, "bob", 1), Link(L2, "bob", 2, "charlie", 1)], SAES, pairs)
        self.certs = {sae: net.sae(node, sae) for sae, node in SAES.items()}
        self.kme_pids = descendants(self.up.pid)
        if not self.with_ceiling:
            return
        # the ceiling: the agents' own server certificates, on ports of its own
        ends = []
        for node in ("alice", "bob", "charlie"):
            tls = net.agents[node].state_dir / "gnmi"
            end = {"ca": str(tls / "ca.pem"), "cert": str(tls / "server.pem"), "key": str(tls / "server.key"),
                   "port": free_port(), "front_port": free_port()}
            ends.append(end)
            self.ceiling_ends[node] = end
        container = self.tmp / "container.json"
        container.write_text(json.dumps({"keys": [{"key_ID": str(uuid.uuid4()),
                                                   "key": base64.b64encode(os.urandom(SIZE // 8)).decode()}
                                                  for _ in range(NUMBER)]}))
        spec = self.tmp / "ceiling.json"
        spec.write_text(json.dumps({"container": str(container), "ends": ends}))
        self.ceiling = subprocess.Popen([sys.executable, "-c", CEILING, str(spec)], stdout=subprocess.PIPE, text=True)
        assert self.ceiling.stdout is not None
        if self.ceiling.stdout.readline().strip() != "ready":
            raise SystemExit("the ceiling server did not start")

    def wait_for_key(self, slave: str, keys: int, timeout: float = 60.0) -> None:
        """Until the link stores on the path hold `keys` keys (the links lock a second after they
        are configured; the twin fills them from then on)."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.net.curl("alice", self.certs["sae-a"], f"/api/v1/keys/{slave}/status")
            if status == 200 and body["stored_key_count"] >= keys:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the stores towards {slave} hold too little key: {status} {body}")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in (self.ceiling, self.up):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is self.up else signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # -- one measured window ---------------------------------------------------------------------

    def ends(self, target: str, slave: str) -> dict[str, dict[str, Any]]:
        slave_node = SAES[slave]
        if target == "ours":
            enc_port, dec_port = self.net.kme_ports["alice"], self.net.kme_ports[slave_node]
        elif target == "front end":
            enc_port, dec_port = self.ceiling_ends["alice"]["front_port"], self.ceiling_ends[slave_node]["front_port"]
        else:
            enc_port, dec_port = self.ceiling_ends["alice"]["port"], self.ceiling_ends[slave_node]["port"]
        cert_a, cert_s = self.certs["sae-a"], self.certs[slave]
        return {"enc": {"host": "127.0.0.1", "port": enc_port, "ca": str(self.net.ca("alice")), "cert": str(cert_a[0]),
                        "key": str(cert_a[1]), "path": f"/api/v1/keys/{slave}/enc_keys?number={NUMBER}&size={SIZE}"},
                "dec": {"host": "127.0.0.1", "port": dec_port, "ca": str(self.net.ca(slave_node)),
                        "cert": str(cert_s[0]), "key": str(cert_s[1]), "path": "/api/v1/keys/sae-a/dec_keys"}}

    def stock(self, slave: str) -> int:
        """Keys of 256 bits the stores on the path to `slave` hold now (ETSI status, as the SAE sees it)."""
        status, body = self.net.curl("alice", self.certs["sae-a"], f"/api/v1/keys/{slave}/status")
        return int(body["stored_key_count"]) if status == 200 else -1

    def window(self, target: str, concurrency: int, slave: str = "sae-b", seconds: float | None = None,
               keys: int | None = None, sample: bool = False) -> dict[str, Any]:
        """One measured run of the client processes against `target` ("ours" or "ceiling")."""
        clients = min(concurrency, self.args.clients)
        start = time.time() + 1.5 + 0.3 * clients
        procs = []
        for i in range(clients):
            share = concurrency // clients + (1 if i < concurrency % clients else 0)
            spec = {**self.ends(target, slave), "concurrency": share, "start": start, "seconds": seconds,
                    "keys": None if keys is None else keys // clients, "out": str(self.tmp / f"client-{i}.json")}
            proc = subprocess.Popen([sys.executable, __file__, "--client"], stdin=subprocess.PIPE, text=True)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(spec))
            proc.stdin.close()
            procs.append(proc)
        servers = self.kme_pids if target == "ours" else {self.ceiling.pid: target}  # type: ignore[union-attr]
        time.sleep(max(0.0, start - time.time()))
        cpu0 = {pid: proc_cpu(pid) for pid in servers}
        t0 = time.perf_counter()
        rss: list[tuple[float, dict[str, float]]] = []
        stock: list[int] = []
        while any(p.poll() is None for p in procs):
            if sample:  # RSS of every server process every 0.5 s, the store's stock every 2 s
                rss.append((time.perf_counter() - t0, {name: rss_mb(pid) or 0.0 for pid, name in servers.items()}))
                if len(rss) % 4 == 1:
                    stock.append(self.stock(slave))
            time.sleep(0.5 if sample else 0.05)
        if target == "ours":  # the journals' sync helpers start with the first concurrent requests
            self.kme_pids = servers = descendants(self.up.pid)  # type: ignore[union-attr]
        cpu = {name: (proc_cpu(pid) - cpu0.get(pid, 0.0)) for pid, name in servers.items()}
        if any(proc.returncode for proc in procs):
            raise SystemExit(f"a client failed against {target}")
        results = [json.loads((self.tmp / f"client-{i}.json").read_text()) for i in range(clients)]
        elapsed = max(r["elapsed"] for r in results)
        enc = [v for r in results for v in r["enc_ms"]]
        dec = [v for r in results for v in r["dec_ms"]]
        requests = sum(r["requests"] for r in results)
        figures = {
            "requests_per_s": requests / elapsed,
            "server_cpu_us_per_request": sum(cpu.values()) / max(1, requests) * 1e6,
            "keys_per_s": sum(r["keys"] for r in results) / elapsed,
            "keys": sum(r["keys"] for r in results), "seconds": elapsed,
            "enc_p50_ms": pct(enc, 50), "enc_p99_ms": pct(enc, 99), "dec_p50_ms": pct(dec, 50),
            "dec_p99_ms": pct(dec, 99),
            "client_cpu_us_per_request": sum(r["cpu"] for r in results) / max(1, requests) * 1e6,
            "cpu": {**{name: c / elapsed for name, c in cpu.items()},
                    **{f"client {i + 1}": r["cpu"] / r["elapsed"] for i, r in enumerate(results)}},
        }
        if sample:
            figures["rss_mb"], figures["stock"] = rss, stock
        return figures






def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by requests/s (of an odd number of rounds; the upper middle of an even)."""
    return sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2]


def cpu_text(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {share * 100:.0f}%" for name, share in cpu.items())


def compare(bench: Bench, label: str, concurrency: int, rounds: int, seconds: float,
            slave: str = "sae-b", baseline: Bench | None = None, front: bool = True) -> dict[str, Any]:
    ours_runs, ceiling_runs, base_runs, front_runs = [], [], [], []
    for _ in range(rounds):
        ours_runs.append(bench.window("ours", concurrency, slave, seconds))
        if baseline is not None:
            base_runs.append(baseline.window("ours", concurrency, slave, seconds))
        ceiling_runs.append(bench.window("ceiling", concurrency, slave, seconds))
        if front:
            front_runs.append(bench.window("front end", concurrency, slave, seconds))
    ours, ceiling = best(ours_runs), best(ceiling_runs)
    ratio = ours["requests_per_s"] / ceiling["requests_per_s"]
    print(f"\n{label}  (median of {rounds} alternating rounds of {seconds:g} s)")
    print(f"  {'':30s} {'ours':>10s} {'ceiling':>10s} {'ratio':>7s}")
    print(f"  {'requests/s':30s} {ours['requests_per_s']:10,.0f} {ceiling['requests_per_s']:10,.0f} {ratio:7.2f}")
    print(f"  {'keys/s (end to end)':30s} {ours['keys_per_s']:10,.0f} {ceiling['keys_per_s']:10,.0f} "
          f"{ours['keys_per_s'] / ceiling['keys_per_s']:7.2f}")
    print(f"  {'server CPU per request (µs)':30s} {ours['server_cpu_us_per_request']:10.0f} "
          f"{ceiling['server_cpu_us_per_request']:10.0f} "
          f"{ceiling['server_cpu_us_per_request'] / ours['server_cpu_us_per_request']:7.2f}")
    for name in ("enc_p50_ms", "enc_p99_ms", "dec_p50_ms", "dec_p99_ms"):
        text = name.replace("_ms", " (ms)").replace("_", " ").replace("enc", "enc_keys").replace("dec", "dec_keys")
        print(f"  {text:30s} {ours[name]:10.2f} {ceiling[name]:10.2f} {ceiling[name] / ours[name]:7.2f}")
    print(f"  CPU, share of one core: ours: {cpu_text(ours['cpu'])}")
    print(f"                       ceiling: {cpu_text(ceiling['cpu'])}")
    print(f"  the clients: {ours['client_cpu_us_per_request']:.0f} µs of CPU per request (ours), "
          f"{ceiling['client_cpu_us_per_request']:.0f} (ceiling); the same client processes drove the ceiling "
          f"{ceiling['requests_per_s'] / ours['requests_per_s']:.1f}x as fast, so they were not what held ours back")
    out = {"ours": strip(ours), "ceiling": strip(ceiling), "ratio": round(ratio, 3),
           "rounds_requests_per_s": {"ours": [round(r["requests_per_s"]) for r in ours_runs],
                                     "ceiling": [round(r["requests_per_s"]) for r in ceiling_runs]}}
    if front_runs:
        fe = best(front_runs)
        fe_ratio = fe["requests_per_s"] / ceiling["requests_per_s"]
        work = ours["server_cpu_us_per_request"] - fe["server_cpu_us_per_request"]
        print(f"  the front end alone (our server and its Key container over a core that does no key work), in the "
              f"same rounds: {fe['requests_per_s']:,.0f} requests/s (ratio {fe_ratio:.2f}), "
              f"{fe['server_cpu_us_per_request']:.0f} µs of server CPU per request, enc_keys / dec_keys p50 "
              f"{fe['enc_p50_ms']:.2f} / {fe['dec_p50_ms']:.2f} ms; the key work (checks, journal, relay, key "
              f"material) is the other {work:.0f} µs of ours")
        out["front_end"], out["front_end_ratio"] = strip(fe), round(fe_ratio, 3)
        out["key_work_cpu_us_per_request"] = round(work, 1)
        out["rounds_requests_per_s"]["front_end"] = [round(r["requests_per_s"]) for r in front_runs]
    if base_runs:
        base = best(base_runs)
        base_ratio = base["requests_per_s"] / ceiling["requests_per_s"]
        print(f"  baseline ({baseline.code}), in the same rounds: {base['requests_per_s']:,.0f} requests/s "  # type: ignore[union-attr]
              f"(ratio {base_ratio:.2f}), {base['server_cpu_us_per_request']:.0f} µs of server CPU per request, "
              f"enc_keys / dec_keys p50 {base['enc_p50_ms']:.2f} / {base['dec_p50_ms']:.2f} ms; "
              f"ours / baseline: {ours['requests_per_s'] / base['requests_per_s']:.2f}x the requests/s")
        out["baseline"], out["baseline_ratio"] = strip(base), round(base_ratio, 3)
        out["rounds_requests_per_s"]["baseline"] = [round(r["requests_per_s"]) for r in base_runs]
    return out


def strip(run: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else {n: round(c, 3) for n, c in v.items()} if k == "cpu" else v)
            for k, v in run.items() if k not in ("rss_mb", "stock")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, one round, 200,000 keys for memory")
    parser.add_argument("--processes", action="store_true", help="each agent in its own process (qstrata up "
                        "--processes) instead of all in one")
    parser.add_argument("--seconds", type=float, default=None, help="length of a measured window (default: 5; "
                        "--quick: 2)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per row (default: 3; --quick: 1)")
    parser.add_argument("--keys", type=int, default=None, help="keys of the memory run (default: 1,000,000)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default: 2)")
    parser.add_argument("--rows", default="c1,c64,relayed,memory", help="rows to run (default: all: "
                        "c1,c64,relayed,memory)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    parser.add_argument("--baseline", type=Path, default=None, help="a qstrata source tree (e.g. `git worktree add "
                        "/tmp/base main`): its network is measured too, in the same rounds as ours (c1, c64)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main()
        return
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    memory_keys = args.keys or (200_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-kme-"))
    bench = Bench(args, tmp)
    base = None
    if args.baseline is not None:
        if not (args.baseline / "agents" / "kme").is_dir():
            raise SystemExit(f"--baseline {args.baseline}: not a qstrata source tree (no agents/kme in it)")
        (tmp / "baseline").mkdir()
        base = Bench(args, tmp / "baseline", code=args.baseline, ceiling=False)
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "hosting": "processes" if args.processes else
                           "one process", "number": NUMBER, "size": SIZE, "load": os.getloadavg()[0]}
    try:
        bench.start()
        print(f"qstrata up --bare ({out['hosting']}) on {TOPOLOGY.name}; state in {tmp}")
        print("processes: " + ", ".join(f"{name} (pid {pid})" for pid, name in bench.kme_pids.items()))
        if base is not None:
            base.start()
            print("baseline processes: " + ", ".join(f"{name} (pid {pid})" for pid, name in base.kme_pids.items()))
        for network in (bench, base) if base is not None else (bench,):
            network.wait_for_key("sae-b", 20 * NUMBER * 64)
            network.wait_for_key("sae-c", 20 * NUMBER * 64)
        rows = set(args.rows.split(","))
        if "c1" in rows:
            out["c1"] = compare(bench, "concurrency 1: enc_keys at alice, dec_keys at bob (direct link)", 1, rounds,
                                seconds, baseline=base)
        if "c64" in rows:
            out["c64"] = compare(bench, "concurrency 64: enc_keys at alice, dec_keys at bob (direct link)", 64,
                                 rounds, seconds, baseline=base)
        if "relayed" in rows:
            out["c64_relayed"] = compare(bench, "concurrency 64, relayed: enc_keys at alice, dec_keys at charlie "
                                         "(through bob)", 64, 1, seconds, slave="sae-c", front=False)
        if "memory" in rows:
            out["memory"] = memory_run(bench, memory_keys)
        out["targets"] = targets = verdicts(out)
        print("\ntargets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets.items()))
    finally:
        bench.stop()
        if base is not None:
            base.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    print(json.dumps(out))


def memory_run(bench: Bench, keys: int) -> dict[str, Any]:
    """`keys` keys through at concurrency 64; the server processes' RSS sampled all along (flat: what
    it grew from a tenth of the run, once every buffer and cache is warm, to its end)."""
    run = bench.window("ours", 64, keys=keys, sample=True)
    samples = run["rss_mb"]
    warm = next((i for i, (t, _) in enumerate(samples) if t >= run["seconds"] / 10), 0)
    rss = {name: {"first_mb": round(samples[0][1][name], 1), "after_tenth_mb": round(samples[warm][1][name], 1),
                  "max_mb": round(max(s[1][name] for s in samples), 1), "last_mb": round(samples[-1][1][name], 1),
                  "growth_mb": round(samples[-1][1][name] - samples[warm][1][name], 1)}
           for name in samples[0][1]}
    memory = {"keys": run["keys"], "seconds": round(run["seconds"], 1), "keys_per_s": round(run["keys_per_s"]),
              "requests_per_s": round(run["requests_per_s"]), "rss": rss,
              "growth_mb": max(r["growth_mb"] for r in rss.values()), "samples": len(samples),
              "stock_min_keys": min(run["stock"]) if run["stock"] else None,
              "cpu": {n: round(c, 3) for n, c in run["cpu"].items()}}
    print(f"\nmemory: {memory['keys']:,} keys at concurrency 64 in {memory['seconds']} s "
          f"({memory['keys_per_s']:,} keys/s, {memory['requests_per_s']:,} requests/s); RSS sampled "
          f"{len(samples)} times:")
    for name, r in rss.items():
        print(f"  {name}: {r['first_mb']} MB at the start, {r['after_tenth_mb']} after a tenth of the run, max "
              f"{r['max_mb']}, {r['last_mb']} at the end (growth {r['growth_mb']:+} MB)")
    print(f"  the link's store never held less than {memory['stock_min_keys']:,} keys of 256 bits (the key supply "
          "was not the limit)")
    print(f"  CPU, share of one core: {cpu_text(run['cpu'])}")
    return memory


def verdicts(out: dict[str, Any]) -> dict[str, bool]:
    """Issue 19's targets, for the rows that ran."""
    targets = {}
    for row in ("c64", "c1"):
        if row in out:
            targets[f"ratio_{row}_at_least_0.7"] = out[row]["ratio"] >= 0.7
    if "c64" in out:
        targets["requests_per_s_at_least_2000"] = out["c64"]["ours"]["requests_per_s"] >= 2000
        targets["keys_per_s_at_least_20000"] = out["c64"]["ours"]["keys_per_s"] >= 20000
    if "memory" in out:
        targets["memory_flat_within_10_mb"] = abs(out["memory"]["growth_mb"]) <= 10
    return targets


if __name__ == "__main__":
    main()
