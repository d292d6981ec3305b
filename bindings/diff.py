"""Typed changes between two data trees.

The datastore, NACM, device drivers and gNMI on-change all consume the same `Change` list, so
that access control and device hooks see exactly what a transaction does, whatever front end
asked for it (sysrepo's "check the diff, not the request").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ChangeOp = Literal["create", "delete", "modify"]


@dataclass(frozen=True, slots=True)
class Change:
    """One node that differs between two trees.

    `path` is a libyang data path with module-qualified top node and list keys, e.g.
    ``/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='…']/qkdl_enable``.
    For leaves `old`/`new` are the canonical string values; for containers and list entries they
    are JSON-IETF dicts of the subtree (``None`` on the missing side).
    """

    op: ChangeOp
    path: str
    old: Any = None
    new: Any = None
