"""RFC 6241 s8.4 confirmed commit: who may confirm, extend or cancel a pending one, and the
rpc-errors that say why not.

The datastore keeps the mechanism (the rollback point, the timer, what survives a restart) and
speaks no protocol; persist-ids, session ownership and their ``/ietf-netconf:`` error paths are
NETCONF's, so they are checked here, at its edge, before the datastore is asked. Nothing awaits
between the check and the datastore's call, so the pending commit checked is the one acted on.
"""

from __future__ import annotations

from qstrata.agents.datastore.store import PendingCommit

from .errors import BASE_NS, ErrorTag, ErrorType, RpcError

_PERSIST_ID = {"path": "/ietf-netconf:persist-id", "path_namespaces": {"ietf-netconf": BASE_NS}}


def check_commit(pending: PendingCommit | None, session_id: int, persist_id: str | None) -> None:
    """A commit while a confirmed commit is pending confirms (or extends) it: with the right
    persist-id when it was made with persist (RFC 6241 s8.4.5.1), else only from its session."""
    if pending is None:
        if persist_id is not None:
            raise RpcError(ErrorTag.INVALID_VALUE, "no confirmed commit is pending for that persist-id", **_PERSIST_ID)
        return
    if pending.persist is not None:
        if persist_id != pending.persist:
            raise RpcError(ErrorTag.INVALID_VALUE, "persist-id does not match the pending confirmed commit",
                           **_PERSIST_ID)
    elif pending.session_id != session_id and persist_id is None:
        raise RpcError(ErrorTag.IN_USE, "a confirmed commit of another session is pending",
                       error_type=ErrorType.PROTOCOL)


def check_cancel(pending: PendingCommit | None, session_id: int, persist_id: str | None) -> None:
    """cancel-commit (RFC 6241 s8.4.4.1): the pending commit's persist-id, or its own session."""
    if pending is None:
        raise RpcError(ErrorTag.OPERATION_FAILED, "no confirmed commit is pending")
    if pending.persist is not None and persist_id != pending.persist:
        raise RpcError(ErrorTag.INVALID_VALUE, "persist-id does not match the pending confirmed commit", **_PERSIST_ID)
    if pending.persist is None and pending.session_id != session_id:
        raise RpcError(ErrorTag.OPERATION_FAILED, "the pending confirmed commit belongs to another session")
