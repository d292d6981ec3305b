"""STATE_DIR/endpoints.json: where every agent of a running network listens, and how to log in.

Written once everything listens (atomically: a reader never sees half a file), read by
`qstrata collect --targets`, `scripts/demo_controller.py` and tests. Shape::

    {"network": NAME, "topology": FILE, "state_dir": DIR, "pid": PID,
     "agents": [{"name", "kind", "state_dir", "credentials",
                 "netconf": {"host", "port"}, "gnmi": {"host", "port", "target", "ca"} | null,
                 "kme": {"url", "ca", "sae_dir"} | null, "restconf": {"url", "ca"} | null}],
     "collector": {"prometheus": URL | null, "store": PATH | null, "gnmi": {"host", "port"} | null,
                   "dashboard": URL | null} | null}

`gnmi.target` is the name to put in a gNMI request's `prefix.target` (agents sharing one gateway
port are told apart by it); `gnmi.ca` the CA to trust, null for plaintext. `kme` is a QKD agent's ETSI GS QKD 014 key delivery
API: its base URL (`{url}/api/v1/keys/...`), the CA that signs its server certificate and its SAEs'
client certificates, and where `qstrata sae add` writes those (`sae_dir`). `restconf` is the
agent's RESTCONF (RFC 8040) server: its base URL (`{url}/restconf/data/...`, HTTP Basic with the
agent's credentials) and the CA that signs its certificate.

Paths: `qstrata up` writes every path absolute. A relative path (a file written by hand) is
relative to the folder of endpoints.json, as in the collector's YAML; `read_endpoints` returns
them resolved that way.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ENDPOINTS_FILE = "endpoints.json"


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int


@dataclass(frozen=True)
class GnmiEndpoint:
    host: str
    port: int
    target: str
    ca: str | None = None


@dataclass(frozen=True)
class KmeEndpoint:
    url: str
    ca: str
    sae_dir: str


@dataclass(frozen=True)
class RestconfEndpoint:
    url: str
    ca: str


@dataclass(frozen=True)
class AgentEndpoint:
    name: str
    kind: str
    state_dir: str
    credentials: str
    netconf: HostPort
    gnmi: GnmiEndpoint | None = None
    kme: KmeEndpoint | None = None
    restconf: RestconfEndpoint | None = None


@dataclass(frozen=True)
class CollectorEndpoint:
    prometheus: str | None
    store: str | None
    gnmi: HostPort | None = None
    dashboard: str | None = None
    """The web dashboard's URL."""


def write_endpoints(state_dir: Path, network: str, topology: Path, agents: list[AgentEndpoint],
                    collector: CollectorEndpoint | None) -> Path:
    """Replace STATE_DIR/endpoints.json atomically; return its path."""
    doc: dict[str, Any] = {
        "network": network, "topology": str(topology), "state_dir": str(state_dir), "pid": os.getpid(),
        "agents": [asdict(a) for a in agents],
        "collector": asdict(collector) if collector is not None else None,
    }
    path = state_dir / ENDPOINTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_endpoints(path: Path) -> dict[str, Any]:
    """The document as plain dicts (it is also read by scripts that do not import us), with every
    path made absolute against the file's folder."""
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    base = path.parent

    def absolute(value: Any) -> Any:
        return str(base / value) if isinstance(value, str) and value and not Path(value).is_absolute() else value

    if isinstance(doc, dict):
        doc["topology"] = absolute(doc.get("topology"))
        doc["state_dir"] = absolute(doc.get("state_dir"))
        for agent in doc.get("agents") or []:
            if isinstance(agent, dict):
                for key in ("state_dir", "credentials"):
                    agent[key] = absolute(agent.get(key))
                if isinstance(agent.get("gnmi"), dict):
                    agent["gnmi"]["ca"] = absolute(agent["gnmi"].get("ca"))
                if isinstance(agent.get("kme"), dict):
                    for key in ("ca", "sae_dir"):
                        agent["kme"][key] = absolute(agent["kme"].get(key))
                if isinstance(agent.get("restconf"), dict):
                    agent["restconf"]["ca"] = absolute(agent["restconf"].get("ca"))
        if isinstance(doc.get("collector"), dict):
            doc["collector"]["store"] = absolute(doc["collector"].get("store"))
    return doc


class EndpointsFileError(ValueError):
    """The file is missing, unreadable or not an endpoints.json of `qstrata up`; the message says
    which, in one line."""


def load_endpoints(path: Path) -> dict[str, Any]:
    """`read_endpoints`, checked: every command that takes ``--endpoints FILE`` (keys, demo) gets
    the same one-line error for a file that is not one, instead of a KeyError deep inside."""
    try:
        doc = read_endpoints(path)
    except FileNotFoundError:
        raise EndpointsFileError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise EndpointsFileError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("agents"), list) or not all(
            isinstance(a, dict) and isinstance(a.get("name"), str) and (
                a.get("kme") is None or isinstance(a["kme"], dict) and all(
                    isinstance(a["kme"].get(k), str) for k in ("url", "ca", "sae_dir"))) for a in doc["agents"]):
        raise EndpointsFileError(f"{path} is not an endpoints.json of qstrata up (agents[] with name and kme "
                                 "{url, ca, sae_dir})")
    return doc
