"""Keys hop by hop along the KMEs' forwarding tables (trusted-node relay).

The master's KME takes the keys from its first hop's link store and sends the key_IDs with the
block's reference to the next KME. A trusted node reads the keys under that reference (its end
of the same link), takes as much from its own next hop's store and sends the keys on encrypted
with that key (XOR: a one-time pad, so every hop consumes key), with the new reference. The
slaves' KME recovers the keys (it stores the reference and the ciphertext, never the keys) and
answers once its journal holds them; the answer travels back along the route. Anything that
fails on the way fails the request with the figures of where it failed: key taken is lost,
never re-used, never invented.

Peer messages (JSON): ``relay {ids, m, s, size, target, ref, x, route}`` -> ``{route}``, and
``stock {target, route}`` -> ``{stored_bits, capacity_bits, route}`` (the smallest store on the
rest of the path); a refusal comes back as ``{error: {kind, message, details}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qstrata.agents.devices.base import (
    KeyCompromised,
    KeyRef,
    KeyStock,
    KeySupply,
    KeyUnavailable,
    NoKeySource,
    PeerUnreachable,
)

from . import material
from .config import KmeConfig
from .errors import KmeError
from .figures import Hop

if TYPE_CHECKING:
    from .service import KmeService

MAX_HOPS = 16


def next_hop(config: KmeConfig, target: str) -> tuple[str, str]:
    """(next KME, QKD link to it) towards KME `target`."""
    route = config.route_to(target)
    if route is None:
        raise KmeError("peer-unreachable", f"no route to KME {target}: no urn-prefix of this KME's forwarding table "
                       f"matches {material.kme_urn(target)}", [{"target_KME_ID": target}])
    link = config.link_of(route)
    if link is None:
        raise KmeError("peer-unreachable", f"the route {route.prefix} to KME {route.next_hop} names no qkd-link, and "
                       "no QKD link of this node goes to that KME", [{"next_hop_KME_ID": route.next_hop}])
    return route.next_hop, link


def compromised(exc: KeyCompromised, link: str) -> KmeError:
    """A link held back after an eavesdropper's attack (the device's message names it)."""
    stored = exc.stock.stored_bits if exc.stock else 0
    return KmeError("link-compromised", exc.message, [{"qkdl_id": link, "stored_bits": stored}])


async def local_store(config: KmeConfig, supply: KeySupply) -> tuple[str, KeyStock]:
    """The store a pair of SAEs both attached to this KME takes its keys from (local delivery: no
    route, no relay): of this node's QKD links that have a key store, the one holding the most key
    now (ties: the lowest qkdl_id). Any of them is as good as another for the pair (each link's key
    is shared with one neighbouring trusted node, as on every relay), so the KME takes the one that
    can serve the most: a request is refused only when no store of the node could serve it, and
    local use drains the fullest store first, leaving the scarcer ones to relays, which have no
    choice of link."""
    best: tuple[str, KeyStock] | None = None
    held: KmeError | None = None
    for link in sorted(config.links):
        try:
            stock = await supply.key_stock(link)
        except NoKeySource as exc:
            raise KmeError("no-key-source", f"no key source: {exc.message}") from None
        except KeyCompromised as exc:  # another link may serve; if none can, this is why
            held = held or compromised(exc, link)
            continue
        except KeyUnavailable:
            continue
        if best is None or stock.stored_bits > best[1].stored_bits:
            best = (link, stock)
    if best is None and held is not None:
        raise held
    if best is None:
        raise KmeError("not-enough-key", "no key store: none of this node's QKD links "
                       f"({', '.join(sorted(config.links)) or 'none configured'}) has one yet",
                       [{"qkdl_id": link} for link in sorted(config.links)])
    return best


async def take(supply: KeySupply, hops: dict[str, Hop] | None, link: str, next_kme: str, number: int,
               size: int) -> KeyRef:
    """`number` keys of `size` bits from the store of `link` (towards `next_kme`), counted on its
    hop (`hops`; None: local delivery, no relay hop)."""
    try:
        ref = await supply.take_key(link, number * size)
    except NoKeySource as exc:
        raise KmeError("no-key-source", f"no key source: {exc.message}") from None
    except KeyCompromised as exc:
        raise compromised(exc, link) from None
    except KeyUnavailable as exc:
        stored = exc.stock.stored_bits if exc.stock else 0
        raise KmeError("not-enough-key", f"not enough key: {stored // size} keys of {size} bits stored on QKD link "
                       f"{link} (to KME {next_kme}), {number} asked",
                       [{"qkdl_id": link, "next_hop_KME_ID": next_kme, "stored_bits": stored,
                         "stored_key_count": stored // size, "key_size": size, "asked": number}]) from None
    if hops is None:
        return ref
    hop = hops.setdefault(link, Hop(next_kme))
    hop.next_hop = next_kme
    hop.keys += number
    hop.bits += number * size
    return ref


async def send(supply: KeySupply, next_kme: str, message: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = await supply.peer_call(next_kme, message)
    except PeerUnreachable as exc:
        raise KmeError("peer-unreachable", f"KME {next_kme} is unreachable: {exc}", [{"KME_ID": next_kme}]) from None
    if "error" in reply:
        raise KmeError.from_json(reply["error"])
    return reply


async def handle(kme: KmeService, message: dict[str, Any]) -> dict[str, Any]:
    """A peer KME's message; refusals are answered as errors, never raised to the channel."""
    try:
        supply, me = kme.ready()
        route = message.get("route")
        if not isinstance(route, list) or me in route or len(route) > MAX_HOPS:
            raise KmeError("peer-unreachable", f"routing loop or route too long at KME {me}: {route}")
        op = message.get("op")
        if op == "relay":
            return await _relay(kme, supply, me, message, route)
        if op == "stock":
            return await _stock(kme, supply, me, message, route)
        raise KmeError("internal", f"unknown peer message {op!r}")
    except KmeError as exc:
        return {"error": exc.to_json()}
    except (KeyError, TypeError, ValueError) as exc:
        return {"error": KmeError("internal", f"malformed peer message: {exc}").to_json()}


async def _relay(kme: KmeService, supply: KeySupply, me: str, message: dict[str, Any],
                 route: list[str]) -> dict[str, Any]:
    ids, size, target = list(message["ids"]), int(message["size"]), str(message["target"]).lower()
    incoming = material.ref_from_json(message["ref"])
    cipher = bytes.fromhex(message["x"]) if message.get("x") else None
    if target == me:
        await kme.accept(ids, str(message["m"]), [str(s) for s in message["s"]], size, incoming, cipher)
        return {"route": [*route, me]}
    next_kme, link = next_hop(kme.config, target)
    (keys,) = await supply.key_bits([incoming])
    if cipher is not None:
        keys = material.xor(keys, cipher)
    outgoing = await take(supply, kme.hops, link, next_kme, len(ids), size)
    (pad,) = await supply.key_bits([outgoing])
    return await send(supply, next_kme, {**message, "ref": material.ref_to_json(outgoing),
                                         "x": material.xor(keys, pad).hex(), "route": [*route, me]})


async def _stock(kme: KmeService, supply: KeySupply, me: str, message: dict[str, Any],
                 route: list[str]) -> dict[str, Any]:
    return await path_stock(kme.config, supply, me, str(message["target"]).lower(), route)


async def path_stock(config: KmeConfig, supply: KeySupply, me: str, target: str, route: list[str]) -> dict[str, Any]:
    """The smallest store (stored and capacity bits) on the path from this KME to `target`."""
    next_kme, link = next_hop(config, target)
    try:
        stock = await supply.key_stock(link)
    except NoKeySource as exc:
        raise KmeError("no-key-source", f"no key source: {exc.message}") from None
    except KeyCompromised as exc:
        raise compromised(exc, link) from None
    except KeyUnavailable as exc:
        raise KmeError("not-enough-key", f"QKD link {link} (to KME {next_kme}) has no key store: {exc.message}",
                       [{"qkdl_id": link}]) from None
    out = {"stored_bits": stock.stored_bits, "capacity_bits": stock.capacity_bits, "route": [*route, me]}
    if next_kme != target:
        rest = await send(supply, next_kme, {"op": "stock", "target": target, "route": [*route, me]})
        out = {"stored_bits": min(out["stored_bits"], int(rest["stored_bits"])),
               "capacity_bits": min(out["capacity_bits"], int(rest["capacity_bits"])), "route": rest["route"]}
    else:
        out["route"] = [*route, me, target]
    return out
