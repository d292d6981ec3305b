"""What crosses the world service's socket, as JSON: the vocabulary of `DeviceDriver`
(changes, inventories, device events, refusals) and the names of the requests. Pure.

Requests carry an ``id`` and an ``op``; the reply carries the same ``id`` and either ``ok`` (an
object) or ``error`` (``{"kind": ..., "message": ...}``). Pushes from the service carry
``push`` instead of an ``id``:

    attach   {node, kind, protocol}        -> ok {modules, config, resumed, clock, state}
    prepare  {txn, changes, trees?}        -> ok {} | error refusal {message, path} | error need {trees}
    commit   {txn, trees?}                 -> ok {clock, state} | error need {trees}
    abort    {txn}                         -> ok {}
    detach   {}                            -> ok {}   (the agent stops: so does its device)
    plant    {call, args}                  -> ok {}   (the scenario: lights a channel, bends a fibre, taps one)
    push state  {clock, state?}            (after every world tick; no state: unchanged)
    push event  {event}                    (a DeviceEvent, after the state of its tick)

The key capability (`base.KeySupply`) of a device that makes key; errors ``no-key`` (with the
store's ``stock`` when there is one), ``key-compromised`` (the link is held back after an attack,
with the stock too) and ``no-key-source`` (the device makes none):

    key_take    {qkdl_id, nbits}           -> ok {ref: [qkdl_id, epoch, offset, nbytes]}
    key_stock   {qkdl_id}                  -> ok {stock: [stored_bits, capacity_bits]}
    key_secret  {qkdl_id}                  -> ok {secret: HEX}   (the link's twin secret: the agent
                                              computes key bits from references itself, `key_stream`)
    peer_serve  {kme_id, serve}            -> ok {}   (this agent answers for KME kme_id, or stops)
    peer_call   {kme_id, message}          -> ok {reply} | error peer-unreachable
    and from the service to the agent serving kme_id (a request in the other direction):
    peer        {kme_id, message}          -> ok {reply} | error {kind, message}

``clock`` is the world's time the values belong to (`CLOCK_FIELDS`). A transaction's whole old
and new configurations (``trees``) are sent only when the twin asks for them (``need``): commit
cost stays proportional to the change, as it is in one process.
"""

from __future__ import annotations

from typing import Any

from qstrata.agents.devices.base import DeviceEvent, DeviceRefusal, Inventory, KeyRef, KeyStock
from qstrata.bindings.diff import Change

PROTOCOL = 3
"""Bumped on any change a peer of the previous version would misread."""

CLOCK_FIELDS = ("epoch_unix_ns", "now_ns", "settled_ns", "settled_wall_ns")
TREES = ("old_config", "new_config")
OPS = ("attach", "prepare", "commit", "abort", "detach", "plant", "key_take", "key_stock", "key_secret", "peer_serve",
       "peer_call")
PLANT_CALLS = ("set_launch_power", "add_loss", "set_eavesdropper")
"""What a scenario may do to the plant (`plant_control.PlantControl`)."""

_CHANGE_OPS = frozenset(("create", "delete", "modify"))


class ProtocolError(Exception):
    """A message that does not say what this protocol says (a bug on one side, or another program)."""


def change_to_wire(change: Change) -> list[Any]:
    return [change.op, change.path, change.old, change.new]


def change_from_wire(raw: Any) -> Change:
    if not (isinstance(raw, list) and len(raw) == 4 and raw[0] in _CHANGE_OPS and isinstance(raw[1], str)):
        raise ProtocolError(f"not a change: {str(raw)[:200]}")
    return Change(raw[0], raw[1], raw[2], raw[3])


def changes_from_wire(raw: Any) -> tuple[Change, ...]:
    if not isinstance(raw, list):
        raise ProtocolError("changes must be a list")
    return tuple(change_from_wire(item) for item in raw)


def event_to_wire(event: DeviceEvent) -> dict[str, Any]:
    return {"kind": event.kind, "data": event.data, "paths": list(event.paths), "time_ns": event.time_ns}


def event_from_wire(raw: Any) -> DeviceEvent:
    if not isinstance(raw, dict) or raw.get("kind") not in ("notification", "state"):
        raise ProtocolError(f"not a device event: {str(raw)[:200]}")
    return DeviceEvent(raw["kind"], dict(raw.get("data") or {}), tuple(raw.get("paths") or ()),
                       int(raw.get("time_ns") or 0))


def inventory_to_wire(inventory: Inventory) -> dict[str, Any]:
    return {"modules": list(inventory.modules), "config": inventory.config}


def inventory_from_wire(raw: dict[str, Any]) -> Inventory:
    modules = raw.get("modules")
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ProtocolError("an inventory names its modules")
    return Inventory(tuple(modules), dict(raw.get("config") or {}))


def refusal_to_wire(exc: DeviceRefusal) -> dict[str, Any]:
    return {"kind": "refusal", "message": exc.message, "path": exc.path}


def error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "message": message, **extra}


def clock_of(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ProtocolError("a clock is an object")
    try:
        return {name: int(raw[name]) for name in CLOCK_FIELDS}
    except (KeyError, TypeError, ValueError):
        raise ProtocolError(f"a clock has {', '.join(CLOCK_FIELDS)}") from None


def ref_to_wire(ref: KeyRef) -> list[Any]:
    return [ref.qkdl_id, ref.epoch, ref.offset, ref.nbytes]


def ref_from_wire(raw: Any) -> KeyRef:
    if not (isinstance(raw, list) and len(raw) == 4 and isinstance(raw[0], str) and isinstance(raw[1], str)
            and all(isinstance(x, int) and x >= 0 for x in raw[2:])):
        raise ProtocolError(f"not a key reference: {str(raw)[:200]}")
    return KeyRef(raw[0], raw[1], raw[2], raw[3])


def stock_to_wire(stock: KeyStock | None) -> list[int] | None:
    return None if stock is None else [stock.stored_bits, stock.capacity_bits]


def stock_from_wire(raw: Any) -> KeyStock | None:
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, int) for x in raw)):
        raise ProtocolError(f"not a key stock: {str(raw)[:200]}")
    return KeyStock(raw[0], raw[1])
