#!/usr/bin/env python3
"""RESTCONF benchmark: one qstrata qkd agent with its digital twin attached (`alice`), driven over
RESTCONF and over NETCONF in the same run, beside a bare aiohttp server (the HTTP library our
RESTCONF server is built on, same TLS, same Basic check) that serves the same bytes: the ceiling.

Rows (one HTTPS keep-alive connection with a lean HTTP/1.1 client, `Rest`, one NETCONF session,
sequential requests):
- creates: single-link creates of VIRT `qkd_link`s until the node holds --links (10,000),
  alternating link by link: RESTCONF POST to `qkd_links` for the even links, NETCONF edit-config
  for the odd ones, so both protocols create at the same datastore size under the same machine
  load (this 2-core machine is shared; measured one after the other, a protocol's minute met
  load the other's never saw and the ratios swung 0.3-2.5 between runs); the rate of each
  protocol's first 100 and last 100 creates, and their ratio (target: the last >= 90% of the
  first);
- reads at 100 and 1,000 links (taken during the sweep, in alternating slices of one window):
  GET of `qkd_node` with content=config against NETCONF get-config of the same subtree, and GET
  of the whole `qkd_node` (state included) against NETCONF <get>;
- target: RESTCONF >= 0.8 of NETCONF on every row; each RESTCONF row's ratio to the bare ceiling
  (the same bodies from memory for GET, a 201 with Location for POST) is reported;

No jetconf peer row (tried within a 20-minute time box): jetconf 0.3.6 (2019, the last release)
loads the ETSI module and accepts a POST of a link only with yangson pinned to 1.3.49 (with the
current 1.7.9 every request fails in its instance-route code), a backend package of our own
(yang-library-data.json with ietf-yang-library and ietf-netconf-acm, an `ietf-netconf-acm:nacm`
and an empty `qkd_links` in its data file), a JSON object where RFC 8040's example POSTs a list
entry as an array, and an explicit `jetconf:conf-commit` before an edit reaches running; and it
speaks HTTP/2 only (TLS with ALPN h2 and a client certificate, or cleartext h2c with the user in
an x-ssl-client-dn header). Its row would need another client (HTTP/2) than every other row and
a commit per create: not the same measurement, so it is left out.

NETCONF's client, rates, create rows and RSS sampling are scripts/bench_netconf.py's.
Output ends with one JSON line of the figures.

Usage: .venv/bin/python scripts/bench_restconf.py [--quick] [--links 10000] [--budget 300]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kme as kme  # noqa: E402
import bench_netconf as nc  # noqa: E402

NODE = "/restconf/data/etsi-qkd-sdn-node:qkd_node"
LINKS = NODE + "/qkd_links"
YANG_JSON = "application/yang-data+json"
GET_CONFIG = (f'<get-config><source><running/></source><filter type="subtree"><qkd_node xmlns="{nc.ETSI}"/>'
              "</filter></get-config>")
GET_ALL = f'<get><filter type="subtree"><qkd_node xmlns="{nc.ETSI}"/></filter></get>'
READ_SIZES = (100, 1000)


def link_json(i: int) -> bytes:
    """bench_netconf's VIRT link i (`virt_link_xml`) as a RESTCONF POST body (RFC 7951)."""
    return json.dumps({"etsi-qkd-sdn-node:qkd_link": [{
        "qkdl_id": str(uuid.UUID(int=(1 << 64) + i)), "qkdl_enable": True,
        "qkdl_remote": {"qkdn_id": str(uuid.UUID(int=(2 << 64) + i))},
        "qkdl_type": "etsi-qkd-node-types:VIRT", "virt_bandwidth": 1000}]}).encode()


def delete_rpc(first: int, last: int) -> str:
    entries = "".join(f'<qkd_link xmlns:nc="{nc.BASE}" nc:operation="delete"><qkdl_id>{uuid.UUID(int=(1 << 64) + i)}'
                      "</qkdl_id></qkd_link>" for i in range(first, last))
    return nc.twin_edit_rpc(links=entries)


class Rest:
    """One HTTPS keep-alive connection, HTTP Basic, sequential requests, with bench_kme's lean
    HTTP/1.1 client (the request written whole, the answer's head and Content-Length body read,
    nothing parsed), as the NETCONF client hands back raw replies: the rates are the servers',
    not a client library's. (aiohttp's client, used before, cost 0.34-0.47 ms of CPU per create
    against the NETCONF client's 0.17-0.22 ms: a fifth of a create at 10,000 links.)"""

    def __init__(self, connection: kme.Connection, host: str, authorization: str) -> None:
        self.connection = connection
        self.head = f"Host: {host}\r\nAuthorization: {authorization}\r\n"

    @classmethod
    async def open(cls, port: int, user: str, password: str, ca: str | None) -> Rest:
        context = ssl.create_default_context(cafile=ca)
        if ca is None:  # an agent without its own CA: encryption without verification
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        end = {"host": "127.0.0.1", "port": port}
        connection = await kme.Connection.open(end, context)
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return cls(connection, f"127.0.0.1:{port}", basic)

    async def get(self, path: str) -> bytes:
        status, body = await self.connection.call(
            f"GET {path} HTTP/1.1\r\n{self.head}Accept: {YANG_JSON}\r\n\r\n".encode())
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status} {body[:300]!r}")
        return body

    async def post(self, path: str, body: bytes) -> None:
        status, answer = await self.connection.call(
            f"POST {path} HTTP/1.1\r\n{self.head}Content-Type: {YANG_JSON}\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)
        if status != 201:
            raise RuntimeError(f"POST {path}: HTTP {status} {answer[:300]!r}")

    async def close(self) -> None:
        self.connection.close()


async def sweep(do_one, total: int, budget: float, at=None) -> dict:
    """Sequential creates 0..total-1 (each `do_one(i)`), `at(n)` called when n exist."""
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(total):
        t = time.perf_counter()
        await do_one(i)
        latencies.append(time.perf_counter() - t)
        if at is not None and i + 1 in READ_SIZES:
            await at(i + 1)
        if time.perf_counter() - start > budget:
            break
    return nc.creates_row(latencies)


async def alternating_sweep(rc_one, nc_one, total: int, budget: float, at=None) -> tuple[dict, dict]:
    """Creates 0..total-1 of one datastore, RESTCONF the even ones and NETCONF the odd ones, so
    both create at the same datastore size under the same machine load (this machine is shared:
    a protocol measured alone for a minute meets other jobs' load the other never sees); `at(n)`
    when n exist. Each protocol's first and last 100 creates are its rows."""
    latencies: tuple[list[float], list[float]] = ([], [])
    start = time.perf_counter()
    for i in range(total):
        t = time.perf_counter()
        await (rc_one if i % 2 == 0 else nc_one)(i)
        latencies[i % 2].append(time.perf_counter() - t)
        if at is not None and i + 1 in READ_SIZES:
            await at(i + 1)
        if time.perf_counter() - start > budget:
            break
    return nc.creates_row(latencies[0]), nc.creates_row(latencies[1])


async def alternating_rates(rc_fn, nc_fn, secs: float, slices: int = 6) -> tuple[float, float]:
    """Rates of a RESTCONF and a NETCONF request measured in alternating slices of one window
    (the order swapped each slice), for the same reason as `alternating_sweep`."""
    counts, spent = [0, 0], [0.0, 0.0]
    for k in range(slices):
        for who in ((0, 1) if k % 2 == 0 else (1, 0)):
            fn = (rc_fn, nc_fn)[who]
            start = time.perf_counter()
            while counts[who] < 3 * (k + 1) or time.perf_counter() - start < secs / slices:
                await fn()
                counts[who] += 1
            spent[who] += time.perf_counter() - start
    return counts[0] / spent[0], counts[1] / spent[1]


async def measure(nport: int, nauth: dict, rest: Rest, total: int, budget: float, secs: float,
                  bodies: Path, pid: int | None) -> dict:
    c = await nc.Client.connect(nport, **nauth)
    out: dict = {"reads": {}}

    async def reads(n: int) -> None:
        row: dict = {}
        row["rc_get_config_ops"], row["nc_get_config_ops"] = await alternating_rates(
            lambda: rest.get(NODE + "?content=config"), lambda: c.call(GET_CONFIG), secs)
        row["rc_get_ops"], row["nc_get_ops"] = await alternating_rates(lambda: rest.get(NODE),
                                                                       lambda: c.call(GET_ALL), secs)
        (bodies / f"config-{n}").write_bytes(await rest.get(NODE + "?content=config"))
        (bodies / f"all-{n}").write_bytes(await rest.get(NODE))
        row["rc_get_bytes"] = (bodies / f"all-{n}").stat().st_size
        out["reads"][n] = row

    out["rc_creates"], out["nc_creates"] = await alternating_sweep(
        lambda i: rest.post(LINKS, link_json(i)), lambda i: c.call(nc.twin_edit_rpc(links=nc.virt_link_xml(i))),
        total, budget, reads)
    out["entries"] = out["rc_creates"]["entries"] + out["nc_creates"]["entries"]
    out["rss_mb"] = nc.rss_mb(pid) if pid else None
    for first in range(0, out["entries"], 500):
        await c.call(delete_rpc(first, min(out["entries"], first + 500)))
    await c.close()
    return out


# ------------------------------------------------------------------ the bare ceiling


def serve_bare(port: int, bodies: str, cert: str, key: str, user: str, password: str) -> None:
    """The ceiling: aiohttp, TLS with the agent's certificate, HTTP Basic compared as one string,
    GET answered with the bytes our server answered (from memory), POST with 201 and Location."""
    from aiohttp import web
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    files = {p.name: p.read_bytes() for p in Path(bodies).iterdir()}

    async def get(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        return web.Response(body=files[request.match_info["name"]], content_type=YANG_JSON)

    async def post(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        doc = json.loads(await request.read())
        key = doc["etsi-qkd-sdn-node:qkd_link"][0]["qkdl_id"]
        return web.Response(status=201, headers={"Location": f"{LINKS}/qkd_link={key}"})

    app = web.Application()
    app.router.add_get("/bare/{name}", get)
    app.router.add_post(LINKS, post)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, access_log=None, print=None)


async def measure_bare(rest: Rest, sizes: list[int], total: int, secs: float) -> dict:
    out: dict = {"reads": {}}
    for n in sizes:
        out["reads"][n] = {"get_config_ops": await nc.rate(lambda n=n: rest.get(f"/bare/config-{n}"), secs),
                           "get_ops": await nc.rate(lambda n=n: rest.get(f"/bare/all-{n}"), secs)}
    out["creates"] = await sweep(lambda i: rest.post(LINKS, link_json(i)), min(total, 2000), 60)
    return out


# ------------------------------------------------------------------ report


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def figures(q: dict, bare: dict | None) -> dict:
    """The comparison the issue asks for: RESTCONF / NETCONF per row, creates' last/first, / bare."""
    rows: dict = {}
    for n, r in q["reads"].items():
        b = (bare or {}).get("reads", {}).get(n, {})
        rows[f"get_config_{n}"] = {"restconf": r["rc_get_config_ops"], "netconf": r["nc_get_config_ops"],
                                   "vs_netconf": ratio(r["rc_get_config_ops"], r["nc_get_config_ops"]),
                                   "bare": b.get("get_config_ops"),
                                   "vs_bare": ratio(r["rc_get_config_ops"], b.get("get_config_ops"))}
        rows[f"get_{n}"] = {"restconf": r["rc_get_ops"], "netconf": r["nc_get_ops"],
                            "vs_netconf": ratio(r["rc_get_ops"], r["nc_get_ops"]), "bare": b.get("get_ops"),
                            "vs_bare": ratio(r["rc_get_ops"], b.get("get_ops")), "bytes": r["rc_get_bytes"]}
    rc, ncr = q["rc_creates"], q["nc_creates"]
    bare_post = (bare or {}).get("creates", {}).get("first100_ops")
    rows["creates_first100"] = {"restconf": rc["first100_ops"], "netconf": ncr["first100_ops"],
                                "vs_netconf": ratio(rc["first100_ops"], ncr["first100_ops"]), "bare": bare_post,
                                "vs_bare": ratio(rc["first100_ops"], bare_post)}
    rows["creates_last100"] = {"restconf": rc["last100_ops"], "netconf": ncr["last100_ops"],
                               "vs_netconf": ratio(rc["last100_ops"], ncr["last100_ops"]), "bare": bare_post,
                               "vs_bare": ratio(rc["last100_ops"], bare_post),
                               "entries": {"restconf": rc["entries"], "netconf": ncr["entries"]}}
    return rows


def print_table(rows: dict, q: dict, total: int) -> None:
    def f(x: float | None, fmt: str = "10.1f") -> str:
        return format(x, fmt) if x is not None else " " * (int(fmt.split(".")[0]) - 1) + "-"

    print(f"{'row (ops/s)':34} {'RESTCONF':>10} {'NETCONF':>10} {'RC/NC':>6} {'bare':>10} {'RC/bare':>7}")
    labels = {f"get_config_{n}": f"GET content=config @ {n} links" for n in READ_SIZES} | {
        f"get_{n}": f"GET qkd_node (all) @ {n} links" for n in READ_SIZES} | {
        "creates_first100": "POST/edit creates, first 100", "creates_last100": f"POST/edit creates, last 100 (@{total})"}
    for key, label in labels.items():
        if key in rows:
            r = rows[key]
            print(f"{label:34} {f(r['restconf'])} {f(r['netconf'])} {f(r['vs_netconf'], '6.2f')} {f(r['bare'])} "
                  f"{f(r['vs_bare'], '7.2f')}")
    worst = min((r["vs_netconf"] for r in rows.values() if r["vs_netconf"]), default=None)
    print(f"target RESTCONF >= 0.8 of NETCONF on every row: worst {f(worst, '.2f')} "
          f"{'ok' if worst and worst >= 0.8 else 'MISSED'}")
    for who in ("rc_creates", "nc_creates"):
        row = q[who]
        verdict = "ok" if row["last_vs_first"] >= 0.9 and q["entries"] >= total else "MISSED"
        print(f"{'RESTCONF' if who == 'rc_creates' else 'NETCONF'} creates: {row['entries']} of the node's "
              f"{q['entries']}, its last 100 at {row['last_vs_first']:.0%} of its first 100 (target >= 90% at "
              f"{total}): {verdict}; "
              f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 links, shorter rates")
    ap.add_argument("--links", type=int, default=None, help="creates per protocol (default 10000; 1000 with --quick)")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds per create sweep before it stops early")
    ap.add_argument("--serve-bare", nargs=6, metavar=("PORT", "DIR", "CERT", "KEY", "USER", "PASSWORD"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_bare:
        port, bodies, cert, key, user, password = args.serve_bare
        serve_bare(int(port), bodies, cert, key, user, password)
        return 0
    total = args.links or (1000 if args.quick else 10000)
    secs = 0.5 if args.quick else 1.5
    tmp = Path(tempfile.mkdtemp(prefix="qstrata-bench-rc-"))
    bodies = tmp / "bodies"
    bodies.mkdir()
    results: dict = {"bench": "restconf", "links": total}
    rport = nc.free_port()
    proc, nport, nauth = nc.start_agent(tmp, "alice", ("--restconf-port", str(rport)))
    state = tmp / "agent-alice"
    try:
        nc.wait_port(rport)
        ca = json.loads((state / "credentials.json").read_text()).get("ca")

        async def ours() -> dict:
            rest = await Rest.open(rport, nauth["username"], nauth["password"], ca)
            try:
                return await measure(nport, nauth, rest, total, args.budget, secs, bodies, proc.pid)
            finally:
                await rest.close()
        results["qstrata"] = asyncio.run(ours())
    finally:
        nc.stop([proc])
    bport = nc.free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(bport), str(bodies),
                             str(state / "gnmi" / "server.pem"), str(state / "gnmi" / "server.key"),
                             nauth["username"], nauth["password"]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        nc.wait_port(bport)

        async def ceiling() -> dict:
            rest = await Rest.open(bport, nauth["username"], nauth["password"], ca)
            try:
                return await measure_bare(rest, [n for n in READ_SIZES if n in results["qstrata"]["reads"]], total,
                                          secs)
            finally:
                await rest.close()
        results["bare"] = asyncio.run(ceiling())
    except Exception as exc:  # report what was measured and why the ceiling was not
        results["bare_error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        nc.stop([bare])
    results["rows"] = figures(results["qstrata"], results.get("bare"))
    print_table(results["rows"], results["qstrata"], total)
    print(json.dumps(results, separators=(",", ":")))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
