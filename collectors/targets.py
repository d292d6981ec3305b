"""Which targets this collector instance collects, and telling the input side when that changes.

Two things decide it: the configuration (targets added, changed, removed while running, see
`watch.ConfigWatcher`) and, when several instances share the work, the leases this instance
holds (`leases.LeaseManager`). `TargetManager` keeps both and tells a `TargetInput` (the gNMI
input; later a NETCONF one) exactly what to start, restart and stop:

    desired = enabled targets of the configuration
    active  = desired                       (one instance)
            = desired ∩ leases held here    (several instances sharing through NATS)

A target leaving `active` is also forgotten by the pipeline (its series leave the Prometheus
exposition), so that only the instance that collects a target exports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from .config import TargetConfig

log = logging.getLogger("qstrata.collectors.targets")


@runtime_checkable
class TargetInput(Protocol):
    """The input side's half of the contract: what the gNMI input implements.

    Calls come from the event loop and must not block: start or stop a session task and return.
    The input reports back through `Pipeline.ingest(list[Update])` and
    `Pipeline.target_status(TargetStatus)`."""

    def target_added(self, target: TargetConfig) -> None:
        """Start collecting `target` (subscribe)."""
        ...

    def target_changed(self, target: TargetConfig) -> None:
        """Its configuration changed (address, credentials, subscriptions...): resubscribe."""
        ...

    def target_removed(self, name: str) -> None:
        """Stop collecting it (unsubscribe, close the session)."""
        ...


class TargetManager:
    def __init__(self, sink: TargetInput, on_removed: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        self.on_removed = on_removed
        self.desired: dict[str, TargetConfig] = {}
        self.owned: set[str] | None = None
        """None: this instance owns every target (no sharing)."""
        self.active: dict[str, TargetConfig] = {}

    def set_targets(self, targets: dict[str, TargetConfig]) -> None:
        """The configuration's targets (all of them; disabled ones are not collected)."""
        self.desired = {n: t for n, t in targets.items() if t.enabled}
        self._reconcile()

    def set_owned(self, names: Iterable[str] | None) -> None:
        """The targets whose lease this instance holds (None: no sharing, all of them)."""
        self.owned = None if names is None else set(names)
        self._reconcile()

    def _reconcile(self) -> None:
        want = {n: t for n, t in self.desired.items() if self.owned is None or n in self.owned}
        for name in [n for n in self.active if n not in want]:
            del self.active[name]
            log.info("target %s: stop collecting", name)
            self.sink.target_removed(name)
            if self.on_removed is not None:
                self.on_removed(name)
        for name, target in want.items():
            old = self.active.get(name)
            if old is None:
                self.active[name] = target
                log.info("target %s: start collecting", name)
                self.sink.target_added(target)
            elif old != target:
                self.active[name] = target
                log.info("target %s: configuration changed", name)
                self.sink.target_changed(target)


class UnavailableInput:
    """Stands in for the gNMI input until it exists: says once per target that it is not collected."""

    def __init__(self, protocol: str = "gNMI") -> None:
        self.protocol = protocol
        self.targets: dict[str, TargetConfig] = {}

    def target_added(self, target: TargetConfig) -> None:
        self.targets[target.name] = target
        log.warning("target %s: the %s input is not available yet; not collected", target.name, self.protocol)

    def target_changed(self, target: TargetConfig) -> None:
        self.targets[target.name] = target

    def target_removed(self, name: str) -> None:
        self.targets.pop(name, None)
