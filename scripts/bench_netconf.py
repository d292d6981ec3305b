#!/usr/bin/env python3
"""NETCONF benchmark: a qstrata qkd agent, side by side with Debian's netconfd when installed.

The project's NETCONF client (asyncssh without its per-packet SSH_MSG_IGNORE, like OpenSSH and
paramiko; our sans-IO framer; raw replies; optional pipelining) measures, per
server: session set-up; sequential get-config and single-entry edit-config ops/s with 0, 100,
1,000 and 10,000 qkd_link entries; pipelined get-config ops/s; aggregate get-config ops/s over
10 sessions; agent RSS. Each row prints the agent/netconfd ratio. Output ends with one JSON line.

Twin rows: a second qstrata agent named `alice` (a qkd node of the default topology) runs with its
digital twin attached, and takes sequential single-entry creates of VIRT `qkd_link`s, then of
`qkd_app`s (one backed by each link), up to --twin-entries each. Per row: the rate of the first 100
and the last 100 creates, their ratio (target >= 0.90), and the p99 latency. netconfd has no twin,
so these rows have no comparison.

netconfd (yuma123) runs behind a private OpenSSH (`Subsystem netconf netconf-subsystem`) on a
loopback port with a throw-away host key and root key; it loads a copy of the ETSI module without
the top-level `mandatory` (netconfd refuses top-level mandatory nodes). Per the netconfd quirks:
the hello is sent, then we wait before the first rpc, and the pipeline window stays <= 64.

Create/delete rows (`--deletes`, alone): single-link creates, each followed by the delete of that
link, at 100 and 10,000 links: over NETCONF to `bench` (no twin) and to `alice` (twin attached),
and in process (`Datastore.edit`, no protocol) with an on-change watcher (`watch_operational`)
subscribed. Median ms of each and the ratio delete/create (target: about 1). With `--baseline
DIR` (a qstrata source tree, e.g. a `git worktree` of main), the same rows run from DIR in the
same rounds: both agents hold the same links and take turns, round by round.

Usage: .venv/bin/python scripts/bench_netconf.py [--quick] [--no-netconfd] [--sizes 0,100,1000,10000]
           [--twin-entries 10000] [--twin-budget 300] [--twin-only]
       .venv/bin/python scripts/bench_netconf.py --deletes [--quick] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qstrata.agents.netconf.ssh import skip_ignore_packets  # noqa: E402
from qstrata.bindings.wire.netconf_client import NetconfEndpoint, NetconfSession  # noqa: E402

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
ETSI = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
QKDN_ID = "7e8cc1ff-815a-54df-a8de-6477120d8a01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def link_xml(i: int) -> str:
    lid = str(uuid.UUID(int=i + 1))
    return (f"<qkd_link><qkdl_id>{lid}</qkdl_id><qkdl_enable>true</qkdl_enable>"
            f"<qkdl_local><qkdn_id>{QKDN_ID}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_local>"
            f"<qkdl_remote><qkdn_id>{uuid.UUID(int=10**9 + i)}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_remote>"
            f'<qkdl_type xmlns:t="{TYPES}">t:PHYS</qkdl_type></qkd_link>')


def deleted(link: str) -> str:
    """A link's entry (`link_xml`, `virt_link_xml`) as an nc:operation="delete" of its key."""
    return link.replace("<qkd_link>", f'<qkd_link xmlns:nc="{BASE}" nc:operation="delete">', 1).split("<qkdl_enable>")[0] + "</qkd_link>"


def edit_rpc(links: str) -> str:
    return (f'<edit-config><target><running/></target><config>'
            f'<qkd_node xmlns="{ETSI}"><qkdn_id>{QKDN_ID}</qkdn_id><qkd_links>{links}</qkd_links></qkd_node>'
            f"</config></edit-config>")


GET_CONFIG = "<get-config><source><running/></source></get-config>"


def virt_link_xml(i: int) -> str:
    """A virtual (key-relay) link: what the twin needs is qkdl_type VIRT (key_relay_mode_enable is on
    in its inventory) and a bandwidth; no interface, no physical leaves."""
    return (f"<qkd_link><qkdl_id>{uuid.UUID(int=(1 << 64) + i)}</qkdl_id><qkdl_enable>true</qkdl_enable>"
            f"<qkdl_remote><qkdn_id>{uuid.UUID(int=(2 << 64) + i)}</qkdn_id></qkdl_remote>"
            f'<qkdl_type xmlns:t="{TYPES}">t:VIRT</qkdl_type><virt_bandwidth>1000</virt_bandwidth></qkd_link>')


def app_xml(i: int) -> str:
    """A client application backed by VIRT link i (the twin refuses a backing link it does not have)."""
    return (f"<qkd_app><app_id>{uuid.UUID(int=(3 << 64) + i)}</app_id>"
            f'<app_type xmlns:t="{TYPES}">t:CLIENT</app_type>'
            f"<app_qos><min_bandwidth>100</min_bandwidth></app_qos>"
            f"<backing_qkdl_id>{uuid.UUID(int=(1 << 64) + i)}</backing_qkdl_id></qkd_app>")


def twin_edit_rpc(links: str = "", apps: str = "") -> str:
    """An edit of the twin's node; qkdn_id is the twin's own, so it is left out."""
    body = (f"<qkd_links>{links}</qkd_links>" if links else "") + (
        f"<qkd_applications>{apps}</qkd_applications>" if apps else "")
    return (f'<edit-config><target><running/></target><config><qkd_node xmlns="{ETSI}">{body}</qkd_node>'
            f"</config></edit-config>")


class Client:
    """The bench's view of the one NETCONF client (`qstrata.bindings.wire.netconf_client`): raw
    replies (no client-side parse counted in the rates), optional pipelining."""

    def __init__(self, session: NetconfSession) -> None:
        self.session = session

    @classmethod
    async def connect(cls, port: int, username: str, password: str | None = None, key_file: str | None = None) -> Client:
        session = await NetconfSession.open(NetconfEndpoint("127.0.0.1", port, username, password, key_file),
                                            max_message_size=1 << 30, hello_pause=0.02)
        skip_ignore_packets(session.conn)  # send what OpenSSH and paramiko (ncclient) send: no IGNORE per packet
        return cls(session)

    async def _reply(self) -> bytes:
        reply = await self.session.read_raw()
        if b"rpc-error" in reply:
            raise RuntimeError(reply[:400].decode(errors="replace"))
        return reply

    async def call(self, body: str) -> bytes:
        self.session.send(body)
        return await self._reply()

    async def pipelined(self, body: str, count: int, window: int) -> None:
        inflight = sent = done = 0
        while done < count:
            while inflight < window and sent < count:
                self.session.send(body)
                sent += 1
                inflight += 1
            await self._reply()
            inflight -= 1
            done += 1

    async def close(self) -> None:
        self.session.abort()


async def rate(fn, seconds: float, min_ops: int = 3) -> float:
    n, start = 0, time.perf_counter()
    while n < min_ops or time.perf_counter() - start < seconds:
        await fn()
        n += 1
    return n / (time.perf_counter() - start)


async def measure(port: int, auth: dict, sizes: list[int], quick: bool, pid: int | None) -> dict:
    secs = 0.5 if quick else 1.5
    out: dict = {}
    setups = []
    for _ in range(3 if quick else 5):
        t = time.perf_counter()
        c = await Client.connect(port, **auth)
        setups.append(time.perf_counter() - t - 0.02)
        await c.close()
    out["session_setup_ms"] = statistics.median(setups) * 1000
    c = await Client.connect(port, **auth)
    count = 0
    out["get_config_ops"], out["edit_config_ops"] = {}, {}
    for size in sizes:
        if size > count:  # fill in batches of 500 links per edit
            for start in range(count, size, 500):
                await c.call(edit_rpc("".join(link_xml(i) for i in range(start, min(size, start + 500)))))
            count = size
        out["get_config_ops"][size] = await rate(lambda: c.call(GET_CONFIG), secs)
        n0 = count
        edits = 50 if quick else 100

        async def one_edit() -> None:
            nonlocal count
            await c.call(edit_rpc(link_xml(count)))
            count += 1

        t = time.perf_counter()
        done = 0
        # at least 5 edits; at most `edits`, or what fits in a few seconds (netconfd needs
        # seconds per edit at 10,000 links)
        while done < edits and (done < 5 or time.perf_counter() - t < 4 * secs):
            await one_edit()
            done += 1
        out["edit_config_ops"][size] = done / (time.perf_counter() - t)
        # remove the extra links so the next size starts where it should
        await c.call(edit_rpc("".join(deleted(link_xml(i)) for i in range(n0, count))))
        count = n0
        if pid and size == max(sizes):
            out["rss_mb_at_max"] = rss_mb(pid)
    await c.call(edit_rpc("".join(deleted(link_xml(i)) for i in range(count))))
    t = time.perf_counter()
    n = 500 if quick else 2000
    await c.pipelined(GET_CONFIG, n, 64)
    out["pipelined_get_config_ops"] = n / (time.perf_counter() - t)
    await c.close()
    clients = [await Client.connect(port, **auth) for _ in range(10)]
    per = 100 if quick else 300
    t = time.perf_counter()
    await asyncio.gather(*(cl.pipelined(GET_CONFIG, per, 1) for cl in clients))
    out["ten_sessions_get_config_ops"] = 10 * per / (time.perf_counter() - t)
    for cl in clients:
        await cl.close()
    return out


def creates_row(latencies: list[float]) -> dict:
    """Rates of the first and last 100 sequential creates, their ratio, and latency quantiles."""
    first, last = latencies[:100], latencies[-100:]
    ordered = sorted(latencies)
    row = {
        "entries": len(latencies),
        "first100_ops": len(first) / sum(first),
        "last100_ops": len(last) / sum(last),
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }
    row["last_vs_first"] = row["last100_ops"] / row["first100_ops"]
    return row


async def measure_twin(port: int, auth: dict, entries: int, budget_s: float, pid: int | None) -> dict:
    """Sequential single-entry creates of VIRT links, then of applications, against a twin-backed
    agent. A row stops early (and says how far it got) when it runs out of its time budget."""
    c = await Client.connect(port, **auth)
    out: dict = {}
    for kind, make, wrap in (("qkd_link", virt_link_xml, lambda x: twin_edit_rpc(links=x)),
                             ("qkd_app", app_xml, lambda x: twin_edit_rpc(apps=x))):
        latencies: list[float] = []
        start = time.perf_counter()
        for i in range(entries):
            t = time.perf_counter()
            await c.call(wrap(make(i)))
            latencies.append(time.perf_counter() - t)
            if time.perf_counter() - start > budget_s:
                break
        out[kind] = creates_row(latencies)
        if kind == "qkd_app" and len(latencies) < entries:
            out[kind]["links_present"] = out["qkd_link"]["entries"]
    if pid:
        out["rss_mb"] = rss_mb(pid)
    await c.close()
    return out


def code_env(tmp: Path, code: Path | None) -> dict | None:
    """The environment that imports `qstrata` from the source tree `code` (None: the installed one)."""
    if code is None:
        return None
    (tmp / "code").mkdir(exist_ok=True)
    link = tmp / "code" / "qstrata"
    if not link.exists():
        link.symlink_to(code.resolve())
    return {**os.environ, "PYTHONPATH": str(tmp / "code")}


# ---------------------------------------------------------------------- creates against deletes

DELETE_SIZES = (100, 10000)


async def create_delete_pairs(c: Client, make, wrap, first: int, pairs: int) -> tuple[list[float], list[float]]:
    """Latencies of `pairs` sequential single-link creates, each followed by the delete of that link."""
    creates, deletes = [], []
    for i in range(first, first + pairs):
        t = time.perf_counter()
        await c.call(wrap(make(i)))
        creates.append(time.perf_counter() - t)
        t = time.perf_counter()
        await c.call(wrap(deleted(make(i))))
        deletes.append(time.perf_counter() - t)
    return creates, deletes


async def measure_deletes(agents: dict[str, tuple[int, dict]], make, wrap, rounds: int, pairs: int) -> dict:
    """Per size: every agent filled to it, then `rounds` rounds of `pairs` create/delete pairs,
    the agents taking turns (the first one alternates), so ours and the baseline meet the same
    machine load. Median latencies in ms and the ratio delete/create."""
    clients = {label: await Client.connect(port, **auth) for label, (port, auth) in agents.items()}
    out: dict = {label: {} for label in agents}
    count = 0
    for size in DELETE_SIZES:
        for c in clients.values():
            for start in range(count, size, 500):
                await c.call(wrap("".join(make(i) for i in range(start, min(size, start + 500)))))
        count = size
        lat = {label: ([], []) for label in clients}
        order = list(clients)
        for r in range(rounds):
            for label in order[r % 2:] + order[:r % 2]:
                creates, deletes = await create_delete_pairs(clients[label], make, wrap, 10**6 + r * pairs, pairs)
                lat[label][0].extend(creates)
                lat[label][1].extend(deletes)
        for label, (creates, deletes) in lat.items():
            c_ms, d_ms = statistics.median(creates) * 1000, statistics.median(deletes) * 1000
            out[label][size] = {"create_ms": c_ms, "delete_ms": d_ms, "delete_vs_create": d_ms / c_ms}
    for c in clients.values():
        await c.close()
    return out


def datastore_worker(pairs: int) -> dict:
    """In process (no protocol): `Datastore.edit` creates and deletes of one link at each size,
    with an on-change watcher (`watch_operational`) subscribed, as gNMI ON_CHANGE has it."""
    from qstrata.agents.datastore.store import SYSTEM, Datastore
    from qstrata.bindings.edit import EditOperation
    from qstrata.bindings.tree import DataTree

    top = "etsi-qkd-sdn-node:qkd_node"

    def tree(ids) -> DataTree:
        return DataTree.from_python({top: {"qkdn_id": QKDN_ID, "qkd_links": {"qkd_link": [
            {"qkdl_id": str(uuid.UUID(int=i + 1)), "qkdl_type": "etsi-qkd-node-types:PHYS"} for i in ids]}}},
            validate=False)

    def path(i: int) -> str:
        return f"/{top}/qkd_links/qkd_link[qkdl_id='{uuid.UUID(int=i + 1)}']"

    async def run() -> dict:
        store = Datastore()
        store.load(DataTree.from_python({top: {"qkdn_id": QKDN_ID}}, config_only=True))
        handed: list = []
        store.watch_operational(handed.append)
        out, count = {}, 0
        for size in DELETE_SIZES:
            for start in range(count, size, 1000):
                await store.edit("running", [EditOperation("merge", "/", tree(range(start, min(size, start + 1000))))],
                                 SYSTEM, big=True)
            count = size
            creates, deletes = [], []
            for i in range(10**6, 10**6 + pairs):
                t = time.perf_counter()
                await store.edit("running", [EditOperation("create", path(i), tree([i]))], SYSTEM)
                await asyncio.sleep(0)  # the watcher is handed the change on the next loop turn
                creates.append(time.perf_counter() - t)
                t = time.perf_counter()
                await store.edit("running", [EditOperation("delete", path(i))], SYSTEM)
                await asyncio.sleep(0)
                deletes.append(time.perf_counter() - t)
            assert len(handed) >= 2 * pairs, "the watcher was not handed every change"
            handed.clear()
            out[size] = (creates, deletes)
        return out

    return asyncio.run(run())


def measure_datastore(tmp: Path, codes: dict[str, Path | None], rounds: int, pairs: int) -> dict:
    """`datastore_worker` in a process per round and code tree, the trees taking turns."""
    lat: dict = {label: {size: ([], []) for size in DELETE_SIZES} for label in codes}
    order = list(codes)
    for r in range(rounds):
        for label in order[r % 2:] + order[:r % 2]:
            done = subprocess.run([sys.executable, __file__, "--datastore-worker", str(pairs)], check=True,
                                  capture_output=True, text=True, env=code_env(tmp, codes[label]))
            for size, (creates, deletes) in json.loads(done.stdout.splitlines()[-1]).items():
                lat[label][int(size)][0].extend(creates)
                lat[label][int(size)][1].extend(deletes)
    out: dict = {label: {} for label in codes}
    for label, sizes in lat.items():
        for size, (creates, deletes) in sizes.items():
            c_ms, d_ms = statistics.median(creates) * 1000, statistics.median(deletes) * 1000
            out[label][size] = {"create_ms": c_ms, "delete_ms": d_ms, "delete_vs_create": d_ms / c_ms}
    return out


def run_deletes(tmp: Path, baseline: Path | None, quick: bool) -> dict:
    """The create/delete rows: NETCONF without and with the twin, and in process with a watcher."""
    rounds, pairs = (2, 10) if quick else (5, 10)
    codes: dict[str, Path | None] = {"ours": None}
    if baseline is not None:
        codes["baseline"] = baseline
    results: dict = {}
    for row, name, make, wrap in (("netconf", "bench", link_xml, edit_rpc),
                                  ("netconf_twin", "alice", virt_link_xml, lambda x: twin_edit_rpc(links=x))):
        started = {label: start_agent(tmp, name, code=code) for label, code in codes.items()}
        try:
            results[row] = asyncio.run(measure_deletes({label: (port, auth) for label, (_, port, auth) in started.items()},
                                                       make, wrap, rounds, pairs))
        finally:
            stop([proc for proc, _, _ in started.values()])
    results["datastore_watched"] = measure_datastore(tmp, codes, 2, rounds * pairs // 2)
    return results


def print_deletes(results: dict) -> None:
    print("\nsingle-link creates and deletes (median ms), delete/create; rounds alternate between the trees")
    print(f"{'row':22} {'code':9} {'links':>6} {'create ms':>10} {'delete ms':>10} {'del/create':>10}")
    for row, label in (("netconf", "NETCONF, no twin"), ("netconf_twin", "NETCONF, twin"),
                       ("datastore_watched", "Datastore.edit+watch")):
        for code, sizes in results[row].items():
            for size, r in sizes.items():
                print(f"{label:22} {code:9} {size:6d} {r['create_ms']:10.2f} {r['delete_ms']:10.2f} "
                      f"{r['delete_vs_create']:10.2f}")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def start_agent(tmp: Path, name: str = "bench", extra: tuple[str, ...] = (),
                code: Path | None = None) -> tuple[subprocess.Popen, int, dict]:
    """A qkd agent: `bench` is no node of the default topology (an empty device); a node's name
    (`alice`) starts it with its digital twin. `extra`: more `qstrata agent` flags (other front ends).
    `code`: a qstrata source tree to run the agent from instead of the installed one (`--baseline`)."""
    port = free_port()
    state = tmp / f"agent-{name}{'-baseline' if code else ''}"
    qstrata = Path(sys.executable).with_name("qstrata")
    log = (tmp / f"{state.name}.log").open("w")
    proc = subprocess.Popen([str(qstrata), "agent", "--kind", "qkd", "--name", name, "--state-dir", str(state),
                             "--netconf-port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT,
                            env=code_env(tmp, code))
    wait_port(port)
    cred = json.loads((state / "credentials.json").read_text())
    return proc, port, {"username": cred["username"], "password": cred["password"]}


def start_netconfd(tmp: Path) -> tuple[list[subprocess.Popen], int, dict]:
    """netconfd behind a private sshd; raises RuntimeError with the reason when it can't."""
    for tool in ("/usr/sbin/netconfd", "/usr/sbin/sshd", "/usr/sbin/netconf-subsystem"):
        if not Path(tool).exists():
            raise RuntimeError(f"{tool} is not installed")
    if os.geteuid() != 0:
        raise RuntimeError("running sshd for netconfd needs root")
    port = free_port()
    d = tmp / "netconfd"
    d.mkdir()
    mods = d / "modules"
    mods.mkdir()
    etsi = (ROOT / "yang" / "etsi-qkd-sdn-node.yang").read_text()
    if "mandatory true;" not in etsi:
        raise RuntimeError("cannot find the top-level mandatory in the ETSI module")
    (mods / "etsi-qkd-sdn-node.yang").write_text(etsi.replace("mandatory true;", "", 1))
    shutil.copy(ROOT / "yang" / "etsi-qkd-node-types.yang", mods)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")], check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    sock = d / "ncxserver.sock"
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin yes\nPasswordAuthentication no\n"
        f"StrictModes no\nUsePAM no\n"
        f'Subsystem netconf "/usr/sbin/netconf-subsystem --ncxserver-sockname={port}@{sock}"\n')
    Path("/run/sshd").mkdir(exist_ok=True)
    log = (d / "log.txt").open("w")
    (Path(os.path.expanduser("~root")) / ".yuma").mkdir(exist_ok=True)  # netconfd keeps its txid file there
    startup = d / "startup-cfg.xml"  # our own, so no earlier run's configuration is loaded
    startup.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<config xmlns="{BASE}"/>\n')
    ncd = subprocess.Popen(["/usr/sbin/netconfd", f"--modpath={mods}", f"--module={mods / 'etsi-qkd-node-types.yang'}",
                            f"--module={mods / 'etsi-qkd-sdn-node.yang'}", "--target=running", f"--port={port}",
                            f"--ncxserver-sockname={sock}", "--superuser=root", "--log-level=error",
                            "--with-startup=false", "--access-control=off", f"--startup={startup}"],
                           stdout=log, stderr=subprocess.STDOUT, cwd=d)
    deadline = time.monotonic() + 20
    while not sock.exists():
        if ncd.poll() is not None or time.monotonic() > deadline:
            ncd.kill()
            raise RuntimeError("netconfd did not start: " + (d / "log.txt").read_text()[-400:])
        time.sleep(0.05)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_port(port)
    except RuntimeError:
        ncd.kill()
        sshd.kill()
        raise RuntimeError("sshd did not start: " + (d / "log.txt").read_text()[-400:]) from None
    return [sshd, ncd], port, {"username": "root", "key_file": str(d / "client")}


def stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


def ratio(a, b) -> str:
    return f"{a / b:6.2f}" if a and b else "     -"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-netconfd", action="store_true")
    ap.add_argument("--sizes", default="0,100,1000,10000")
    ap.add_argument("--twin-entries", type=int, default=None,
                    help="creates per twin row (default 10000, 1000 with --quick; 0 skips the twin rows)")
    ap.add_argument("--twin-budget", type=float, default=300.0,
                    help="seconds per twin row before it stops early and reports how far it got")
    ap.add_argument("--twin-only", action="store_true", help="only the twin rows")
    ap.add_argument("--deletes", action="store_true",
                    help="only the create/delete rows (100 and 10,000 links; NETCONF without and with the twin, "
                         "and Datastore.edit with an on-change watcher)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="with --deletes: a qstrata source tree (e.g. `git worktree add /tmp/main main`) measured "
                         "in the same rounds, taking turns with this one")
    ap.add_argument("--datastore-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.datastore_worker is not None:
        print(json.dumps(datastore_worker(args.datastore_worker)))
        return 0
    if args.deletes:
        if args.baseline is not None and not (args.baseline / "agents" / "datastore").is_dir():
            raise SystemExit(f"--baseline {args.baseline}: not a qstrata source tree (no agents/datastore in it)")
        tmp = Path(tempfile.mkdtemp(prefix="qstrata-bench-"))
        try:
            results = run_deletes(tmp, args.baseline, args.quick)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_deletes(results)
        print(json.dumps({"bench": "netconf-deletes", **results}, separators=(",", ":")))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    twin_entries = args.twin_entries if args.twin_entries is not None else (1000 if args.quick else 10000)
    tmp = Path(tempfile.mkdtemp(prefix="qstrata-bench-"))
    results: dict = {}
    if not args.twin_only:
        proc, port, auth = start_agent(tmp)
        try:
            results["qstrata"] = asyncio.run(measure(port, auth, sizes, args.quick, proc.pid))
        finally:
            stop([proc])
    if not args.no_netconfd and not args.twin_only:
        try:
            procs, nport, nauth = start_netconfd(tmp)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            results["netconfd_unavailable"] = str(exc)
        else:
            try:
                nsizes = [s for s in sizes if s <= 1000] if args.quick else sizes
                results["netconfd"] = asyncio.run(measure(nport, nauth, nsizes, args.quick, procs[1].pid))
            except Exception as exc:  # report what was measured and why the rest was not
                results["netconfd_error"] = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                stop(procs)
    if twin_entries > 0:
        proc, port, auth = start_agent(tmp, "alice")
        try:
            results["qstrata_twin"] = asyncio.run(measure_twin(port, auth, twin_entries, args.twin_budget, proc.pid))
        finally:
            stop([proc])
    if "qstrata" in results:
        print_table(results, sizes)
    if "qstrata_twin" in results:
        print_twin(results["qstrata_twin"], twin_entries)
    results["bench"] = "netconf"
    print(json.dumps(results, separators=(",", ":")))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def print_table(results: dict, sizes: list[int]) -> None:
    q, n = results["qstrata"], results.get("netconfd", {})
    print(f"{'metric':38} {'qstrata':>10} {'netconfd':>10} {'ratio':>6}")
    print(f"{'session set-up (ms, lower is better)':38} {q['session_setup_ms']:10.1f} "
          f"{n.get('session_setup_ms', 0):10.1f} {ratio(n.get('session_setup_ms'), q['session_setup_ms'])}")
    for key, label in (("get_config_ops", "get-config ops/s"), ("edit_config_ops", "edit-config ops/s")):
        for size in sizes:
            a, b = q[key].get(size), n.get(key, {}).get(size)
            print(f"{label + f' @ {size} links':38} {a or 0:10.1f} {b or 0:10.1f} {ratio(a, b)}")
    for key, label in (("pipelined_get_config_ops", "pipelined get-config ops/s (w=64)"),
                       ("ten_sessions_get_config_ops", "10 sessions get-config ops/s")):
        print(f"{label:38} {q[key]:10.1f} {n.get(key, 0):10.1f} {ratio(q[key], n.get(key))}")
    print(f"{'agent RSS at max size (MB)':38} {q.get('rss_mb_at_max') or 0:10.1f} {n.get('rss_mb_at_max') or 0:10.1f}")
    if "netconfd_unavailable" in results or "netconfd_error" in results:
        print("netconfd:", results.get("netconfd_unavailable") or results.get("netconfd_error"))
    edit = q["edit_config_ops"]
    if 100 in edit and max(sizes) >= 10000:
        results["edit_10000_vs_100"] = edit[max(sizes)] / edit[100]
        print(f"edit-config at {max(sizes)} links is {results['edit_10000_vs_100']:.0%} of its rate at 100 (target >= 90%)")


def print_twin(twin: dict, wanted: int) -> None:
    print(f"\ntwin attached (agent alice): sequential single-entry creates up to {wanted} entries")
    print(f"{'row':30} {'entries':>7} {'first100/s':>10} {'last100/s':>10} {'last/first':>10} {'p50 ms':>7} {'p99 ms':>7}")
    for kind, label in (("qkd_link", "VIRT qkd_link creates"), ("qkd_app", "qkd_app creates")):
        row = twin[kind]
        print(f"{label:30} {row['entries']:7d} {row['first100_ops']:10.1f} {row['last100_ops']:10.1f} "
              f"{row['last_vs_first']:10.2f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f}")
        verdict = "ok" if row["last_vs_first"] >= 0.9 and row["last100_ops"] >= 300 and row["entries"] >= wanted else "MISSED"
        print(f"  target: last100 >= 90% of first100 and >= 300/s at {wanted}: {verdict}")
    if twin.get("rss_mb"):
        print(f"{'twin agent RSS at the end (MB)':30} {twin['rss_mb']:7.1f}")


if __name__ == "__main__":
    sys.exit(main())
