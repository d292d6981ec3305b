"""An ETSI GS QKD 014 application on a running `qstrata up`, set up as the README tells a user to:
SAE certificates from `qstrata sae add`, the SAEs, a token-bucket session, the qkd_app and the
route between the two KMEs configured over NETCONF (ncclient) on both nodes, then a client that
fetches keys at a steady pace with the SAEs' certificates (the master's enc_keys, the slave's
dec_keys of the same key_IDs) until stopped."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
SS = "urn:qstrata:yang:qstrata-ss"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
QSTRATA = Path(sys.executable).with_name("qstrata")


def _agent(endpoints: dict, name: str) -> dict:
    return next(a for a in endpoints["agents"] if a["name"] == name)


def _netconf(endpoints: dict, name: str):
    from ncclient import manager

    agent = _agent(endpoints, name)
    cred = json.loads(Path(agent["credentials"]).read_text())
    return manager.connect(host=agent["netconf"]["host"], port=agent["netconf"]["port"], username=cred["username"],
                           password=cred["password"], hostkey_verify=False, allow_agent=False, look_for_keys=False,
                           timeout=20)


def kme_id(endpoints: dict, name: str) -> str:
    from lxml import etree

    with _netconf(endpoints, name) as m:
        data = etree.fromstring(m.get(filter=("subtree", f'<service-stratum xmlns="{SS}"><kme><kme-id/></kme>'
                                                         "</service-stratum>")).data_xml.encode())
    return data.findtext(f".//{{{SS}}}kme-id")


def add_application(endpoints: dict, link: str, master: tuple[str, str], slave: tuple[str, str], app_id: str,
                    session: str, rate: int = 10_000_000, burst: int = 1_000_000) -> None:
    """An application from SAE `master` = (node, SAE ID) to `slave` over the QKD `link` between
    their nodes, on both KMEs; the SAEs' certificates issued."""
    ids = {node: kme_id(endpoints, node) for node in (master[0], slave[0])}
    for node, sae in (master, slave):
        done = subprocess.run([str(QSTRATA), "sae", "add", sae, "--state-dir", _agent(endpoints, node)["state_dir"]],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 or "already" in done.stderr, done.stderr
    for node, other in ((master[0], slave[0]), (slave[0], master[0])):
        config = (f'<config xmlns="{NC}"><qkd_node xmlns="{QKD}"><qkd_applications><qkd_app><app_id>{app_id}</app_id>'
                  f"<server_app_id>{escape(master[1])}</server_app_id><client_app_id>{escape(slave[1])}</client_app_id>"
                  f'<ss-session-id xmlns="{SS}">{session}</ss-session-id></qkd_app></qkd_applications></qkd_node>'
                  f'<service-stratum xmlns="{SS}"><kme><saes>'
                  + "".join(f"<sae><sae-id>{escape(s)}</sae-id><kme-id>{ids[n]}</kme-id></sae>" for n, s in (master, slave))
                  + f"</saes><forwarding-table><route><urn-prefix>urn:qkd:kme:{ids[other]}</urn-prefix>"
                  f"<next-hop-kme>{ids[other]}</next-hop-kme><qkd-link>{link}</qkd-link></route></forwarding-table>"
                  f"<sessions><session><session-id>{session}</session-id><rate>{rate}</rate><burst>{burst}</burst>"
                  "</session></sessions></kme></service-stratum></config>")
        with _netconf(endpoints, node) as m:
            m.edit_config(target="running", config=config)


class Sae:
    """HTTPS to the SAE's KME with its certificate, one kept-alive connection."""

    def __init__(self, endpoints: dict, node: str, sae: str) -> None:
        agent = _agent(endpoints, node)
        folder = Path(agent["state_dir"]) / "sae"
        context = ssl.create_default_context(cafile=agent["kme"]["ca"])
        context.load_cert_chain(folder / f"{sae}.pem", folder / f"{sae}.key")
        port = int(agent["kme"]["url"].rsplit(":", 1)[1])
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        reply = self.conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null")

    def close(self) -> None:
        self.conn.close()


class Fetcher(threading.Thread):
    """Fetches `number` keys of 256 bits every `period` seconds as the master, and the same keys as
    the slave, until `stop()`. Counts what it got and the refusals."""

    def __init__(self, endpoints: dict, master: tuple[str, str], slave: tuple[str, str], number: int = 8,
                 period: float = 0.2) -> None:
        super().__init__(daemon=True, name="key fetcher")
        self.endpoints, self.master, self.slave = endpoints, master, slave
        self.number, self.period = number, period
        self.stopping = threading.Event()
        self.keys = 0
        self.refused: list[str] = []

    def run(self) -> None:
        master, slave = Sae(self.endpoints, *self.master), Sae(self.endpoints, *self.slave)
        try:
            while not self.stopping.wait(self.period):
                status, body = master.post(f"/api/v1/keys/{self.slave[1]}/enc_keys", {"number": self.number, "size": 256})
                if status != 200:
                    self.refused.append(body["message"])
                    continue
                ids = [{"key_ID": k["key_ID"]} for k in body["keys"]]
                status, body = slave.post(f"/api/v1/keys/{self.master[1]}/dec_keys", {"key_IDs": ids})
                if status == 200:
                    self.keys += len(body["keys"])
                else:
                    self.refused.append(body["message"])
        finally:
            master.close()
            slave.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)
