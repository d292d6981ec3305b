"""The collector's configuration file: targets, alarm rules, actions, store retention.

YAML (see collectors/README.md for the format), or a testbed's ``endpoints.json`` (a list of
agents with name, kind, NETCONF/gNMI host and port, credentials file). Every problem is reported
as ``FILE: YAML.PATH: what is wrong`` (`ConfigError.issues`), all of them at once, so an
operator fixes the file in one go; nothing is half-applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from qstrata.bindings.checking import ShapeChecker, kind_of
from qstrata.bindings.generated import qstrata_telemetry as qtel
from qstrata.bindings.leafinfo import leaf_info
from qstrata.bindings.spelling import unknown

from .actions import BUILTIN as ACTION_KINDS
from .actions import ActionConfig, placeholders
from .processors.alarms import DEFAULT_CLEAR_READINGS, Rule, ThresholdRule, UnreachableRule, severity_identity
from .store import Retention
from .timefmt import parse_duration

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
"""qstrata-telemetry agent-name."""
KINDS = ("qkd", "memory", "switch")
MODES = ("sample", "on-change", "target-defined")
DEFAULT_SAMPLE_INTERVAL = 10.0

DEFAULT_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "qkd": ("/etsi-qkd-sdn-node:qkd_node", "/qstrata-ss:service-stratum"),
    "memory": ("/qstrata-qfs:qfs-node", "/qstrata-ss:service-stratum/entanglement-requests"),
    "switch": ("/optical-switch:opm-power", "/optical-switch:cross-connects"),
}
"""What a target of a kind is subscribed to when its entry lists no subscriptions."""


class ConfigError(Exception):
    """The file is unusable; `issues` are one-line ``FILE: PATH: message`` strings."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__(issues[0] if len(issues) == 1 else f"{issues[0]} (and {len(issues) - 1} more)")
        self.issues = issues


@dataclass(frozen=True)
class Subscription:
    paths: tuple[str, ...]
    mode: str = "sample"
    sample_interval: float = DEFAULT_SAMPLE_INTERVAL
    """Seconds (sample mode)."""


@dataclass(frozen=True)
class TargetConfig:
    """One agent to collect from. `address`/`port` are its gNMI endpoint; `netconf` its NETCONF one
    (for actions, and for a future NETCONF input)."""

    name: str
    address: str | None
    port: int | None
    kind: str | None = None
    protocol: str = "gnmi"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    credentials_file: Path | None = None
    tls_ca: Path | None = None
    insecure: bool | None = None
    """True: plaintext gRPC. False: TLS (tls-ca, the credentials file's "ca", else the system's
    roots). None (not said): TLS when tls-ca or the credentials file names a CA, else plaintext."""
    gnmi_target: str | None = None
    """`prefix.target` of the requests (agents behind one gateway port); None: `name`."""
    subscriptions: tuple[Subscription, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    netconf: tuple[str, int] | None = None
    enabled: bool = True

    def credentials(self) -> tuple[str | None, str | None]:
        """(username, password): given inline, or read from the credentials file now (agents
        rotate it; the file is the truth)."""
        if self.credentials_file is not None:
            return read_credentials(self.credentials_file)
        return self.username, self.password


@dataclass(frozen=True)
class CollectorConfig:
    source: Path | None
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    actions: tuple[ActionConfig, ...] = ()
    retention: Retention = field(default_factory=Retention)
    files: tuple[Path, ...] = ()
    """Every file read (the watcher re-reads when one changes)."""

    @property
    def rule_actions(self) -> dict[str, tuple[str, ...]]:
        return {r.name: r.actions for r in self.rules}


def read_credentials(path: Path | str) -> tuple[str, str]:
    """An agent's ``credentials.json`` (``{"username": ..., "password": ...}``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["username"], data.get("password")


# ---------------------------------------------------------------------- reading


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. (YAML 1.1 reads the key ``on:`` -- used by actions --
    and values like ``no`` or ``off`` as booleans.)"""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


class _Issues(ShapeChecker):
    def __init__(self, file: Path | str) -> None:
        self.file = str(file)
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.file}: {where or '(top)'}: {message}")


def load(path: Path | str) -> CollectorConfig:
    """Read and validate a configuration file (YAML, or a testbed's endpoints.json)."""
    path = Path(path)
    issues = _Issues(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        data = _yaml(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(parse)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}: {where}: not YAML: {problem}"]) from None
    files = [path]
    if _looks_like_endpoints(data):
        targets = _endpoints(data, path, issues, "")
        config = CollectorConfig(path, targets, files=tuple(files))
    else:
        config = _collector(data, path, issues, files)
    if issues.items:
        raise ConfigError(issues.items)
    return config


def _by_name(data: dict, key: str, what: str, parse: Callable[[Any, str], Any], issues: _Issues,
             into: dict[str, Any]) -> dict[str, Any]:
    """Parse each entry of the list under `key` into `into` by its name: a name given twice is an
    issue (the second entry wins, so later checks still see one of that name)."""
    for i, entry in enumerate(issues.listing(data.get(key, []), key)):
        item = parse(entry, f"{key}[{i}]")
        if item is not None:
            if item.name in into:
                issues.add(f"{key}[{i}].name", f"duplicate {what} name {item.name!r}")
            into[item.name] = item
    return into


def _looks_like_endpoints(data: Any) -> bool:
    """A list of agents, or a testbed's document (``agents`` plus network, topology, collector...)."""
    return isinstance(data, list) or (isinstance(data, dict) and "agents" in data
                                      and not {"targets", "alarms", "actions", "store"} & set(data))


def _collector(data: Any, path: Path, issues: _Issues, files: list[Path]) -> CollectorConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        issues.add("", f"expected a mapping with targets, alarms, actions, store; got {kind_of(data)}")
        return CollectorConfig(path)
    _unknown(data, ("targets", "targets-file", "alarms", "actions", "store"), "", issues)
    targets: dict[str, TargetConfig] = {}
    if "targets-file" in data:
        ref = data["targets-file"]
        if not isinstance(ref, str):
            issues.add("targets-file", f"expected a file name, got {kind_of(ref)}")
        else:
            ep = (path.parent / ref) if not Path(ref).is_absolute() else Path(ref)
            files.append(ep)
            try:
                ep_data = json.loads(ep.read_text(encoding="utf-8")) if ep.suffix == ".json" else \
                    _yaml(ep.read_text(encoding="utf-8"))
            except (OSError, ValueError, yaml.YAMLError) as exc:
                issues.add("targets-file", f"cannot read {ep}: {getattr(exc, 'strerror', None) or exc}")
            else:
                ep_issues = _Issues(ep)
                targets.update(_endpoints(ep_data, ep, ep_issues, ""))
                issues.items.extend(ep_issues.items)
    _by_name(data, "targets", "target", lambda entry, where: _target(entry, where, path, issues), issues, targets)
    actions: dict[str, ActionConfig] = _by_name(
        data, "actions", "action", lambda entry, where: _action(entry, where, path, issues, targets), issues, {})
    rules: dict[str, Rule] = _by_name(
        data, "alarms", "alarm rule", lambda entry, where: _rule(entry, where, issues, actions), issues, {})
    retention = _retention(data.get("store"), "store", issues)
    return CollectorConfig(path, targets, tuple(rules.values()), tuple(actions.values()), retention, tuple(files))


# ---------------------------------------------------------------------- targets


def _endpoints(data: Any, path: Path, issues: _Issues, where: str) -> dict[str, TargetConfig]:
    """A testbed's endpoints.json: ``[{name, kind, netconf: {host, port}, gnmi: {host, port,
    target, ca}, credentials: FILE}]`` or ``{"agents": [...], ...}`` (`qstrata up` writes the
    latter). ``gnmi.target`` is the request's prefix.target (agents behind one gateway port);
    ``gnmi.ca`` the CA to trust, null for plaintext; without the key, the credentials file's
    ``ca`` decides."""
    agents = data.get("agents") if isinstance(data, dict) else data
    targets: dict[str, TargetConfig] = {}
    for i, agent in enumerate(issues.listing(agents, f"{where}agents" if isinstance(data, dict) else where or "(list)")):
        at = f"{'agents' if isinstance(data, dict) else ''}[{i}]"
        if issues.mapping(agent, at) is None:
            continue
        name = _name(agent, at, "an agent", issues)
        if name is None:
            continue
        kind = agent.get("kind")
        if kind is not None and kind not in KINDS:
            issues.add(f"{at}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        gnmi = _host_port(agent.get("gnmi"), f"{at}.gnmi", issues)
        netconf = _host_port(agent.get("netconf"), f"{at}.netconf", issues)
        if gnmi is None and netconf is None:
            issues.add(at, "neither a gnmi nor a netconf endpoint")
        cred = agent.get("credentials") or agent.get("credentials_file") or agent.get("credentials-file")
        cred_path = _credentials_file(cred, path, f"{at}.credentials", issues) if cred is not None else None
        block = agent.get("gnmi") if isinstance(agent.get("gnmi"), dict) else {}
        gnmi_target = block.get("target") if isinstance(block.get("target"), str) and block.get("target") else None
        tls_ca, insecure = None, None
        if "ca" in block:
            ca = block["ca"]
            if ca is None:
                insecure = True
            elif not isinstance(ca, str):
                issues.add(f"{at}.gnmi.ca", f"expected a file name or null, got {kind_of(ca)}")
            else:
                tls_ca = Path(ca) if Path(ca).is_absolute() else path.parent / ca
                insecure = False
                if not tls_ca.is_file():
                    issues.add(f"{at}.gnmi.ca", f"no such file: {tls_ca}")
        targets[name] = TargetConfig(
            name=name, address=gnmi[0] if gnmi else None, port=gnmi[1] if gnmi else None, kind=kind,
            protocol="gnmi" if gnmi else "netconf", credentials_file=cred_path, tls_ca=tls_ca, insecure=insecure,
            gnmi_target=gnmi_target, subscriptions=_default_subscriptions(kind), netconf=netconf)
    return targets


def _host_port(value: Any, where: str, issues: _Issues) -> tuple[str, int] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        host, port = value.get("host"), value.get("port")
    elif isinstance(value, str):
        host, _, port = value.rpartition(":")
    else:
        issues.add(where, f"expected {{host, port}} or 'host:port', got {kind_of(value)}")
        return None
    try:
        port = int(port)
    except (TypeError, ValueError):
        issues.add(where, f"port must be a number, got {port!r}")
        return None
    if not host or not 0 < port < 65536:
        issues.add(where, f"expected a host and a port 1-65535, got {value!r}")
        return None
    return str(host).strip("[]"), port


def _credentials_file(value: Any, base: Path, where: str, issues: _Issues) -> Path | None:
    if not isinstance(value, str):
        issues.add(where, f"expected a file name, got {kind_of(value)}")
        return None
    path = Path(value) if Path(value).is_absolute() else base.parent / value
    try:
        user, _ = read_credentials(path)
        if not user:
            raise KeyError("username")
    except OSError as exc:
        issues.add(where, f"cannot read {path}: {exc.strerror or exc}")
    except (ValueError, KeyError, TypeError, AttributeError):
        issues.add(where, f"{path} is not a credentials file ({{\"username\": ..., \"password\": ...}})")
    return path


def _default_subscriptions(kind: str | None) -> tuple[Subscription, ...]:
    if kind not in DEFAULT_SUBSCRIPTIONS:
        return ()
    return (Subscription(DEFAULT_SUBSCRIPTIONS[kind]),)


TARGET_KEYS = ("name", "address", "port", "kind", "protocol", "username", "password", "credentials-file", "tls-ca",
               "insecure", "gnmi-target", "subscriptions", "tags", "netconf", "enabled")


def _target(entry: Any, where: str, path: Path, issues: _Issues) -> TargetConfig | None:
    if issues.mapping(entry, where) is None:
        return None
    _unknown(entry, TARGET_KEYS, where, issues)
    start = len(issues.items)
    name = _name(entry, where, "an agent", issues)
    if name is None:
        return None
    address = entry.get("address")
    port = entry.get("port")
    host: str | None = None
    if address is None:
        if port is not None:
            issues.add(f"{where}.address", "required when port is given")
    elif not isinstance(address, str):
        issues.add(f"{where}.address", f"expected 'host' or 'host:port', got {kind_of(address)}")
    elif port is None:
        hp = _host_port(address, f"{where}.address", issues)
        if hp:
            host, port = hp
    else:
        host = address
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        issues.add(f"{where}.port", f"expected a port 1-65535, got {port!r}")
    kind = entry.get("kind")
    if kind is not None and kind not in KINDS:
        issues.add(f"{where}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    protocol = entry.get("protocol", "gnmi")
    if protocol not in ("gnmi", "netconf"):
        issues.add(f"{where}.protocol", f"expected gnmi or netconf, got {protocol!r}")
    netconf = _host_port(entry.get("netconf"), f"{where}.netconf", issues)
    if host is None and netconf is None and address is None:
        issues.add(where, "needs an address (gNMI host:port) or a netconf endpoint")
    username, password = entry.get("username"), entry.get("password")
    for key, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            issues.add(f"{where}.{key}", f"expected a string, got {kind_of(value)}")
    cred = entry.get("credentials-file")
    cred_path = _credentials_file(cred, path, f"{where}.credentials-file", issues) if cred is not None else None
    if cred_path is not None and username is not None:
        issues.add(where, "give username/password or credentials-file, not both")
    tls_ca = entry.get("tls-ca")
    tls_path = None
    if tls_ca is not None:
        tls_path = Path(tls_ca) if Path(str(tls_ca)).is_absolute() else path.parent / str(tls_ca)
        if not tls_path.is_file():
            issues.add(f"{where}.tls-ca", f"no such file: {tls_path}")
    insecure = entry.get("insecure")
    if insecure is not None and not isinstance(insecure, bool):
        issues.add(f"{where}.insecure", f"expected true or false, got {insecure!r}")
    gnmi_target = entry.get("gnmi-target")
    if gnmi_target is not None and not (isinstance(gnmi_target, str) and gnmi_target):
        issues.add(f"{where}.gnmi-target", f"expected the name a gateway knows the agent by, got {gnmi_target!r}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.add(f"{where}.enabled", f"expected true or false, got {enabled!r}")
    subs = tuple(sub for i, raw in enumerate(issues.listing(entry.get("subscriptions", []), f"{where}.subscriptions"))
                 if (sub := _subscription(raw, f"{where}.subscriptions[{i}]", issues)) is not None)
    if not subs:
        subs = _default_subscriptions(kind)
        if not subs and protocol == "gnmi" and "subscriptions" not in entry:
            issues.add(where, "no subscriptions, and no kind to choose the default ones from")
    tags = entry.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(k, str) for k in tags):
        issues.add(f"{where}.tags", f"expected a mapping of names to values, got {kind_of(tags)}")
        tags = {}
    if len(issues.items) > start:
        return None
    return TargetConfig(name=name, address=host, port=port if host else None, kind=kind, protocol=protocol,
                        username=username, password=password, credentials_file=cred_path, tls_ca=tls_path,
                        insecure=insecure, gnmi_target=gnmi_target, subscriptions=subs,
                        tags=tuple((k, str(v)) for k, v in tags.items()),
                        netconf=netconf, enabled=enabled)


def _subscription(entry: Any, where: str, issues: _Issues) -> Subscription | None:
    if isinstance(entry, str):
        entry = {"paths": [entry]}
    if not isinstance(entry, dict):
        issues.add(where, f"expected a mapping with paths, mode, sample-interval; got {kind_of(entry)}")
        return None
    _unknown(entry, ("paths", "mode", "sample-interval"), where, issues)
    paths = entry.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        issues.add(f"{where}.paths", f"expected a list of absolute paths, got {paths!r}")
        return None
    mode = entry.get("mode", "sample")
    if mode not in MODES:
        issues.add(f"{where}.mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
        return None
    interval = _duration(entry.get("sample-interval", DEFAULT_SAMPLE_INTERVAL), f"{where}.sample-interval", issues)
    if interval is not None and interval < 0.1:
        issues.add(f"{where}.sample-interval", f"at least 100ms, got {entry.get('sample-interval')!r}")
        return None
    return Subscription(tuple(paths), mode, interval or DEFAULT_SAMPLE_INTERVAL)


# ---------------------------------------------------------------------- alarms and actions


def _telemetry_leaves() -> dict[str, list[str]]:
    """Leaf name -> schema paths, for the lists of qstrata-telemetry (``qber`` -> qkd-link/qber)."""
    out: dict[str, list[str]] = {}
    t = qtel.telemetry
    for lst in (t.qkd_links.qkd_link, t.qfs_links.qfs_link, t.memories.memory, t.switch_ports.switch_port,
                t.service_units.service_unit_state, t.key_delivery.application, t.key_delivery.refused,
                t.key_delivery.token_bucket, t.key_relay.hop, t.swaps.swap_node):
        for attr, value in vars(lst).items():
            if isinstance(value, str) and value.startswith(lst.PATH + "/") and not attr.isupper():
                out.setdefault(value.rsplit("/", 1)[1], []).append(value)
    return out


def resolve_metric(text: str) -> str:
    """A rule's metric: a schema path, or a qstrata-telemetry leaf name (``qber``). ValueError if
    it names no numeric leaf."""
    if text.startswith("/"):
        path = re.sub(r"\[[^\]]*\]", "", text)
    else:
        candidates = _telemetry_leaves().get(text, [])
        if not candidates:
            raise ValueError(f"unknown metric {text!r}: give a schema path, or one of "
                             f"{', '.join(sorted(n for n, p in _telemetry_leaves().items() if _numeric(p[0])))}")
        if len(candidates) > 1:
            raise ValueError(f"metric {text!r} is ambiguous ({', '.join(candidates)}): give the path")
        path = candidates[0]
    info = leaf_info(path)
    if info is None:
        raise ValueError(f"{path} is not a leaf of any module the collector knows")
    if not info.numeric:
        raise ValueError(f"{path} is a {info.base}, not a number: thresholds need a numeric leaf")
    return path


def _numeric(path: str) -> bool:
    info = leaf_info(path)
    return bool(info and info.numeric)


RULE_KEYS = ("name", "metric", "above", "below", "clear-below", "clear-above", "clear-readings", "arm",
             "unreachable-for", "severity", "targets", "actions")


def _rule(entry: Any, where: str, issues: _Issues, actions: dict[str, ActionConfig]) -> Rule | None:
    if issues.mapping(entry, where) is None:
        return None
    _unknown(entry, RULE_KEYS, where, issues)
    start = len(issues.items)
    name = _name(entry, where, "a rule", issues)
    try:
        severity = severity_identity(str(entry.get("severity", "MAJOR")))
    except ValueError as exc:
        issues.add(f"{where}.severity", str(exc))
        severity = ""
    targets = entry.get("targets")
    if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
        issues.add(f"{where}.targets", f"expected a list of target names, got {targets!r}")
    rule_actions = entry.get("actions", [])
    if not isinstance(rule_actions, list) or not all(isinstance(a, str) for a in rule_actions):
        issues.add(f"{where}.actions", f"expected a list of action names, got {rule_actions!r}")
        rule_actions = []
    for a in rule_actions:
        if a not in actions:
            issues.add(f"{where}.actions", f"unknown action {a!r}; defined: {', '.join(actions) or 'none'}")
    common = dict(name=name, severity=severity, targets=frozenset(targets) if isinstance(targets, list) else None,
                  actions=tuple(rule_actions))
    if "unreachable-for" in entry:
        extra = [k for k in ("metric", "above", "below", "clear-below", "clear-above", "clear-readings", "arm")
                 if k in entry]
        if extra:
            issues.add(where, f"an unreachable-for rule takes no {', '.join(extra)}")
        after = _duration(entry["unreachable-for"], f"{where}.unreachable-for", issues)
        if len(issues.items) > start:
            return None
        return UnreachableRule(after=after or 0.0, **common)
    metric = entry.get("metric")
    if not isinstance(metric, str):
        issues.add(f"{where}.metric", "required: a qstrata-telemetry leaf (qber, key-available, fidelity...) or a "
                                      "schema path; or use unreachable-for")
        return None
    try:
        path = resolve_metric(metric)
    except ValueError as exc:
        issues.add(f"{where}.metric", str(exc))
        return None
    numbers = {}
    for key in ("above", "below", "clear-below", "clear-above"):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                issues.add(f"{where}.{key}", f"expected a number, got {value!r}")
            else:
                numbers[key] = float(value)
    if ("above" in entry) == ("below" in entry):
        issues.add(where, "give exactly one of 'above' and 'below'")
    if "above" in entry and "clear-above" in entry or "below" in entry and "clear-below" in entry:
        issues.add(where, "use clear-below with above, clear-above with below")
    readings = entry.get("clear-readings", DEFAULT_CLEAR_READINGS)
    if isinstance(readings, bool) or not isinstance(readings, int) or readings < 1:
        issues.add(f"{where}.clear-readings", f"expected a whole number of readings, at least 1, got {readings!r}")
    arm = entry.get("arm", False)
    if not isinstance(arm, bool):
        issues.add(f"{where}.arm", f"expected true or false, got {arm!r}")
    if len(issues.items) > start:
        return None
    try:
        return ThresholdRule(path=path, above=numbers.get("above"), below=numbers.get("below"),
                             clear=numbers.get("clear-below", numbers.get("clear-above")), clear_readings=readings,
                             arm=arm, **common)
    except ValueError as exc:
        issues.add(where, str(exc))
        return None


ACTION_KEYS = {
    "webhook": ("url", "timeout", "headers"),
    "netconf": ("agent", "address", "username", "password", "credentials-file", "datastore", "config", "timeout"),
}


def _action(entry: Any, where: str, path: Path, issues: _Issues, targets: dict[str, TargetConfig]
            ) -> ActionConfig | None:
    if issues.mapping(entry, where) is None:
        return None
    start = len(issues.items)
    name, kind = _name(entry, where, "an action", issues), entry.get("type")
    if kind not in ACTION_KINDS:
        issues.add(f"{where}.type", f"expected one of {', '.join(ACTION_KINDS)}, got {kind!r}")
        return None
    _unknown(entry, ("name", "type", "on", "rate-limit", *ACTION_KEYS[kind]), where, issues)
    on = entry.get("on", ["raise"])
    on = [on] if isinstance(on, str) else on
    if not isinstance(on, list) or not on or not set(on) <= {"raise", "clear"}:
        issues.add(f"{where}.on", f"expected raise, clear or [raise, clear], got {entry.get('on')!r}")
        on = ["raise"]
    rate = _rate_limit(entry.get("rate-limit", "10/1m"), f"{where}.rate-limit", issues)
    options: dict[str, Any] = {}
    if "timeout" in entry:
        options["timeout"] = _duration(entry["timeout"], f"{where}.timeout", issues)
    if kind == "webhook":
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            issues.add(f"{where}.url", f"required: an http:// or https:// URL, got {url!r}")
        headers = entry.get("headers", {})
        if not isinstance(headers, dict):
            issues.add(f"{where}.headers", f"expected a mapping, got {kind_of(headers)}")
        options.update(url=url, headers={str(k): str(v) for k, v in dict(headers or {}).items()})
    else:
        config = entry.get("config")
        if not isinstance(config, str) or not config.strip():
            issues.add(f"{where}.config", "required: the <config> content to edit (XML, may use {link_id}, {agent}...)")
        else:
            _check_xml_template(config, f"{where}.config", issues)
        datastore = entry.get("datastore", "running")
        if datastore not in ("running", "candidate"):
            issues.add(f"{where}.datastore", f"expected running or candidate, got {datastore!r}")
        address = _host_port(entry.get("address"), f"{where}.address", issues)
        agent = entry.get("agent")
        if agent is not None and not isinstance(agent, str):
            issues.add(f"{where}.agent", f"expected a target name (or a template like '{{agent}}'), got {agent!r}")
        if isinstance(agent, str) and "{" not in agent and agent not in targets and address is None:
            issues.add(f"{where}.agent", f"unknown target {agent!r} and no address given")
        cred = entry.get("credentials-file")
        options.update(config=config, datastore=datastore, address=address, agent=agent,
                       username=entry.get("username"), password=entry.get("password"),
                       credentials_file=_credentials_file(cred, path, f"{where}.credentials-file", issues)
                       if cred is not None else None)
    if len(issues.items) > start:
        return None
    return ActionConfig(name=name, kind=kind, on=frozenset(on), rate_limit=rate, options=options)


def _check_xml_template(template: str, where: str, issues: _Issues) -> None:
    from lxml import etree

    try:
        names = placeholders(template)
    except ValueError as exc:
        issues.add(where, f"bad template: {exc}")
        return
    try:
        sample = template.format_map({n: "x" for n in names})
        etree.fromstring(f"<config>{sample}</config>".encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError, KeyError, IndexError) as exc:
        issues.add(where, f"not well-formed XML: {exc}")


def _rate_limit(value: Any, where: str, issues: _Issues) -> tuple[int, float]:
    """``N/DURATION`` (``6/1m``, ``1/10s``)."""
    m = re.match(r"^\s*(\d+)\s*/\s*(.+)$", str(value))
    if m:
        try:
            per = parse_duration(m.group(2))
            if int(m.group(1)) > 0 and per > 0:
                return int(m.group(1)), per
        except ValueError:
            pass
    issues.add(where, f"expected N/DURATION such as 6/1m or 1/10s, got {value!r}")
    return 10, 60.0


def _retention(value: Any, where: str, issues: _Issues) -> Retention:
    if value is None:
        return Retention()
    if not isinstance(value, dict):
        issues.add(where, f"expected a mapping, got {kind_of(value)}")
        return Retention()
    _unknown(value, ("retention",), where, issues)
    r = value.get("retention", {})
    if not isinstance(r, dict):
        issues.add(f"{where}.retention", f"expected a mapping with raw, bucket, rollups; got {kind_of(r)}")
        return Retention()
    _unknown(r, ("raw", "bucket", "rollups"), f"{where}.retention", issues)
    d = Retention()
    raw = _duration(r.get("raw", d.raw), f"{where}.retention.raw", issues) or d.raw
    bucket = _duration(r.get("bucket", d.bucket), f"{where}.retention.bucket", issues) or d.bucket
    rollups = _duration(r.get("rollups", d.rollups), f"{where}.retention.rollups", issues) or d.rollups
    return Retention(raw=raw, bucket=bucket, rollups=rollups)


# ---------------------------------------------------------------------- helpers


def _duration(value: Any, where: str, issues: _Issues) -> float | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        issues.add(where, str(exc))
        return None


def _name(entry: dict, where: str, what: str, issues: _Issues) -> str | None:
    """The entry's `name` (agents, rules and actions are told apart by it in alarms, logs and
    the store), or None with an issue."""
    name = entry.get("name")
    if isinstance(name, str) and NAME.match(name):
        return name
    issues.add(f"{where}.name", f"required: {what} name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 64), got {name!r}")
    return None


def _unknown(entry: dict, known: tuple[str, ...], where: str, issues: _Issues) -> None:
    for key in entry:
        if key not in known:
            prefix = f"{where}." if where else ""
            issues.add(f"{prefix}{key}", unknown(key, known))


