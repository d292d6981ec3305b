"""`qstrata conform --endpoints FILE --agent NAME`: where one agent of a running network listens
and how to log in, from the endpoints.json `qstrata up` writes (STATE_DIR/endpoints.json).

The file already says everything a client needs (NETCONF and gNMI addresses, credentials.json, the
CA its gNMI server's certificate is signed by, the gNMI target name, the agent's kind, and for a
QKD agent its KME: URL, CA and the folder of its SAEs' certificates), so a user need not copy five
values by hand, and cannot pair one agent's address with another's target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qstrata.agents.testbed.endpoints import EndpointsFileError, load_endpoints

PROFILE_OF_KIND = {"qkd": "etsi-qkd-015", "memory": "qfs", "switch": "optical-switch"}
"""The conformance profile of each kind of qstrata agent."""


class EndpointsError(Exception):
    """The file cannot be read or does not name the agent; the message says which, in one line."""


@dataclass(frozen=True)
class KmeTarget:
    """A QKD agent's ETSI GS QKD 014 key delivery API."""

    url: str
    ca: str
    sae_dir: str

    def sae(self, sae_id: str) -> tuple[str, str] | None:
        """The certificate and key `qstrata sae add` wrote for `sae_id`, if there are."""
        cert, key = Path(self.sae_dir) / f"{sae_id}.pem", Path(self.sae_dir) / f"{sae_id}.key"
        return (str(cert), str(key)) if cert.is_file() and key.is_file() else None

    def saes(self) -> list[str]:
        folder = Path(self.sae_dir)
        return sorted(p.stem for p in folder.glob("*.pem") if p.with_suffix(".key").is_file()) if folder.is_dir() else []


@dataclass(frozen=True)
class AgentTarget:
    name: str
    kind: str
    netconf: tuple[str, int] | None
    gnmi: tuple[str, int] | None
    credentials: str | None
    ca: str | None
    """The CA to trust for gNMI; None with `gnmi` set means plain text."""
    target: str
    """gNMI prefix.target: the agent's name behind a port that serves several."""
    kme: KmeTarget | None = None
    restconf: str | None = None
    """The RESTCONF base URL (https://HOST:PORT)."""
    restconf_ca: str | None = None
    """The CA the RESTCONF server's certificate chains to: the agent's own, which is not the
    gNMI `ca` when several agents share one gNMI gateway."""

    @property
    def profile(self) -> str | None:
        return PROFILE_OF_KIND.get(self.kind)


def _agents(path: str | Path) -> list[dict]:
    """The agents of an endpoints.json, read and checked as every command reads one (`load_endpoints`)."""
    try:
        return load_endpoints(Path(path))["agents"]
    except EndpointsFileError as exc:
        hint = "" if Path(path).exists() else (" (it is written by `qstrata up` once its network serves; is one "
                                               "running with that --state-dir?)")
        raise EndpointsError(f"{exc}{hint}") from None


def _kme(entry: dict) -> KmeTarget | None:
    kme = entry.get("kme")
    return KmeTarget(str(kme["url"]), str(kme["ca"]), str(kme["sae_dir"])) if isinstance(kme, dict) else None


def _restconf(entry: dict) -> tuple[str | None, str | None]:
    """(URL, CA) of the entry's RESTCONF server; the entry is a URL or ``{"url", "ca"}``."""
    rc = entry.get("restconf")
    url = rc.get("url") if isinstance(rc, dict) else rc
    ca = rc.get("ca") if isinstance(rc, dict) else None
    return (str(url) if url else None), (str(ca) if ca else None)


def kme_of_sae(path: str | Path, sae_id: str) -> KmeTarget | None:
    """The KME of the network whose SAE folder holds `sae_id`'s certificate (where it is attached:
    `qstrata sae add` issues it from that agent's CA)."""
    for entry in _agents(path):
        try:
            kme = _kme(entry)
        except (KeyError, TypeError):
            continue
        if kme is not None and kme.sae(sae_id):
            return kme
    return None


def agent_target(path: str | Path, name: str | None) -> AgentTarget:
    """The agent `name` of the endpoints file at `path` (its only agent when `name` is None)."""
    agents = _agents(path)
    names = [str(a["name"]) for a in agents]
    if name is None:
        if len(agents) != 1:
            raise EndpointsError(f"{path} lists {len(names)} agents: pick one with --agent NAME "
                                 f"({', '.join(names) or 'none'})")
        name = names[0]
    entry = next((a for a in agents if a["name"] == name), None)
    if entry is None:
        raise EndpointsError(f"no agent {name!r} in {path}; known: {', '.join(names)}")
    try:
        netconf = entry.get("netconf")
        gnmi = entry.get("gnmi")
        restconf, restconf_ca = _restconf(entry)
        return AgentTarget(
            name=name, kind=str(entry.get("kind") or ""),
            netconf=(str(netconf["host"]), int(netconf["port"])) if netconf else None,
            gnmi=(str(gnmi["host"]), int(gnmi["port"])) if gnmi else None,
            credentials=entry.get("credentials") or None,
            ca=(gnmi.get("ca") or None) if gnmi else None,
            target=str((gnmi or {}).get("target") or ""), kme=_kme(entry), restconf=restconf,
            restconf_ca=restconf_ca)
    except (KeyError, TypeError, ValueError) as exc:
        raise EndpointsError(f"{path}: agent {name!r}: bad or missing {exc}") from None
