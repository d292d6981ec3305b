"""RFC 8341 access control as a service of the agent, shared by every front end.

It keeps the compiled `NacmPolicy` in step with ``/nacm`` in running (rebuilt after each commit
that touches it), hands each session its `UserAccess`, and turns decisions into the core's
neutral errors (`DatastoreError(ACCESS_DENIED)`) while counting denials for the ``/nacm`` state
leaves. NETCONF, gNMI and RESTCONF call the same four checks: exec, write (on the computed
change list, inside the transaction), read (a filtered copy of the data) and notify.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from qstrata.agents.datastore.errors import DatastoreError, ErrorKind
from qstrata.agents.datastore.store import Datastore
from qstrata.agents.events import CommitEvent, EventBus
from qstrata.bindings.diff import Change
from qstrata.bindings.tree import DataTree

from .nacm import NACM_TOP, NacmCounters, NacmPolicy, UserAccess

log = logging.getLogger("qstrata.access")

_NACM_PREFIX = f"/{NACM_TOP}"


class AccessControl:
    def __init__(self, datastore: Datastore, bus: EventBus) -> None:
        self.datastore = datastore
        self.counters = NacmCounters()
        self.policy = self._compile()
        self._unsubscribe = bus.subscribe(self._on_commit, CommitEvent)

    def close(self) -> None:
        self._unsubscribe()

    def _compile(self) -> NacmPolicy:
        policy = NacmPolicy.from_tree(self.datastore.get_config("running"))
        for problem in policy.problems:
            log.warning("NACM: %s", problem)
        return policy

    def _on_commit(self, event: CommitEvent) -> None:
        if event.datastore == "running" and any(c.path.startswith(_NACM_PREFIX) for c in event.changes):
            self.policy = self._compile()

    # ------------------------------------------------------------------ decisions
    def for_user(self, username: str, groups: Sequence[str]) -> UserAccess:
        """The user's access under the current policy (cached by the policy)."""
        return self.policy.for_user(username, groups)

    def check_exec(self, access: UserAccess, module: str, operation: str) -> None:
        """RFC 8341 s3.4.4; raises access-denied (counted)."""
        if access.unrestricted or access.may_exec(module, operation):
            return
        self.counters.operation_denied()
        raise DatastoreError(ErrorKind.ACCESS_DENIED, f"access to operation {module}:{operation} is denied")

    def write_check(self, username: str, groups: Sequence[str]) -> Callable[[Sequence[Change]], None]:
        """For `SessionInfo.authorize`: checks a transaction's change list (s3.4.5) against the
        policy in force when the transaction runs."""

        def authorize(changes: Sequence[Change]) -> None:
            access = self.for_user(username, groups)
            denied = access.first_denied_write(changes)
            if denied is not None:
                self.counters.data_write_denied()
                raise DatastoreError(ErrorKind.ACCESS_DENIED, "write access to this data is denied", denied.path)

        return authorize

    def filter_read(self, access: UserAccess, tree: DataTree) -> DataTree:
        """The data the user may read (RFC 8341 s3.2.4: the rest is silently omitted)."""
        return tree if access.unrestricted else access.filter_read(tree)

    def may_notify(self, access: UserAccess, module: str, notification: str) -> bool:
        if access.unrestricted or access.may_notify(module, notification):
            return True
        self.counters.notification_denied()
        return False

    def state(self) -> dict:
        """The ``/nacm`` counters as JSON-IETF, for the operational datastore."""
        return self.counters.state()
