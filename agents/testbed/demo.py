"""Walk-through of a running `qstrata up` network as an SDN controller would drive it.

Configuration with ncclient (NETCONF), telemetry with pygnmi (gNMI), nothing else: read
STATE_DIR/endpoints.json; cross-connect the switch onto the 25 km primary spool; create the
`qkd_link` on both QKD nodes and enable it; wait for ACTIVE; create a `qkd_app` with a KME
session and request a key service unit; watch the secret key rate over gNMI; re-route over the
50 km spare and show the rate drop. Best against `qstrata up --bare` (the built-in controller and
its scenario otherwise configure the same things first; the demo then re-applies them).

Runs in its own interpreter (`qstrata demo` re-executes `python -m qstrata.agents.testbed.demo`):
pygnmi ships its own copy of the gNMI protobufs, which cannot share a process with the agents'.
Needs ncclient and pygnmi (`pip install 'qstrata[demo]'`).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from qstrata.bindings.wire.argtypes import positive_float

QKD = "urn:etsi:qkd:yang:etsi-qkd-node"
TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
SS = "urn:qstrata:yang:qstrata-ss"
OPSW = "http://www.polatis.com/yang/optical-switch"
BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
LINK_ID = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"
PRIMARY, SPARE = ((1, 9), (2, 10)), ((1, 13), (2, 14))
"""The built-in network's switch ports: alice on 1, bob on 2; spool-25 on 9/10, spool-50 on 13/14."""


class DemoError(Exception):
    """A step failed; the message says which and why."""


def _agents(endpoints: Path) -> dict[str, dict[str, Any]]:
    from .endpoints import EndpointsFileError, load_endpoints

    try:
        doc = load_endpoints(endpoints)
    except EndpointsFileError as exc:
        raise DemoError(f"{exc}" + ("" if endpoints.exists() else " (is `qstrata up` running?)")) from None
    return {a["name"]: a for a in doc["agents"]}


def _login(agent: dict[str, Any]) -> tuple[str, str]:
    cred = json.loads(Path(agent["credentials"]).read_text(encoding="utf-8"))
    return cred["username"], cred["password"]


class Demo:
    def __init__(self, endpoints: Path, timeout: float) -> None:
        try:
            from ncclient import manager  # noqa: F401
            from pygnmi.client import gNMIclient  # noqa: F401
        except ImportError as exc:
            raise DemoError(f"needs ncclient and pygnmi ({exc.name} missing): pip install 'qstrata[demo]'") from None
        self.agents = _agents(endpoints)
        self.timeout = timeout
        qkd = [n for n, a in self.agents.items() if a.get("kind") == "qkd"]
        switches = [n for n, a in self.agents.items() if a.get("kind") == "switch"]
        if len(qkd) < 2 or not switches:
            raise DemoError("the network needs two QKD nodes and a switch (the built-in one has alice, bob, sw1)")
        self.alice, self.bob, self.switch = qkd[0], qkd[1], switches[0]
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        print(f"[{self.step}] {text}", flush=True)

    # ------------------------------------------------------------------ NETCONF (ncclient)

    def netconf(self, name: str):
        from ncclient import manager

        a = self.agents[name]
        user, password = _login(a)
        return manager.connect(host=a["netconf"]["host"], port=a["netconf"]["port"], username=user,
                               password=password, hostkey_verify=False, allow_agent=False, look_for_keys=False,
                               timeout=30)

    def edit(self, name: str, config: str) -> None:
        with self.netconf(name) as m:
            m.edit_config(target="running", config=f'<config xmlns="{BASE}">{config}</config>')

    def leaf(self, name: str, subtree: str, path: str) -> str:
        from lxml import etree

        with self.netconf(name) as m:
            data = etree.fromstring(m.get(filter=("subtree", subtree)).data_xml.encode())
        value = data.findtext(path, namespaces={"q": QKD, "ss": SS})
        if not value:
            raise DemoError(f"{name} reports nothing at {path}")
        return value.strip()

    # ------------------------------------------------------------------ gNMI (pygnmi)

    def gnmi(self, name: str):
        from pygnmi.client import gNMIclient

        a = self.agents[name]
        if not a.get("gnmi"):
            raise DemoError(f"{name} serves no gNMI (see endpoints.json)")
        user, password = _login(a)
        g = a["gnmi"]
        return gNMIclient(target=(g["host"], g["port"]), username=user, password=password, path_root=g.get("ca"),
                          insecure=g.get("ca") is None, gnmi_timeout=int(self.timeout))

    def link_state(self, gc) -> tuple[str, int, float]:
        """(status, skr, qber) of the demo's link on alice, by a gNMI Get."""
        base = f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id={LINK_ID}]"
        reply = gc.get(path=[f"{base}/qkdl_status", f"{base}/qkdl_performance"], target=self.alice,
                       encoding="json_ietf")
        found: dict[str, Any] = {}
        for note in reply.get("notification", []):
            for u in note.get("update", []):
                val = u["val"]
                if isinstance(val, dict):  # the qkdl_performance container, as JSON-IETF
                    perf = {k.rsplit(":", 1)[-1]: v for k, v in val.items()}
                    found["skr"] = perf.get("skr")
                    for entry in perf.get("phys_perf", []):
                        if str(entry.get("perf_type", "")).endswith("QBER"):
                            found["value"] = entry.get("value")
                else:
                    found[u["path"].rsplit("/", 1)[-1]] = val
        status = str(found.get("qkdl_status", "-")).rsplit(":", 1)[-1]
        return status, int(found.get("skr") or 0), float(found.get("value") or 0)

    def wait_active(self, gc, label: str) -> tuple[int, float]:
        deadline = time.monotonic() + self.timeout
        last = None
        while time.monotonic() < deadline:
            status, skr, qber = self.link_state(gc)
            if status != last:
                print(f"    {label}: qkdl_status {status}", flush=True)
                last = status
            if status == "ACTIVE" and skr > 0:
                return skr, qber
            time.sleep(0.5)
        raise DemoError(f"the link did not become ACTIVE within {self.timeout:g} s (last: {last})")

    def watch(self, gc, seconds: float) -> list[int]:
        """Stream the key rate for a while (gNMI Subscribe, STREAM/SAMPLE every second)."""
        path = f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id={LINK_ID}]/qkdl_performance/skr"
        request = {"subscription": [{"path": path, "mode": "sample", "sample_interval": 1_000_000_000}],
                   "mode": "stream", "encoding": "json_ietf"}
        rates: list[int] = []
        end = time.monotonic() + seconds
        stream = gc.subscribe_stream(subscribe=request, target=self.alice)
        try:
            while time.monotonic() < end:
                message = stream.get_update(timeout=self.timeout)
                for u in (message.get("update") or {}).get("update", []):
                    rates.append(int(u["val"]))
                    print(f"    skr {rates[-1] / 1e6:.3f} Mb/s", flush=True)
        finally:
            stream.close()
        return rates

    # ------------------------------------------------------------------ the walk-through

    def configured(self, name: str) -> bool:
        """Whether the demo's link is already in `name`'s running configuration."""
        with self.netconf(name) as m:
            reply = m.get_config("running", filter=("subtree", f'<qkd_node xmlns="{QKD}"><qkd_links><qkd_link>'
                                                               f"<qkdl_id>{LINK_ID}</qkdl_id></qkd_link></qkd_links>"
                                                               "</qkd_node>")).data_xml
        return LINK_ID in reply

    def route(self, switch: str) -> tuple[tuple[int, int], ...]:
        """The (ingress, egress) pairs of the QKD ends' switch ports, as running has them."""
        from lxml import etree

        with self.netconf(switch) as m:
            data = etree.fromstring(m.get_config("running", filter=("subtree", f'<cross-connects xmlns="{OPSW}"/>'))
                                    .data_xml.encode())
        pairs = {int(p.findtext(f"{{{OPSW}}}ingress")): int(p.findtext(f"{{{OPSW}}}egress"))
                 for p in data.iter(f"{{{OPSW}}}pair")}
        return tuple((i, pairs[i]) for i, _ in PRIMARY if i in pairs)

    def cross_connect(self, switch: str, pairs: tuple[tuple[int, int], ...]) -> None:
        body = "".join(f"<pair><ingress>{i}</ingress><egress>{e}</egress></pair>" for i, e in pairs)
        self.edit(switch, f'<cross-connects xmlns="{OPSW}">{body}</cross-connects>')

    def wait_change(self, gc, before: int) -> None:
        """Until the link shows the re-route (it leaves ACTIVE, or its rate moves by more than
        the sampling noise): a Get right after the edit still sees the old path."""
        deadline = time.monotonic() + min(self.timeout, 15.0)
        while time.monotonic() < deadline:
            status, skr, _ = self.link_state(gc)
            if status != "ACTIVE" or abs(skr - before) > 0.1 * before:
                return
            time.sleep(0.25)

    def run(self) -> None:
        a, b, sw = self.alice, self.bob, self.switch
        ids = {n: self.leaf(n, f'<qkd_node xmlns="{QKD}"><qkdn_id/></qkd_node>', "q:qkd_node/q:qkdn_id")
               for n in (a, b)}
        if self.configured(a):
            self.say(f"the network is configured already (by `qstrata up`'s built-in controller, or restored from an "
                     f"earlier run's state directory; `qstrata up --bare` on a new --state-dir starts it unconfigured):"
                     f" the demo uses qkd_link {LINK_ID[:8]} as it is, and its closed loop keeps running")
        else:
            self.cross_connect(sw, PRIMARY)
            self.say(f"{sw}: cross-connects {', '.join(f'{i}<->{e}' for i, e in PRIMARY)} (the 25 km primary spool)")
            for local, remote, role in ((a, b, "TRANSMITTER"), (b, a, "RECEIVER")):
                self.edit(local, f'<qkd_node xmlns="{QKD}" xmlns:t="{TYPES}"><qkd_links><qkd_link>'
                                 f"<qkdl_id>{LINK_ID}</qkdl_id><qkdl_enable>true</qkdl_enable>"
                                 f"<qkdl_local><qkdn_id>{ids[local]}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_local>"
                                 f"<qkdl_remote><qkdn_id>{ids[remote]}</qkdn_id><qkdi_id>1</qkdi_id></qkdl_remote>"
                                 f"<qkdl_type>t:PHYS</qkdl_type><phys_qkd_role>t:{role}</phys_qkd_role>"
                                 "</qkd_link></qkd_links></qkd_node>")
            self.say(f"qkd_link {LINK_ID[:8]} created and enabled on {a} (TRANSMITTER) and {b} (RECEIVER)")
        with self.gnmi(a) as gc:
            skr, qber = self.wait_active(gc, a)
            self.say(f"link ACTIVE: skr {skr / 1e6:.3f} Mb/s, QBER {qber * 100:.2f}% (gNMI Get)")
            self.service(a, b, ids)
            self.say("secret key rate, streamed over gNMI (SAMPLE, 1 s):")
            before = max([r for r in self.watch(gc, 4) if r > 0] or [skr])
            to_spare = self.route(sw) != SPARE
            self.cross_connect(sw, SPARE if to_spare else PRIMARY)
            self.say(f"{sw}: re-routed " + (f"over the 50 km spare ({', '.join(f'{i}<->{e}' for i, e in SPARE)})"
                                            if to_spare else
                                            "back onto the 25 km primary (it was on the spare; "
                                            f"{', '.join(f'{i}<->{e}' for i, e in PRIMARY)})"))
            self.wait_change(gc, before)
            after, qber = self.wait_active(gc, a)
            self.watch(gc, 3)
        change = (1 - after / before) * 100 if before else 0.0
        why = "25 km more fibre, 5 dB more loss" if to_spare else "25 km less fibre"
        if qber > 0.03:
            why += f", but a QBER of {qber * 100:.1f}%"
        self.say(f"key rate {before / 1e6:.3f} -> {after / 1e6:.3f} Mb/s ({abs(change):.0f}% "
                 f"{'lower' if change >= 0 else 'higher'}: {why}); QBER {qber * 100:.2f}%")
        if not to_spare and qber > 0.04:
            self.say("the QBER is high on the primary (another tenant's channel is lit on it): the collector's "
                     "qber-high alarm will move the link onto the spare again (see the status table)")

    def service(self, a: str, b: str, ids: dict[str, str]) -> None:
        """A qkd_app backed by the link, its KME session and route, and one KEY service unit."""
        bob_kme = self.leaf(b, f'<service-stratum xmlns="{SS}"><kme><kme-id/></kme></service-stratum>',
                            "ss:service-stratum/ss:kme/ss:kme-id")
        app, session, unit = (str(uuid.uuid4()) for _ in range(3))
        valid_until = int(time.time()) + 600
        self.edit(a, f'<qkd_node xmlns="{QKD}"><qkd_applications><qkd_app><app_id>{app}</app_id>'
                     f"<backing_qkdl_id>{LINK_ID}</backing_qkdl_id>"
                     f'<ss-session-id xmlns="{SS}">{session}</ss-session-id></qkd_app></qkd_applications></qkd_node>'
                     f'<service-stratum xmlns="{SS}" xmlns:ss="{SS}"><kme>'
                     f"<forwarding-table><route><urn-prefix>urn:qkd:{b}:</urn-prefix>"
                     f"<next-hop-kme>{bob_kme}</next-hop-kme><qkd-link>{LINK_ID}</qkd-link></route></forwarding-table>"
                     f"<sessions><session><session-id>{session}</session-id><rate>1000</rate><burst>512</burst>"
                     "</session></sessions></kme>"
                     f"<service-units><service-unit><unit-id>{unit}</unit-id>"
                     f"<source-urn>urn:qkd:{a}:vpn?=nonce=1</source-urn>"
                     f"<destination-urn>urn:qkd:{b}:vpn?=nonce=1</destination-urn><kind>ss:KEY</kind>"
                     f"<lifecycle-urn>urn:qkd:lifecycle?=size=256&amp;valid-until={valid_until}</lifecycle-urn>"
                     f"<originator>{app}</originator></service-unit></service-units></service-stratum>")
        self.say(f"qkd_app {app[:8]} on {a} (KME session 1000 b/s towards {b}) and KEY service unit {unit[:8]}")
        time.sleep(1)
        state = self.leaf(a, f'<service-stratum xmlns="{SS}"><service-units><service-unit><unit-id>{unit}</unit-id>'
                             "</service-unit></service-units></service-stratum>",
                          "ss:service-stratum/ss:service-units/ss:service-unit/ss:state")
        self.say(f"service unit {unit[:8]}: {state.rsplit(':', 1)[-1]}")


def _quiet_cancelled(args: threading.ExceptHookArgs) -> None:
    """pygnmi's stream thread re-raises the CANCELLED that closing a subscription causes: that is
    the normal end of a stream, not an error worth a traceback."""
    if "StatusCode.CANCELLED" in str(args.exc_value):
        return
    threading.__excepthook__(args)


def run_demo(endpoints: Path, timeout: float = 120.0) -> None:
    """The whole walk-through; raises `DemoError` with a one-line reason."""
    threading.excepthook = _quiet_cancelled
    demo = Demo(endpoints, timeout)
    try:
        demo.run()
    except DemoError:
        raise
    except Exception as exc:  # a client library's error: one line, not a traceback
        raise DemoError(f"step {demo.step + 1} failed: {type(exc).__name__}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="qstrata demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--state-dir", default="state/up")
    p.add_argument("--endpoints")
    p.add_argument("--timeout", type=positive_float, default=120.0)
    args = p.parse_args(argv)
    endpoints = Path(args.endpoints) if args.endpoints else Path(args.state_dir) / "endpoints.json"
    try:
        run_demo(endpoints, args.timeout)
    except DemoError as exc:
        print(f"qstrata demo: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
