"""The NETCONF front end of one agent: sessions, capabilities, dispatch, notifications.

It speaks NETCONF on one side and the core's neutral API on the other: the datastore, the
shared access service, and the agent's event bus (commits, device notifications, session and
confirmed-commit events become RFC 5277/6470 notifications here).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from lxml import etree
from qstrata.agents.access.control import AccessControl
from qstrata.agents.access.nacm import UserAccess
from qstrata.agents.datastore.store import Datastore
from qstrata.agents.events import (
    CapabilityEvent,
    CommitEvent,
    ConfirmedCommitEvent,
    DeviceEvent,
    EventBus,
    SessionEvent,
)
from qstrata.bindings.schema import Schema
from qstrata.bindings.tree import DataTree
from qstrata.bindings.wire.framing import DEFAULT_MAX_MESSAGE_SIZE

from . import rfc5277_notifications, rfc6022_monitoring, rfc6241_ops
from .capabilities import server_capabilities
from .context import HandlerContext
from .dispatch import RpcRegistry
from .dispatch import run as run_rpc
from .requests import RequestCache
from .session import NetconfSession
from .ssh import SessionContext

log = logging.getLogger("qstrata.netconf")

SLOW_CALL_S = 0.02
"""A read that took longer than this last time runs in a worker thread next time."""
BIG_DATASTORE = 512 * 1024
"""Reads of a datastore that prints larger than this (bytes, estimated) run in a worker thread."""


def default_registry() -> RpcRegistry:
    """The operations a qstrata agent answers, registered explicitly."""
    registry = RpcRegistry()
    rfc6241_ops.register(registry)
    rfc6022_monitoring.register(registry)
    rfc5277_notifications.register(registry)
    return registry


class NetconfServer:
    def __init__(self, schema: Schema, datastore: Datastore, *, bus: EventBus | None = None,
                 access: AccessControl | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, registry: RpcRegistry | None = None) -> None:
        self.schema = schema
        self.datastore = datastore
        self.bus = bus or datastore.bus
        self.access = access or AccessControl(datastore, self.bus)
        self.max_message_size = max_message_size
        self.registry = registry or default_registry()
        self.sessions: dict[int, NetconfSession] = {}
        self.total_sessions = 0
        self.ended_stats: dict[str, int] = {}
        """Per-session counters of sessions that ended (RFC 6022 statistics are server totals)."""
        self.counters = {"in-bad-hellos": 0, "dropped-sessions": 0}
        self.started = rfc5277_notifications.now_text()
        names = ",".join(f"{m.name()}@{schema.revision(m.name())}" for m in schema.implemented_modules())
        self.content_id = hashlib.sha256(names.encode()).hexdigest()[:16]
        self._capabilities = server_capabilities(schema, self.content_id)
        self._ns_to_module = {schema.namespace(m.name()): m.name() for m in schema.ctx}
        self.running_text_cache: dict[tuple, bytes] = {}
        self.requests = RequestCache()
        self._slow: dict[str, float] = {}
        self.handler_context = HandlerContext(
            datastore=datastore, schema=schema, access=self.access, offload=self.offload,
            operational=self.operational, namespace_of=self.namespace_of,
            module_of_namespace=self.module_of_namespace, sessions=self.sessions,
            running_text_cache=self.running_text_cache)
        """What operation handlers may use (they never see the server itself)."""
        self._unsubscribe = [
            self.bus.subscribe(self._on_commit, CommitEvent),
            self.bus.subscribe(self._on_device, DeviceEvent),
            self.bus.subscribe(self._on_session, SessionEvent),
            self.bus.subscribe(self._on_confirmed_commit, ConfirmedCommitEvent),
            self.bus.subscribe(self._on_capabilities, CapabilityEvent),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # ---------------------------------------------------------------- sessions
    def session_factory(self, ctx: SessionContext) -> NetconfSession:
        self.total_sessions += 1
        return NetconfSession(ctx, self)

    def session_started(self, session: NetconfSession) -> None:
        self.sessions[session.session_id] = session
        self.bus.publish(SessionEvent("start", session.session_id, session.ctx.username, _host(session)))

    def session_ended(self, session: NetconfSession) -> None:
        if self.sessions.pop(session.session_id, None) is None:
            return
        self.datastore.release_session(session.session_id)
        for key, value in session.stats.items():
            self.ended_stats[key] = self.ended_stats.get(key, 0) + value
        reason, killer = session.termination
        if reason == "dropped":
            self.counters["dropped-sessions"] += 1
        self.bus.publish(SessionEvent("end", session.session_id, session.ctx.username, _host(session),
                                      termination_reason=reason, killed_by=killer))

    def capabilities(self) -> list[str]:
        return self._capabilities

    def update_capabilities(self, capabilities: Sequence[str]) -> None:
        """A device gained or lost modules or features: advertise it (RFC 6470 capability-change)."""
        old, new = set(self._capabilities), list(capabilities)
        self._capabilities = new
        added = tuple(c for c in new if c not in old)
        deleted = tuple(c for c in old if c not in set(new))
        if added or deleted:
            self.bus.publish(CapabilityEvent(added=added, deleted=deleted))

    @staticmethod
    def now() -> str:
        return rfc5277_notifications.now_text()

    async def offload(self, fn: Callable[..., Any], *args: Any, big: bool = False, output: str | None = None,
                      datastore: str | None = None, **kwargs: Any) -> Any:
        """Run CPU work in a worker thread when it is known to be large (a big request, a big
        datastore, or the same kind of read was slow last time); small work runs inline, where a
        thread hop would cost more than the work."""
        if datastore is not None and self.datastore.weight(datastore) > BIG_DATASTORE:
            big = True
        if not big and (output is None or self._slow.get(output, 0.0) < SLOW_CALL_S):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            if output is not None:
                self._slow[output] = time.perf_counter() - start
            return result
        start = time.perf_counter()
        result = await asyncio.to_thread(fn, *args, **kwargs)
        if output is not None:
            self._slow[output] = time.perf_counter() - start
        return result

    # ---------------------------------------------------------------- rpc pipeline
    async def dispatch(self, session: NetconfSession, rpc_element: etree._Element,
                       attrs: dict[str, str] | None = None) -> bytes:
        return await run_rpc(self.handler_context, session, rpc_element, self.registry, self._check_access, attrs)

    def user_access(self, session: NetconfSession) -> UserAccess:
        return self.access.for_user(session.ctx.username, session.ctx.groups)

    def _check_access(self, session: NetconfSession, namespace: str, name: str) -> None:
        module = _RPC_MODULES.get(namespace) or self.module_of_namespace(namespace) or namespace
        self.access.check_exec(self.user_access(session), module, name)

    def namespace_of(self, module: str) -> str | None:
        try:
            return self.schema.namespace(module)
        except Exception:
            return None

    def module_of_namespace(self, namespace: str) -> str | None:
        return self._ns_to_module.get(namespace)

    def path_namespaces(self, path: str) -> dict[str, str]:
        from .dispatch import path_namespaces

        return path_namespaces(path, self.namespace_of)

    def operational(self) -> DataTree:
        tree = self.datastore.operational()  # the core's one operational read
        tree.merge(rfc6022_monitoring.monitoring_state(self))
        tree.merge(DataTree.from_python(self.access.state(), schema=self.schema, validate=False))
        return tree

    # ---------------------------------------------------------------- notifications
    def _subscribed(self) -> bool:
        return any(s.subscribed for s in self.sessions.values())

    def _on_commit(self, event: CommitEvent) -> None:
        if event.datastore == "running" and event.changes and self._subscribed():
            self.publish(rfc5277_notifications.config_change(self, event), _NCN, "netconf-config-change")

    def _on_device(self, event: DeviceEvent) -> None:
        if event.kind == "notification" and self._subscribed():
            when = rfc5277_notifications.time_text(event.time_ns) if event.time_ns else None
            self.publish_json(event.data, when)

    def _on_session(self, event: SessionEvent) -> None:
        if self._subscribed():
            name = "netconf-session-start" if event.kind == "start" else "netconf-session-end"
            self.publish(rfc5277_notifications.session_event(event), _NCN, name)

    def _on_confirmed_commit(self, event: ConfirmedCommitEvent) -> None:
        if self._subscribed():
            self.publish(rfc5277_notifications.confirmed_commit(event), _NCN, "netconf-confirmed-commit")

    def _on_capabilities(self, event: CapabilityEvent) -> None:
        if self._subscribed():
            self.publish(rfc5277_notifications.capability_change(event), _NCN, "netconf-capability-change")

    def publish_json(self, notification_json: dict, event_time: str | None = None) -> None:
        """A device notification (JSON-IETF) to every subscribed session."""
        if not self._subscribed():
            return
        try:
            xml = self.schema.notification_xml(notification_json)
        except Exception as exc:
            log.warning("dropping a device notification the schema rejects: %s", exc)
            return
        module, _, name = next(iter(notification_json)).partition(":")
        self.publish(rfc5277_notifications.notification(xml.encode(), event_time), module, name)

    def publish(self, message: bytes, module: str, name: str) -> None:
        """To every subscribed session whose user NACM lets receive it (RFC 8341 s3.4.6) and
        whose subscription's filter selects it (RFC 5277 s2.1.1)."""
        content: etree._Element | None = None
        for session in list(self.sessions.values()):
            if not session.subscribed or session.closed or \
                    not self.access.may_notify(self.user_access(session), module, name):
                continue
            if session.notification_filter is not None:
                if content is None:  # parsed once, for the sessions that filter
                    content = rfc5277_notifications.event_content(message)
                if not session.notification_filter.matches(content):
                    continue
            session.stats["out-notifications"] += 1
            asyncio.ensure_future(session.send(message))


_NCN = "ietf-netconf-notifications"
_RPC_MODULES = {"urn:ietf:params:xml:ns:netconf:notification:1.0": "notifications"}
"""RFC 5277's create-subscription lives in module `notifications`, which agents do not load."""


def _host(session: NetconfSession) -> str | None:
    return session.ctx.peer[0] if session.ctx.peer else None
