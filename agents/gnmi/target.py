"""One agent as a gNMI target: its data, its users and its events, nothing of gRPC.

Reads are JSON-IETF: running printed once per datastore version (with defaults, so a leaf that
returns to its default is still a value), merged with the device's state when the request
asks for state. A user NACM restricts reads through `AccessControl.filter_read`, like NETCONF.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.guard import LoginGuard
from qstrata.agents.access.users import UserStore
from qstrata.agents.datastore.store import Datastore, SessionInfo
from qstrata.agents.events import CommitEvent, DeviceEvent, EventBus
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode, schema_index
from qstrata.bindings.tree import DataTree
from qstrata.bindings.wire.gnmi_encoding import Encoder

from .auth import Authenticator, Principal
from .view import merge

ALL, CONFIG, STATE, OPERATIONAL = 0, 1, 2, 3


def keep_for(data_type: int) -> Callable[[SchemaNode], bool] | None:
    """Which leaves a GetRequest.DataType returns (None: all). STATE and OPERATIONAL are both
    the config false leaves: the agents keep no read-only configuration apart."""
    if data_type == CONFIG:
        return lambda node: node.config
    if data_type in (STATE, OPERATIONAL):
        return lambda node: not node.config
    return None


@dataclass
class GnmiTarget:
    name: str
    datastore: Datastore
    driver: object
    bus: EventBus
    access: AccessControl
    users: UserStore
    guard: LoginGuard
    index: SchemaIndex = field(init=False)
    encoder: Encoder = field(init=False)
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.index = schema_index(self.datastore.schema)
        self.encoder = Encoder(self.datastore.schema)
        self.auth = Authenticator(self.users, self.guard)
        self._config: tuple[int, dict] | None = None
        self._snapshot: tuple[tuple, dict] | None = None
        self._state_cache: tuple[int, dict] | None = None
        self.bus.subscribe(self._state_changed, CommitEvent, DeviceEvent)

    def _state_changed(self, event: CommitEvent | DeviceEvent) -> None:
        """State read before an announced change is stale even within one tick of the world: the
        agent's own state (its KME) changes between ticks, and a commit changes what the KME
        reports. The subscribers woken by the same event read it again."""
        if isinstance(event, CommitEvent) and event.datastore != "running":
            return
        if isinstance(event, DeviceEvent) and event.kind != "state":
            return
        self._state_cache = None
        self._snapshot = None

    # ---------------------------------------------------------------- time
    def now_ns(self) -> int:
        """The notification timestamp: when the values read now were produced, on the wall clock
        (gNMI 2.1: when the data was collected from its source), so collectors' time ranges and
        staleness hold at any `--speed`. With a twin: the later of the last finished tick and the
        last commit (values do not change in between); without one: now. Dates inside the data
        (creation_time, statistics windows) stay on the simulated clock, like the rest of the
        simulation."""
        world = getattr(self.driver, "world", None)
        if world is not None and world.settled_wall_ns:
            return max(world.settled_wall_ns, self.datastore.installed_ns.get("running", 0))
        return time.time_ns()

    # ---------------------------------------------------------------- data
    def config_json(self) -> dict:
        version = self.datastore.versions.get("running", 0)
        if self._config is None or self._config[0] != version:
            tree = self.datastore.get_config("running")
            text = "" if tree.is_empty() else tree.print("json", with_defaults="report-all")
            self._config = (version, json.loads(text) if text else {})
        return self._config[1]

    def data(self, data_type: int, principal: Principal | None = None) -> dict:
        """The data a request of `data_type` reads, as the user may see it."""
        tree = self.config_json()
        if data_type != CONFIG:
            tree = self._with_state(tree)
        if principal is not None:
            access = self.access.for_user(principal.username, principal.groups)
            if not access.unrestricted:
                full = DataTree.from_python(tree, schema=self.datastore.schema, validate=False, strict=False)
                tree = self.access.filter_read(access, full).to_python()
        return tree

    def data_under(self, elems: tuple, principal: Principal | None = None) -> dict:
        """Config and state under a pattern's concrete beginning (up to its first wildcard), for
        on-change: a commit must not cost a print of the whole running configuration."""
        xpath = _concrete_prefix(elems)
        if xpath is None:
            return self.data(ALL, principal)
        if principal is not None and not self.access.for_user(principal.username, principal.groups).unrestricted:
            return self.data(ALL, principal)
        part = self.datastore.get_config("running").select(xpath)
        text = "" if part.is_empty() else part.print("json", with_defaults="report-all")
        config = json.loads(text) if text else {}
        state = self._state()
        return merge(self.index, config, state) if state else config

    def _state(self) -> dict:
        world = getattr(self.driver, "world", None)
        key = world.settled_ns if world is not None else time.monotonic_ns()
        if self._state_cache is not None and self._state_cache[0] == key:
            return self._state_cache[1]
        state = self.driver.read_state() if hasattr(self.driver, "read_state") else {}
        for source in self.datastore.state_sources:  # the agent's own state (its KME): after the device's
            extra = source()
            if extra:
                state = merge(self.index, state, extra) if state else extra
        self._state_cache = (key, state)
        return state

    def _with_state(self, config: dict) -> dict:
        """Running merged with the device's state, shared by every reader until either changes:
        a twin's state only moves when its world ticks, so one snapshot per tick serves every
        subscriber (and lets them reuse what they encoded from it)."""
        world = getattr(self.driver, "world", None)
        key = (self.datastore.versions.get("running", 0), world.settled_ns if world is not None else time.monotonic_ns())
        if self._snapshot is not None and self._snapshot[0] == key:
            return self._snapshot[1]
        state = self._state()
        tree = merge(self.index, config, state) if state else config
        self._snapshot = (key, tree)
        return tree

    def session(self, principal: Principal) -> SessionInfo:
        """A gNMI Set writes as its user, under NACM, with no NETCONF session of its own: a
        datastore lock held by a NETCONF session stops it."""
        return SessionInfo(session_id=None, username=principal.username,
                           authorize=self.access.write_check(principal.username, principal.groups))

    async def authenticate(self, metadata: tuple | None, peer: str) -> Principal:
        return await self.auth.authenticate(metadata, peer)


def _concrete_prefix(elems: tuple) -> str | None:
    """The XPath of a pattern's elements before its first wildcard (None: it starts with one or
    the first module is unknown)."""
    steps = []
    parent_module = None
    for elem in elems:
        if elem.name in ("*", "...") or elem.module is None and parent_module is None:
            break
        module = elem.module or parent_module
        name = f"{module}:{elem.name}" if module != parent_module else elem.name
        preds = "".join(f"[{k}='{v}']" if "'" not in v else f'[{k}="{v}"]' for k, v in elem.keys)
        steps.append(name + preds)
        parent_module = module
    return "/" + "/".join(steps) if steps else None
