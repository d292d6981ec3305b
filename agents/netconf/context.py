"""What a NETCONF operation handler may use, named: the handler context.

Handlers used to reach through ``session.server.*`` for whatever they needed (about thirty
times): the server was a service locator, and nothing said which handler depends on what. Each
handler now gets one `HandlerContext`, built once per server, holding exactly the core services
an operation may touch (the datastore, the schema, access control, the offload policy, the
operational read, the open sessions for kill-session), and the session it runs for. A handler
that needs something new adds a field here, where a reviewer sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.nacm import UserAccess
from qstrata.agents.datastore.store import Datastore, SessionInfo
from qstrata.bindings.schema import Schema
from qstrata.bindings.tree import DataTree

if TYPE_CHECKING:
    from .session import NetconfSession


class Offload(Protocol):
    """Runs CPU work inline when small, in a worker thread when known to be large (see
    `NetconfServer.offload`)."""

    def __call__(self, fn: Callable[..., Any], *args: Any, big: bool = False, output: str | None = None,
                 datastore: str | None = None, **kwargs: Any) -> Awaitable[Any]: ...


@dataclass(frozen=True, eq=False)
class HandlerContext:
    """The core services one server's handlers use; shared by every session of that server."""

    datastore: Datastore
    schema: Schema
    access: AccessControl
    offload: Offload
    operational: Callable[[], DataTree]
    """running merged with device state and the server's own state (RFC 6022, NACM counters)."""
    namespace_of: Callable[[str], str | None]
    """module name -> XML namespace (None if the schema has no such module)."""
    module_of_namespace: Callable[[str], str | None]
    sessions: Mapping[int, NetconfSession]
    """The server's open sessions by session-id (kill-session)."""
    running_text_cache: dict[tuple, bytes]
    """Unfiltered running as printed, per committed version (get-config's common case)."""

    def user_access(self, session: NetconfSession) -> UserAccess:
        return self.access.for_user(session.ctx.username, session.ctx.groups)

    def session_info(self, session: NetconfSession) -> SessionInfo:
        """Who writes, for the datastore: locks, NACM on the diff, change notifications."""
        return SessionInfo(session.session_id, session.ctx.username,
                           self.access.write_check(session.ctx.username, session.ctx.groups))
