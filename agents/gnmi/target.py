"""One agent as a gNMI target: its data, its users and its events, nothing of gRPC.

Reads are the core's operational read (`Datastore.read_operational`: running with defaults
merged with the device's state, stamped with when it was produced); on-change takes the core's
changes (`Datastore.watch_operational`). The target never sees the device. A user NACM
restricts reads through `AccessControl.filter_read`, like NETCONF.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.guard import LoginGuard
from qstrata.agents.access.users import UserStore
from qstrata.agents.datastore.operational import Operational, OperationalChange
from qstrata.agents.datastore.store import Datastore, SessionInfo
from qstrata.agents.events import EventBus
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode, schema_index
from qstrata.bindings.tree import DataTree
from qstrata.bindings.wire.gnmi_encoding import Encoder

from .auth import Authenticator, Principal

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

    def config_json(self) -> dict:
        return self.datastore.read_operational(config_only=True).data

    def read(self, data_type: int, principal: Principal | None = None) -> Operational:
        """The data a request of `data_type` reads, as the user may see it, with its time."""
        snapshot = self.datastore.read_operational(config_only=data_type == CONFIG)
        if principal is not None and not self.unrestricted(principal):
            access = self.access.for_user(principal.username, principal.groups)
            full = DataTree.from_python(snapshot.data, schema=self.datastore.schema, validate=False, strict=False)
            return Operational(self.access.filter_read(access, full).to_python(), snapshot.time_ns)
        return snapshot

    def watch(self, callback: Callable[[OperationalChange], None]) -> Callable[[], None]:
        """The core's changes (on-change subscribers); returns the unsubscribe."""
        return self.datastore.watch_operational(callback)

    def unrestricted(self, principal: Principal) -> bool:
        return self.access.for_user(principal.username, principal.groups).unrestricted

    def session(self, principal: Principal) -> SessionInfo:
        """A gNMI Set writes as its user, under NACM, with no NETCONF session of its own: a
        datastore lock held by a NETCONF session stops it."""
        return SessionInfo(session_id=None, username=principal.username,
                           authorize=self.access.write_check(principal.username, principal.groups))

    async def authenticate(self, metadata: tuple | None, peer: str) -> Principal:
        return await self.auth.authenticate(metadata, peer)

