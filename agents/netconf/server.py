"""The NETCONF front end of one agent: sessions, capabilities, dispatch, notifications."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence

from libyang import DataType
from lxml import etree
from qstrata.agents.datastore import nacm
from qstrata.agents.datastore.store import CommitEvent, Datastore
from qstrata.bindings.diff import Change
from qstrata.bindings.schema import Schema
from qstrata.bindings.tree import DataTree

from . import dispatch, rfc5277_notifications, rfc6022_monitoring, rfc6241_ops  # noqa: F401 - register rpcs
from .capabilities import server_capabilities
from .framing import DEFAULT_MAX_MESSAGE_SIZE
from .requests import RequestCache
from .session import NetconfSession
from .ssh import SessionContext

log = logging.getLogger("qstrata.netconf")


class NetconfServer:
    def __init__(self, schema: Schema, datastore: Datastore, *, state_provider: Callable[[], DataTree] | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.schema = schema
        self.datastore = datastore
        self.state_provider = state_provider
        self.max_message_size = max_message_size
        self.sessions: dict[int, NetconfSession] = {}
        self.total_sessions = 0
        self.started = rfc5277_notifications.now_text()
        names = ",".join(f"{m.name()}@{schema.revision(m.name())}" for m in schema.implemented_modules())
        self.content_id = hashlib.sha256(names.encode()).hexdigest()[:16]
        self._capabilities = server_capabilities(schema, self.content_id)
        self._ns_to_module = {schema.namespace(m.name()): m.name() for m in schema.ctx}
        self.running_text_cache: dict[tuple[int, str | None], bytes] = {}
        self.requests = RequestCache()
        datastore.listeners.append(self._on_commit)

    # ---------------------------------------------------------------- sessions
    def session_factory(self, ctx: SessionContext) -> NetconfSession:
        self.total_sessions += 1
        return NetconfSession(ctx, self)

    def session_ended(self, session: NetconfSession) -> None:
        self.sessions.pop(session.session_id, None)
        self.datastore.release_session(session.session_id)

    def capabilities(self) -> list[str]:
        return self._capabilities

    @staticmethod
    def now() -> str:
        return rfc5277_notifications.now_text()

    def loop_later(self, coro_fn: Callable) -> None:
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(coro_fn()))

    # ---------------------------------------------------------------- rpc pipeline
    async def dispatch(self, session: NetconfSession, rpc_element: etree._Element,
                       attrs: dict[str, str] | None = None) -> bytes:
        return await dispatch.run(session, rpc_element, self.namespace_of, self._check_access, attrs)

    def _check_access(self, session: NetconfSession, namespace: str, name: str) -> None:
        nacm.check_rpc(session.ctx.groups, name)

    def authorizer(self, session: NetconfSession) -> Callable[[Sequence[Change]], None]:
        groups = session.ctx.groups
        return lambda changes: nacm.check_changes(groups, changes)

    def namespace_of(self, module: str) -> str | None:
        try:
            return self.schema.namespace(module)
        except Exception:
            return None

    def module_of_namespace(self, namespace: str) -> str | None:
        return self._ns_to_module.get(namespace)

    def path_namespaces(self, path: str) -> dict[str, str]:
        return dispatch.path_namespaces(path, self.namespace_of)

    def operational(self) -> DataTree:
        tree = self.state_provider() if self.state_provider else self.datastore.operational()
        tree.merge(rfc6022_monitoring.monitoring_state(self))
        return tree

    # ---------------------------------------------------------------- notifications
    def _on_commit(self, event: CommitEvent) -> None:
        if event.datastore != "running" or not event.changes:
            return
        if not any(s.subscribed for s in self.sessions.values()):
            return  # nobody listens: don't build the notification
        self.publish(rfc5277_notifications.config_change(self, event))

    def publish_json(self, notification_json: dict, event_time: str | None = None) -> None:
        """A device notification (JSON-IETF) to every subscribed session."""
        if not any(s.subscribed for s in self.sessions.values()):
            return
        try:
            node = self.schema.ctx.parse_op_mem("json", json.dumps(notification_json), dtype=DataType.NOTIF_YANG)
            xml = node.print_mem("xml", with_siblings=True)
            node.free()
        except Exception as exc:
            log.warning("dropping a device notification the schema rejects: %s", exc)
            return
        self.publish(rfc5277_notifications.notification(xml.encode(), event_time))

    def publish(self, message: bytes) -> None:
        for session in list(self.sessions.values()):
            if session.subscribed and not session.closed:
                session.stats["out-notifications"] += 1
                asyncio.ensure_future(session.send(message))

