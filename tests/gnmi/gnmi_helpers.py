"""Fixtures' building blocks for the gNMI suites: a process hosting twins' agents with NETCONF and
gNMI (tests/gnmi/agents_process.py), a raw gNMI client (gnmi-pb stubs), pygnmi in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from polling import wait_until  # noqa: F401 (re-exported: the gNMI tests wait with it)
from qstrata.bindings.paths import gnmi_string_to_path

HERE = Path(__file__).parent
HOST = "127.0.0.1"
QKD = "etsi-qkd-sdn-node:qkd_node"
TYPES = "etsi-qkd-node-types"


class World:
    """A `agents_process.py` subprocess: agents named `names`, one world, ports in `ports`."""

    def __init__(self, state: Path, names: list[str], *, speed: float = 20.0, extra: dict | None = None) -> None:
        self.state = state
        self.proc = subprocess.Popen([sys.executable, str(HERE / "agents_process.py"), str(state), str(speed),
                                      json.dumps(extra or {}), *names],
                                     stdout=subprocess.PIPE, stderr=open(state / "agents.log", "wb"), text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("agents did not start:\n" + (state / "agents.log").read_text())
        self.ports: dict = json.loads(line)

    def creds(self, name: str) -> dict:
        return json.loads((Path(self.ports[name]["state_dir"]) / "credentials.json").read_text())

    def metadata(self, name: str, user: str | None = None, password: str | None = None) -> list:
        c = self.creds(name)
        return [("username", user or c["username"]), ("password", password if password is not None else c["password"])]

    def channel(self, name: str) -> grpc.Channel:
        ca = Path(self.creds(name)["ca"]).read_bytes()
        return grpc.secure_channel(f"{HOST}:{self.ports[name]['gnmi']}", grpc.ssl_channel_credentials(ca))

    def stub(self, name: str) -> gnmi_pb2_grpc.gNMIStub:
        return gnmi_pb2_grpc.gNMIStub(self.channel(name))

    def pygnmi(self, name: str, ops: list[dict], timeout: float = 60) -> list:
        return json.loads(self.pygnmi_start(name, ops).communicate(timeout=timeout)[0])

    def pygnmi_start(self, name: str, ops: list[dict]) -> subprocess.Popen:
        c = self.creds(name)
        spec = {"host": HOST, "port": self.ports[name]["gnmi"], "ca": c["ca"], "username": c["username"],
                "password": c["password"], "ops": ops}
        return subprocess.Popen([sys.executable, str(HERE / "pygnmi_runner.py"), json.dumps(spec)],
                                stdout=subprocess.PIPE, text=True)

    def netconf(self, name: str):
        from ncclient import manager
        c = self.creds(name)
        return manager.connect(host=HOST, port=self.ports[name]["netconf"], username=c["username"],
                               password=c["password"], hostkey_verify=False, allow_agent=False, look_for_keys=False,
                               timeout=20)

    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def path(text: str, origin: str = "") -> gnmi_pb2.Path:
    p = gnmi_string_to_path(text if text.startswith("/") else "/" + text)
    p.origin = origin
    return p


def get_value(stub, md, text: str, encoding: int = 4, **kw):
    """The single value at a path (JSON decoded for JSON encodings)."""
    resp = stub.Get(gnmi_pb2.GetRequest(path=[path(text)], encoding=encoding, **kw), metadata=md, timeout=10)
    upd = resp.notification[0].update[0]
    kind = upd.val.WhichOneof("value")
    value = getattr(upd.val, kind)
    return json.loads(value) if kind in ("json_ietf_val", "json_val") else value


def subscribe_list(*subs: gnmi_pb2.Subscription, mode: int = 0, encoding: int = 2, **kw) -> gnmi_pb2.SubscribeRequest:
    return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(subscription=list(subs), mode=mode,
                                                                         encoding=encoding, **kw))


def leaf_values(response: gnmi_pb2.SubscribeResponse) -> dict[str, object]:
    from qstrata.bindings.paths import gnmi_to_xpath
    out = {}
    for u in response.update.update:
        kind = u.val.WhichOneof("value")
        out[gnmi_to_xpath(u.path)] = getattr(u.val, kind) if kind else None
    return out


def link_config(link_id: str, local_id: str, remote_id: str, role: str, enable: bool = True) -> str:
    return f"""<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><qkd_node xmlns="urn:etsi:qkd:yang:etsi-qkd-node"
        xmlns:t="urn:etsi:qkd:yang:etsi-qkd-node-types"><qkd_links><qkd_link><qkdl_id>{link_id}</qkdl_id>
        <qkdl_enable>{str(enable).lower()}</qkdl_enable>
        <qkdl_local><qkdn_id>{local_id}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_local>
        <qkdl_remote><qkdn_id>{remote_id}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_remote>
        <qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role}</phys_qkd_role>
        </qkd_link></qkd_links></qkd_node></config>"""
