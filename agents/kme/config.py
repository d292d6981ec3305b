"""The KME's configuration, read from the agent's running datastore (never from the device).

What it needs of qstrata-ss and ETSI GS QKD 015: this KME's `kme-id` and `limits`, the SAEs and
the KME each is attached to, the forwarding table, the token-bucket sessions, the applications
(`qkd_app`: `server_app_id` the master SAE, `client_app_id` the slaves, `ss-session-id` their
bucket) and the links (`qkdl_remote/qkdn_id`, to find a link to a next hop when a route names
none). Loaded whole once, then kept up to date from each commit's change list: only the list
entries a commit touched are read again, so a commit costs the same at 10 or 10,000 entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qstrata.bindings.diff import Change
from qstrata.bindings.paths import join_data_path, split_data_path
from qstrata.bindings.tree import DataTree

from .material import kme_urn

SS = "qstrata-ss:service-stratum"
QKD = "etsi-qkd-sdn-node:qkd_node"
SESSION_LEAF = "qstrata-ss:ss-session-id"


@dataclass(frozen=True, slots=True)
class Limits:
    default_key_size: int = 256
    min_key_size: int = 64
    max_key_size: int = 8192
    max_key_per_request: int = 1024
    max_sae_id_count: int = 4
    key_expiry_s: int = 3600


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    master: str | None
    slaves: tuple[str, ...]
    session_id: str | None


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    next_hop: str
    qkd_link: str | None


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    rate: int
    burst: int


@dataclass
class KmeConfig:
    kme_id: str | None = None
    limits: Limits = field(default_factory=Limits)
    saes: dict[str, str] = field(default_factory=dict)
    """SAE ID -> the kme-id it is attached to (lower case)."""
    apps: dict[str, App] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    _links: dict[str, str | None] | None = None
    _load_links: Callable[[], dict[str, str | None]] | None = None
    _by_master: dict[str, list[App]] | None = None

    @property
    def links(self) -> dict[str, str | None]:
        """qkdl_id -> the remote node's qkdn_id (lower case). Read when first needed after the
        links changed, not on every commit: a node may hold 200,000 links, and a commit that
        creates them must not make the KME read each one on the event loop."""
        if self._links is None:
            self._links = self._load_links() if self._load_links is not None else {}
        return self._links

    def links_changed(self) -> None:
        self._links = None

    def is_local(self, sae_id: str) -> bool:
        return self.kme_id is not None and self.saes.get(sae_id) == self.kme_id.lower()

    def apps_of(self, master: str) -> list[App]:
        if self._by_master is None:
            index: dict[str, list[App]] = {}
            for app in self.apps.values():
                if app.master is not None:
                    index.setdefault(app.master, []).append(app)
            self._by_master = index
        return self._by_master.get(master, [])

    def app_for(self, master: str, slaves: Iterable[str]) -> App | None:
        """The application whose server is `master` and whose clients include every slave."""
        wanted = set(slaves)
        for app in self.apps_of(master):
            if wanted <= set(app.slaves):
                return app
        return None

    def route_to(self, kme_id: str) -> Route | None:
        """The longest urn-prefix matching the URN of KME `kme_id` (`material.kme_urn`)."""
        urn = kme_urn(kme_id)
        best = None
        for route in self.routes.values():
            if urn.startswith(route.prefix.lower()) and (best is None or len(route.prefix) > len(best.prefix)):
                best = route
        return best

    def link_of(self, route: Route) -> str | None:
        """The route's QKD link, or else a link of this node to the next hop's node."""
        if route.qkd_link is not None:
            return route.qkd_link
        hop = route.next_hop.lower()
        return next((qkdl for qkdl, remote in self.links.items() if remote == hop), None)

    def changed(self) -> None:
        self._by_master = None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_limits(raw: dict[str, Any] | None) -> Limits:
    raw = raw or {}
    d = Limits()
    return Limits(int(raw.get("default-key-size", d.default_key_size)), int(raw.get("min-key-size", d.min_key_size)),
                  int(raw.get("max-key-size", d.max_key_size)),
                  int(raw.get("max-key-per-request", d.max_key_per_request)),
                  int(raw.get("max-sae-id-count", d.max_sae_id_count)), int(raw.get("key-expiry", d.key_expiry_s)))


def parse_app(raw: dict[str, Any]) -> App:
    clients = raw.get("client_app_id") or []
    return App(str(raw["app_id"]), _text(raw.get("server_app_id")), tuple(str(c) for c in clients),
               _text(raw.get(SESSION_LEAF)))


def parse_route(raw: dict[str, Any]) -> Route:
    return Route(str(raw["urn-prefix"]), str(raw["next-hop-kme"]).lower(), _text(raw.get("qkd-link")))


def parse_session(raw: dict[str, Any]) -> Session:
    return Session(str(raw["session-id"]), int(raw["rate"]), int(raw["burst"]))


def _remote(raw: dict[str, Any]) -> str | None:
    remote = (raw.get("qkdl_remote") or {}).get("qkdn_id")
    return None if remote is None else str(remote).lower()


# (top, containers below the top, list, its key leaf): the lists the KME keeps
_LISTS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (SS, ("kme", "saes"), "sae", "sae-id"),
    (SS, ("kme", "sessions"), "session", "session-id"),
    (SS, ("kme", "forwarding-table"), "route", "urn-prefix"),
    (QKD, ("qkd_applications",), "qkd_app", "app_id"),
)
LINKS = (QKD, ("qkd_links",), "qkd_link", "qkdl_id")
"""Read whole, lazily (`KmeConfig.links`)."""


class ConfigReader:
    """Reads the KME's configuration out of `running()` (the datastore's running tree)."""

    def __init__(self, running: Callable[[], DataTree]) -> None:
        self.running = running

    def _read(self, elements: list[tuple[str, dict[str, str]]]) -> Any:
        """The JSON-IETF of the node at `elements` (defaults included; a list without keys: its
        entries), or None."""
        tree = self.running().select(join_data_path(elements))
        if tree.is_empty():
            return None
        node: Any = json.loads(tree.print("json", with_defaults="report-all"))
        for name, keys in elements:
            if not isinstance(node, dict):
                return None
            node = node.get(name, node.get(name.split(":", 1)[-1]))
            if keys and isinstance(node, list):
                node = next((e for e in node if all(str(e.get(k)) == v for k, v in keys.items())), None)
        return node

    def _read_list(self, config: KmeConfig, top: str, containers: tuple[str, ...], name: str, key: str) -> None:
        entries = self._read([(top, {}), *((c, {}) for c in containers), (name, {})]) or []
        for raw in entries if isinstance(entries, list) else [entries]:
            self._put(config, name, str(raw.get(key)), raw)

    def load(self) -> KmeConfig:
        config = KmeConfig(_load_links=self._links)
        self._read_kme(config)
        for top, containers, name, key in _LISTS:
            self._read_list(config, top, containers, name, key)
        config.changed()
        return config

    def _links(self) -> dict[str, str | None]:
        top, containers, name, key = LINKS
        entries = self._read([(top, {}), *((c, {}) for c in containers), (name, {})]) or []
        return {str(raw.get(key)): _remote(raw) for raw in (entries if isinstance(entries, list) else [entries])}

    def _read_kme(self, config: KmeConfig) -> None:
        kme_id = self._read([(SS, {}), ("kme", {}), ("kme-id", {})])
        config.kme_id = None if kme_id is None else str(kme_id).lower()
        config.limits = parse_limits(self._read([(SS, {}), ("kme", {}), ("limits", {})]))

    @staticmethod
    def _table(config: KmeConfig, name: str) -> dict[str, Any]:
        return {"sae": config.saes, "session": config.sessions, "route": config.routes, "qkd_app": config.apps}[name]

    def _put(self, config: KmeConfig, name: str, key: str, raw: dict[str, Any] | None) -> None:
        table = self._table(config, name)
        if raw is None:
            table.pop(key, None)
        elif name == "sae":
            table[key] = str(raw["kme-id"]).lower()
        elif name == "session":
            table[key] = parse_session(raw)
        elif name == "route":
            table[key] = parse_route(raw)
        else:
            table[key] = parse_app(raw)

    def update(self, config: KmeConfig, changes: Iterable[Change]) -> bool:
        """Apply a commit's changes; whether any reached the KME's configuration."""
        touched: dict[tuple[str, str], None] = {}
        whole: set[str] = set()
        kme = links = False
        for change in changes:
            steps = split_data_path(change.path)
            if not steps or steps[0][0] not in (SS, QKD):
                continue
            top = steps[0][0]
            names = [n for n, _ in steps]
            if len(steps) == 1:
                whole.add(top)
                continue
            if top == SS and names[1] == "kme" and (len(names) == 2 or names[2] in ("kme-id", "limits")):
                kme = True
                if len(names) == 2:
                    whole.add(SS)
                continue
            if top == LINKS[0] and names[1] == LINKS[1][0]:
                # entries come or go, or a link's remote end moves: what `links` holds
                links = links or len(names) <= 3 or "qkdl_remote" in names
                continue
            for lst_top, containers, name, key in _LISTS:
                depth = 1 + len(containers)
                if lst_top != top or tuple(names[1:depth]) != containers:
                    continue
                if len(names) <= depth or names[depth] != name or key not in steps[depth][1]:
                    whole.add(f"{top}/{name}")  # the list as a whole (its container went)
                else:
                    touched[(name, steps[depth][1][key])] = None
                break
        if links:
            config.links_changed()
        if not (touched or whole or kme):
            return links
        if SS in whole or QKD in whole:
            fresh = self.load()
            config.__dict__.update(fresh.__dict__)
            return True
        if kme:
            self._read_kme(config)
        for top, containers, name, key in _LISTS:
            if f"{top}/{name}" in whole:
                self._table(config, name).clear()
                self._read_list(config, top, containers, name, key)
        for name, value in touched:
            top, containers, _, key = next(x for x in _LISTS if x[2] == name)
            raw = self._read([(top, {}), *((c, {}) for c in containers), (name, {key: value})])
            self._put(config, name, value, raw if isinstance(raw, dict) else None)
        config.changed()
        return True

