"""A key delivery network for tests, run as a user runs one: a world service started by hand,
one `qstrata agent --world ... --kme-port N` process per QKD node, configuration over NETCONF
(ncclient, as a controller does), SAE certificates from `qstrata sae add`, and `curl` with those
certificates as the application.

The configuration (`configure`): QKD links between neighbours, SAEs with their KME, one
`qkd_app` per pair (master -> slaves, with a token-bucket session) on the KMEs of both ends, and
each KME's forwarding table towards the others (`urn:qkd:kme:<kme-id>`), hop by hop.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from conftest import QSTRATA, AgentProcess, free_port, port_open

SERVICE = [sys.executable, "-m", "qstrata.agents.devices.remote.service"]
TOPOLOGIES = Path(__file__).parent / "topologies"
RELAY = TOPOLOGIES / "relay.yaml"
QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
SS = "urn:qstrata:yang:qstrata-ss"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


@dataclass(frozen=True)
class Link:
    qkdl_id: str
    a: str
    a_iface: int
    b: str
    b_iface: int


@dataclass(frozen=True)
class Pair:
    app_id: str
    master: str
    slaves: tuple[str, ...]
    session: str
    rate: int = 10_000_000
    burst: int = 10_000_000


@dataclass
class ListedAgent:
    """An agent of a running `qstrata up`, as endpoints.json lists it."""

    port: int
    state_dir: Path

    @property
    def credentials(self) -> dict[str, str]:
        return json.loads((self.state_dir / "credentials.json").read_text())


@dataclass
class KmeNetwork:
    base: Path
    topology: Path = RELAY
    speed: float = 20.0
    names: tuple[str, ...] = ("alice", "bob", "charlie")
    agents: dict[str, AgentProcess] = field(default_factory=dict)
    kme_ports: dict[str, int] = field(default_factory=dict)
    world: subprocess.Popen | None = None
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.base / "world.sock"

    @classmethod
    def from_endpoints(cls, path: Path) -> KmeNetwork:
        """The QKD agents of a running `qstrata up` (its endpoints.json)."""
        doc = json.loads(Path(path).read_text())
        net = cls(Path(doc["state_dir"]), names=tuple(a["name"] for a in doc["agents"] if a.get("kme")))
        for a in doc["agents"]:
            if a.get("kme"):
                net.agents[a["name"]] = ListedAgent(a["netconf"]["port"], Path(a["state_dir"]))  # type: ignore[assignment]
                net.kme_ports[a["name"]] = int(a["kme"]["url"].rsplit(":", 1)[1])
        return net

    # -- processes ---------------------------------------------------------------------------

    def start(self) -> KmeNetwork:
        self.base.mkdir(parents=True, exist_ok=True)
        self.world = subprocess.Popen([*SERVICE, "--socket", str(self.socket), "--topology", str(self.topology),
                                       "--speed", str(self.speed)], stdout=subprocess.DEVNULL,
                                      stderr=open(self.base / "world.log", "ab"))
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            assert self.world.poll() is None and time.monotonic() < deadline, "the world service did not start"
            time.sleep(0.05)
        for name in self.names:
            port = self.kme_ports[name] = free_port()
            agent = AgentProcess("qkd", name, self.base / name,
                                 extra_args=("--world", f"unix:{self.socket}", "--kme-port", str(port)))
            self.agents[name] = agent
            agent.start()
            self.wait_kme(name)
        return self

    def wait_kme(self, name: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.kme_ports[name]):
            assert time.monotonic() < deadline, f"{name}'s KME did not listen\n{self.agents[name].log_text()}"
            time.sleep(0.05)

    def stop(self) -> None:
        for agent in self.agents.values():
            with contextlib.suppress(Exception):
                agent.stop()
        if self.world is not None and self.world.poll() is None:
            self.world.send_signal(signal.SIGTERM)
            try:
                self.world.wait(10)
            except subprocess.TimeoutExpired:
                self.world.kill()

    def kill(self, name: str) -> None:
        self.agents[name].kill()

    def restart(self, name: str) -> None:
        self.agents[name].start()
        self.wait_kme(name)

    # -- NETCONF -----------------------------------------------------------------------------

    def netconf(self, name: str):
        from ncclient import manager

        agent = self.agents[name]
        cred = agent.credentials
        return manager.connect(host="127.0.0.1", port=agent.port, username=cred["username"],
                               password=cred["password"], hostkey_verify=False, allow_agent=False,
                               look_for_keys=False, timeout=20)

    def edit(self, name: str, config: str) -> None:
        with self.netconf(name) as m:
            m.edit_config(target="running", config=f'<config xmlns="{NC}">{config}</config>')

    def get(self, name: str, subtree: str) -> Any:
        """A <get> of `subtree`, as an lxml element."""
        from lxml import etree

        with self.netconf(name) as m:
            return etree.fromstring(m.get(filter=("subtree", subtree)).data_xml.encode())

    def kme_id(self, name: str) -> str:
        if name not in self.ids:
            data = self.get(name, f'<service-stratum xmlns="{SS}"><kme><kme-id/></kme></service-stratum>')
            self.ids[name] = data.findtext(f".//{{{SS}}}kme-id")
        return self.ids[name]

    def configure(self, links: list[Link], saes: dict[str, str], pairs: list[Pair]) -> None:
        """Links, SAEs (SAE ID -> node), applications on both ends' KMEs, and each KME's route to
        every other KME along the chain of links (neighbours first)."""
        ids = {name: self.kme_id(name) for name in self.names}
        per_node: dict[str, list[str]] = {name: [] for name in self.names}
        for link in links:
            per_node[link.a].append(link_xml(link.qkdl_id, ids[link.a], link.a_iface, ids[link.b], link.b_iface,
                                             "TRANSMITTER"))
            per_node[link.b].append(link_xml(link.qkdl_id, ids[link.b], link.b_iface, ids[link.a], link.a_iface,
                                             "RECEIVER"))
        routes = chain_routes(links)
        for name in self.names:
            kme = [f"<kme-id>{ids[name]}</kme-id>",
                   "<saes>" + "".join(f"<sae><sae-id>{escape(s)}</sae-id><kme-id>{ids[n]}</kme-id></sae>"
                                      for s, n in saes.items()) + "</saes>"]
            table = "".join(f"<route><urn-prefix>urn:qkd:kme:{ids[dest]}</urn-prefix>"
                            f"<next-hop-kme>{ids[hop]}</next-hop-kme><qkd-link>{link}</qkd-link></route>"
                            for dest, (hop, link) in routes.get(name, {}).items())
            kme.append(f"<forwarding-table>{table}</forwarding-table>")
            apps = ""
            sessions = ""
            for pair in pairs:
                ends = {saes[pair.master], *(saes[s] for s in pair.slaves)}
                if name not in ends:
                    continue
                sessions += (f"<session><session-id>{pair.session}</session-id><rate>{pair.rate}</rate>"
                             f"<burst>{pair.burst}</burst></session>")
                apps += (f"<qkd_app><app_id>{pair.app_id}</app_id><server_app_id>{escape(pair.master)}</server_app_id>"
                         + "".join(f"<client_app_id>{escape(s)}</client_app_id>" for s in pair.slaves)
                         + f'<ss-session-id xmlns="{SS}">{pair.session}</ss-session-id></qkd_app>')
            kme.append(f"<sessions>{sessions}</sessions>")
            config = (f'<qkd_node xmlns="{QKD}" xmlns:t="{TYPES}"><qkdn_id>{ids[name]}</qkdn_id>'
                      f"<qkd_applications>{apps}</qkd_applications><qkd_links>{''.join(per_node[name])}</qkd_links>"
                      f'</qkd_node><service-stratum xmlns="{SS}"><kme>{"".join(kme)}</kme></service-stratum>')
            self.edit(name, config)

    # -- SAEs and curl -----------------------------------------------------------------------

    def sae(self, node: str, sae_id: str) -> tuple[Path, Path]:
        """`qstrata sae add` on the node's state dir: (certificate, key)."""
        state = self.agents[node].state_dir
        done = subprocess.run([str(QSTRATA), "sae", "add", sae_id, "--state-dir", str(state)], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return state / "sae" / f"{sae_id}.pem", state / "sae" / f"{sae_id}.key"

    def ca(self, node: str) -> Path:
        return self.agents[node].state_dir / "gnmi" / "ca.pem"

    def url(self, node: str) -> str:
        return f"https://127.0.0.1:{self.kme_ports[node]}"

    def curl(self, node: str, sae: tuple[Path, Path] | None, path: str, body: Any = None,
             raw: bytes | None = None, curl_json: bool = False, headers: tuple[str, ...] = ()) -> tuple[int, Any]:
        """(HTTP status, JSON answer) of curl against the node's KME as the SAE (None: no
        certificate: curl's exit code and no answer). A body is POSTed with a Content-Type
        header, or with curl's own `--json` when `curl_json` (as people type it)."""
        cmd = ["curl", "-sS", "--max-time", "30", "--cacert", str(self.ca(node)), "-o", "-", "-w", "\n%{http_code}"]
        if sae is not None:
            cmd += ["--cert", str(sae[0]), "--key", str(sae[1])]
        for header in headers:
            cmd += ["-H", header]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            cmd += ["--json", "@-"] if curl_json else ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        done = subprocess.run([*cmd, self.url(node) + path], input=data, capture_output=True, timeout=60)
        if done.returncode != 0:
            return -done.returncode, done.stderr.decode(errors="replace")
        text, _, status = done.stdout.decode().rpartition("\n")
        return int(status), json.loads(text) if text.strip() else None

    def wait_for_key(self, node: str, sae: tuple[Path, Path], slave: str, keys: int = 1000) -> None:
        """Until the node's KME says (status) it holds `keys` keys for the SAE's pair with `slave`."""
        deadline = time.monotonic() + 30
        while True:
            status, body = self.curl(node, sae, f"/api/v1/keys/{slave}/status")
            if status == 200 and body["stored_key_count"] >= keys:
                return
            assert time.monotonic() < deadline, f"no key for slave {slave} at {node}: {status} {body}"
            time.sleep(0.2)


def link_xml(link_id: str, local_id: str, local_iface: int, remote_id: str, remote_iface: int, role: str) -> str:
    return (f"<qkd_link><qkdl_id>{link_id}</qkdl_id><qkdl_enable>true</qkdl_enable>"
            f"<qkdl_local><qkdn_id>{local_id}</qkdn_id><qkdi_id>{local_iface}</qkdi_id></qkdl_local>"
            f"<qkdl_remote><qkdn_id>{remote_id}</qkdn_id><qkdi_id>{remote_iface}</qkdi_id></qkdl_remote>"
            f"<qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role}</phys_qkd_role></qkd_link>")


def chain_routes(links: list[Link]) -> dict[str, dict[str, tuple[str, str]]]:
    """node -> {destination node: (next hop node, link)} by breadth-first search over the links."""
    adjacent: dict[str, list[tuple[str, str]]] = {}
    for link in links:
        adjacent.setdefault(link.a, []).append((link.b, link.qkdl_id))
        adjacent.setdefault(link.b, []).append((link.a, link.qkdl_id))
    routes: dict[str, dict[str, tuple[str, str]]] = {}
    for source in adjacent:
        first: dict[str, tuple[str, str]] = {}
        frontier = [(n, (n, link)) for n, link in adjacent[source]]
        seen = {source}
        while frontier:
            nxt = []
            for node, hop in frontier:
                if node in seen:
                    continue
                seen.add(node)
                first[node] = hop
                nxt += [(n, hop) for n, _ in adjacent.get(node, [])]
            frontier = nxt
        routes[source] = first
    return routes
