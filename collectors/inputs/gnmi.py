"""The gNMI input: one `TargetSession` task per target this instance collects, in the collector's
event loop (grpc.aio, gnmi-pb stubs).

Implements `targets.TargetInput`: the `TargetManager` says which targets to start, restart
(configuration changed: the old session is cancelled and a new one started at once, even from a
`failed` wait) and stop. A stopped target reports nothing more, so its series, once forgotten by
the pipeline, stay forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..config import TargetConfig
from ..session import RetryPolicy, TargetSession

if TYPE_CHECKING:
    from ..pipeline import Pipeline

log = logging.getLogger("qstrata.collectors.gnmi")


class GnmiInput:
    """Subscribes to every target it is given; health per target in `health()`."""

    def __init__(self, pipeline: Pipeline, policy: RetryPolicy | None = None) -> None:
        self.pipeline = pipeline
        self.policy = policy or RetryPolicy()
        self.sessions: dict[str, TargetSession] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    # ------------------------------------------------------------------ targets.TargetInput
    def target_added(self, target: TargetConfig) -> None:
        if target.protocol != "gnmi" or target.address is None or target.port is None:
            log.warning("target %s has no gNMI endpoint; not collected", target.name)
            return
        self._start(TargetSession(target, self.pipeline, self.policy))

    def target_changed(self, target: TargetConfig) -> None:
        old = self.sessions.get(target.name)
        self._cancel(target.name)
        if target.protocol != "gnmi" or target.address is None or target.port is None:
            return
        session = TargetSession(target, self.pipeline, self.policy)
        if old is not None:  # counters carry over: reconnects and duplicates are per target
            session.sessions, session.reconnects, session.attempts = old.sessions, old.reconnects, old.attempts
            session.duplicates, session.received = old.duplicates, old.received
            session.encoding = old.encoding
        self._start(session)

    def target_removed(self, name: str) -> None:
        self._cancel(name)

    # ------------------------------------------------------------------ life cycle
    def _start(self, session: TargetSession) -> None:
        name = session.config.name
        self.sessions[name] = session
        self._tasks[name] = asyncio.get_running_loop().create_task(self._run(session), name=f"gnmi-{name}")

    async def _run(self, session: TargetSession) -> None:
        try:
            await session.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not take the collector down; say so once and stop this target
            log.exception("target %s: the gNMI session failed unexpectedly", session.config.name)
            session.state, session.reason = "failed", "internal error in the collector (logged)"
            session.reachable = False
            session.report()

    def _cancel(self, name: str) -> None:
        session = self.sessions.pop(name, None)
        if session is not None:
            session.closed = True
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for name in list(self.sessions):
            self._cancel(name)
        await asyncio.gather(*tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {name: s.health() for name, s in sorted(self.sessions.items())}
