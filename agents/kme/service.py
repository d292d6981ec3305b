"""The KME core: ETSI GS QKD 014 semantics without HTTP.

`status`, `enc_keys` and `dec_keys` take the caller's SAE ID (from its client certificate: the
front end's job) and the request's fields, and return the Status object's fields or the keys,
or raise `KmeError` with a neutral kind and the figures behind it. Everything a request may do
is checked here, in this order, so every refusal names the first thing wrong:

1. the KME can serve at all: a key source (the device's `KeySupply`) and a configured kme-id;
2. the caller is an SAE attached to this KME (qstrata-ss `kme/saes`);
3. the request is within the announced limits (`kme/limits`), names no mandatory extension
   (this KME supports none: ETSI GS QKD 014 says to refuse), and its slaves are known SAEs of one
   KME;
4. a `qkd_app` allows it: `server_app_id` the caller, every slave among its `client_app_id`;
5. the application session's token bucket holds the bits asked;
6. the first hop's key store holds them, and so does every later hop (`relay`).

Slaves attached to this KME too (a pair of local SAEs, or an SAE paired with itself: a `qkd_app`
whose `client_app_id` is its own `server_app_id`) get keys delivered locally: taken from one of
this node's own link stores (`relay.local_store`), held in this KME's journal for the slaves, no
relay. Keys given to a master are in the slaves' KME's journal before the master sees them; a
slave's keys are marked delivered in the journal before it sees them (`registry`). Figures per
application, for the whole KME, per relay hop and per session bucket are the KME's part of the
agent's operational state (`read_state`). Counters change with every request and are read when
someone reads the state (gNMI samples them); what is not a number -- a new application's or
hop's entry, a refusal reason seen for the first time, the route a pair's keys took -- is
announced on the agent's event bus when it changes (`DeviceEvent` "state", as the twins announce
a link's status), so gNMI on-change and TARGET_DEFINED subscribers get it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qstrata.agents.devices.base import KeyRef, KeySupply, NoKeySource
from qstrata.agents.events import CommitEvent, DeviceEvent, EventBus
from qstrata.bindings.tree import DataTree

from . import material, relay
from .config import QKD, SS, App, ConfigReader, KmeConfig
from .errors import KmeError
from .figures import Delivery, Hop, TokenBucket
from .key_ids import is_uuid, new_key_ids
from .registry import Registry, spans

log = logging.getLogger("qstrata.kme")

JOURNAL = "kme.journal"
EXPIRY_CHECK_S = 30.0


def _split(ids: list[str], bits: bytes, size: int) -> list[tuple[str, bytes]]:
    """A block's bits as (key_ID, key) pairs of `size` bits each."""
    return list(zip(ids, material.cut(bits, size // 8), strict=True))


class KmeService:
    """One agent's KME. `driver` is its device (a `KeySupply`, or anything else: no key source);
    `running` reads the agent's running configuration; `bus` brings its commits."""

    def __init__(self, driver: object, state_dir: Path, running: Callable[[], DataTree],
                 bus: EventBus | None = None) -> None:
        self.supply: KeySupply | None = driver if isinstance(driver, KeySupply) else None
        self.registry = Registry(Path(state_dir) / JOURNAL)
        self.reader = ConfigReader(running)
        self.bus = bus
        self.config = KmeConfig()
        self.total = Delivery()
        self.apps: dict[str, Delivery] = {}
        self.hops: dict[str, Hop] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self._announced_hops: dict[str, str] = {}
        """qkdl-id -> next-hop-kme of the hops subscribers were told of."""
        self._served: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._unsubscribe: Callable[[], None] | None = None

    # -- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self.registry.load()
        self.config = self.reader.load()
        self._sync_buckets()
        await self._serve_peer()
        if self.bus is not None:
            self._unsubscribe = self.bus.subscribe(self._on_commit, CommitEvent)
        self._tasks.append(asyncio.create_task(self._expire_loop(), name="kme expiry"))
        log.info("KME %s: %s; %d keys owed to slave SAEs", self.config.kme_id or "(no kme-id configured)",
                 "key source: the device" if self.supply else "no key source", len(self.registry.owed))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.supply is not None and self._served is not None:
            with contextlib.suppress(Exception):
                await self.supply.serve_peer(self._served, None)
        await self.registry.close()

    def _on_commit(self, event: CommitEvent) -> None:
        if event.datastore != "running" or not self.reader.update(self.config, event.changes):
            return
        self._sync_buckets()
        if self.config.kme_id != self._served:
            self._tasks.append(asyncio.create_task(self._serve_peer(), name="kme peer"))

    async def _serve_peer(self) -> None:
        if self.supply is None or self.config.kme_id == self._served:
            return
        try:
            if self._served is not None:
                await self.supply.serve_peer(self._served, None)
            self._served = self.config.kme_id
            if self._served is not None:
                await self.supply.serve_peer(self._served, self._on_peer)
        except Exception as exc:  # a world service going away: the agent stops with it anyway
            log.warning("KME: cannot open the channel to other KMEs: %s", exc)

    async def _on_peer(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return await relay.handle(self, message)
        finally:
            self._announce(self._hop_changes())

    def _sync_buckets(self) -> None:
        for sid in [s for s in self.buckets if s not in self.config.sessions]:
            del self.buckets[sid]
        for sid, session in self.config.sessions.items():
            bucket = self.buckets.get(sid)
            if bucket is None:
                self.buckets[sid] = TokenBucket(session.rate, session.burst)
            elif (bucket.rate, bucket.burst) != (session.rate, session.burst):
                bucket.reshape(session.rate, session.burst)

    async def _expire_loop(self) -> None:
        while True:
            try:
                await self.registry.expire()
            except OSError as exc:
                log.error("KME: expiring keys failed: %s", exc)
            await asyncio.sleep(EXPIRY_CHECK_S)

    # -- checks --------------------------------------------------------------------------------

    def ready(self) -> tuple[KeySupply, str]:
        if self.supply is None:
            raise KmeError("no-key-source", "no key source: this node's device delivers no key (an empty device)")
        if self.config.kme_id is None:
            raise KmeError("internal", "this node has no KME configured (qstrata-ss service-stratum/kme/kme-id)")
        return self.supply, self.config.kme_id

    def _caller(self, sae: str | None) -> None:
        if not sae:
            raise KmeError("unauthorized", "no SAE ID: the client certificate has no common name")
        if not self.config.is_local(sae):
            raise KmeError("unauthorized", f"SAE {sae} is not attached to this KME ({self.config.kme_id}): add it to "
                           "qstrata-ss service-stratum/kme/saes with this kme-id")

    def _size(self, size: int | None) -> int:
        limits = self.config.limits
        if size is None:
            return limits.default_key_size
        if size % 8:
            raise KmeError("bad-request", f"size {size} is not a multiple of 8", [{"size": size}])
        if not limits.min_key_size <= size <= limits.max_key_size:
            raise KmeError("bad-request", f"size {size} is outside {limits.min_key_size}..{limits.max_key_size} bits",
                           [{"size": size, "min_key_size": limits.min_key_size, "max_key_size": limits.max_key_size}])
        return size

    def _target(self, slaves: Sequence[str]) -> str:
        kmes = set()
        for slave in slaves:
            kme = self.config.saes.get(slave)
            if kme is None:
                raise KmeError("bad-request", f"slave SAE {slave} is unknown to this KME (no qstrata-ss kme/saes entry)",
                               [{"slave_SAE_ID": slave}])
            kmes.add(kme)
        if len(kmes) > 1:
            raise KmeError("bad-request", "the slave SAEs are attached to different KMEs; one request serves slaves "
                           "of one KME", [{"slave_SAE_ID": s, "KME_ID": self.config.saes[s]} for s in slaves])
        return kmes.pop()

    def _app(self, master: str, slaves: Sequence[str]) -> App:
        app = self.config.app_for(master, slaves)
        if app is None:
            raise KmeError("unauthorized", f"SAE {master} may not get keys for {', '.join(slaves)}: no qkd_app has "
                           f"server_app_id {master} and these client_app_ids")
        return app

    # -- ETSI GS QKD 014 -----------------------------------------------------------------------

    async def status(self, caller: str | None, slave: str) -> dict[str, Any]:
        supply, me = self.ready()
        self._caller(caller)
        assert caller is not None
        self._app(caller, [slave])
        target = self._target([slave])
        limits = self.config.limits
        if target == me:
            _, local = await relay.local_store(self.config, supply)
            stock = {"stored_bits": local.stored_bits, "capacity_bits": local.capacity_bits}
        else:
            stock = await relay.path_stock(self.config, supply, me, target, [])
        size = limits.default_key_size
        return {"source_KME_ID": me, "target_KME_ID": target, "master_SAE_ID": caller, "slave_SAE_ID": slave,
                "key_size": size, "stored_key_count": stock["stored_bits"] // size,
                "max_key_count": stock["capacity_bits"] // size, "max_key_per_request": limits.max_key_per_request,
                "max_key_size": limits.max_key_size, "min_key_size": limits.min_key_size,
                "max_SAE_ID_count": limits.max_sae_id_count}

    async def enc_keys(self, caller: str | None, slave: str, number: int | None = None, size: int | None = None,
                       additional_slaves: Sequence[str] = (),
                       extension_mandatory: Sequence[Any] | None = None) -> list[tuple[str, bytes]]:
        """New keys for master `caller` and its slaves: (key_ID, key) pairs."""
        started = time.perf_counter()
        app: App | None = None
        try:
            supply, me = self.ready()
            self._caller(caller)
            assert caller is not None
            limits = self.config.limits
            if extension_mandatory:
                names = sorted({str(k) for e in extension_mandatory if isinstance(e, dict) for k in e} or {"?"})
                raise KmeError("bad-request", f"unsupported mandatory extension(s): {', '.join(names)} (this KME "
                               "supports none)", [{"extension_mandatory": list(extension_mandatory)}])
            slaves = [slave, *additional_slaves]
            if len(additional_slaves) > limits.max_sae_id_count:
                raise KmeError("bad-request", f"{len(additional_slaves)} additional slave SAE IDs, at most "
                               f"{limits.max_sae_id_count}", [{"max_SAE_ID_count": limits.max_sae_id_count}])
            if len(set(slaves)) != len(slaves):
                raise KmeError("bad-request", "the slave SAE IDs repeat one another", [{"slave_SAE_ID": s}
                                                                                      for s in slaves])
            number = 1 if number is None else number
            if not 1 <= number <= limits.max_key_per_request:
                raise KmeError("bad-request", f"number {number} is outside 1..{limits.max_key_per_request}",
                               [{"number": number, "max_key_per_request": limits.max_key_per_request}])
            size = self._size(size)
            target = self._target(slaves)
            app = self._app(caller, slaves)
            bits = number * size
            bucket = self.buckets.get(app.session_id) if app.session_id else None
            if bucket is not None and not bucket.take(bits):
                raise KmeError("rate-limited", f"rate limited: the session's token bucket holds {int(bucket.tokens)} "
                               f"bits, {bits} asked (rate {bucket.rate} bit/s, burst {bucket.burst} bits)",
                               [{"session_id": app.session_id, "tokens": int(bucket.tokens), "asked_bits": bits,
                                 "rate": bucket.rate, "burst": bucket.burst}])
            try:
                keys, route = await self._deliver(supply, me, caller, slaves, target, number, size)
            except BaseException:
                if bucket is not None:
                    bucket.give_back(bits)
                raise
        except KmeError as exc:
            self._count(app, exc.kind, started)
            raise
        self._count(app, None, started, len(keys), len(keys) * size, route)
        return keys

    async def _deliver(self, supply: KeySupply, me: str, master: str, slaves: list[str], target: str, number: int,
                       size: int) -> tuple[list[tuple[str, bytes]], tuple[str, ...]]:
        if target == me:
            return await self._deliver_local(supply, me, master, slaves, number, size)
        next_kme, link = relay.next_hop(self.config, target)
        block = await relay.take(supply, self.hops, link, next_kme, number, size)
        ids = new_key_ids(number)
        reserved = self.registry.reserve(ids, master, slaves, size, block)
        reply = await relay.send(supply, next_kme, {"op": "relay", "ids": ids, "m": master, "s": slaves, "size": size,
                                                    "target": target, "ref": material.ref_to_json(block), "x": None,
                                                    "route": [me]})
        await reserved
        await self.registry.confirm(ids)
        (bits,) = await supply.key_bits([block])
        return _split(ids, bits, size), tuple(str(k) for k in reply.get("route") or ())

    async def _deliver_local(self, supply: KeySupply, me: str, master: str, slaves: list[str], number: int,
                             size: int) -> tuple[list[tuple[str, bytes]], tuple[str, ...]]:
        """Keys for slaves attached to this KME: this KME is the master's and the slaves' KME at
        once, so the assignment it journals for the slaves (durable before it returns) is all the
        master's answer waits for; no reservation, no relay."""
        link, _ = await relay.local_store(self.config, supply)
        block = await relay.take(supply, None, link, self.config.links.get(link) or me, number, size)
        ids = new_key_ids(number)
        await self.registry.assign(ids, master, slaves, size, block, None,
                                   time.time() + self.config.limits.key_expiry_s)
        (bits,) = await supply.key_bits([block])
        return _split(ids, bits, size), (me,)

    async def accept(self, ids: list[str], master: str, slaves: list[str], size: int, ref: KeyRef,
                     cipher: bytes | None) -> None:
        """This KME is the slaves' KME of a relay: hold the keys (durably) for its slave SAEs."""
        for slave in slaves:
            if not self.config.is_local(slave):
                raise KmeError("bad-request", f"slave SAE {slave} is not attached to KME {self.config.kme_id}",
                               [{"slave_SAE_ID": slave}])
        if self.registry.known(ids):
            raise KmeError("internal", "a key_ID relayed here is already in use")
        expires = time.time() + self.config.limits.key_expiry_s
        await self.registry.assign(ids, master, slaves, size, ref, cipher, expires)

    async def dec_keys(self, caller: str | None, master: str, key_ids: Sequence[str]) -> list[tuple[str, bytes]]:
        """The keys under `key_ids` for slave `caller` of `master`, each once."""
        started = time.perf_counter()
        app: App | None = None
        try:
            supply, _ = self.ready()
            self._caller(caller)
            assert caller is not None
            app = self.config.app_for(master, [caller])
            if not key_ids:
                raise KmeError("bad-request", "no key_ID asked")
            if len(key_ids) > self.config.limits.max_key_per_request:
                raise KmeError("bad-request", f"{len(key_ids)} key_IDs, at most {self.config.limits.max_key_per_request}"
                               " per request")
            owed = self.registry.claim(list(key_ids), master, caller)
            if owed is None:  # (a key_ID claimed is one of ours: a UUID; only a refusal reads them)
                for key_id in key_ids:
                    if not is_uuid(key_id):
                        raise KmeError("bad-request", f"key_ID {str(key_id)[:80]!r} is not a UUID")
                raise KmeError("unauthorized", f"the key_IDs asked are not all available to SAE {caller} from master "
                               f"{master}: unknown, already delivered, or for another SAE")
            await self.registry.delivered(list(key_ids), caller)
            runs = spans(owed)
            try:
                bits = await supply.key_bits([ref for ref, _, _ in runs])
            except NoKeySource as exc:
                raise KmeError("no-key-source", f"no key source: {exc.message}") from None
            plain: list[bytes] = []
            for run_bits, (_, cipher, step) in zip(bits, runs, strict=True):
                plain += material.cut(material.xor(run_bits, cipher) if cipher else run_bits, step)
            keys = list(zip(key_ids, plain, strict=True))
        except KmeError as exc:
            self._count(app, exc.kind, started)
            raise
        self._count(app, None, started, len(keys), sum(len(k) for _, k in keys) * 8)
        return keys

    def _count(self, app: App | None, refused: str | None, started: float, keys: int = 0, bits: int = 0,
               route: tuple[str, ...] = ()) -> None:
        latency = int((time.perf_counter() - started) * 1e6)
        figures = [(self.total, f"/{SS}/kme/key-delivery")]
        changed = self._hop_changes()
        if app is not None:
            path = f"/{QKD}/qkd_applications/qkd_app[app_id='{app.app_id}']/qstrata-ss:key-delivery"
            fig = self.apps.get(app.app_id)
            if fig is None:
                fig = self.apps[app.app_id] = Delivery()
                changed.append(path)
            figures.append((fig, path))
            if route and fig.route != route:
                fig.route = route
                changed.append(f"{path}/route")
        for fig, path in figures:
            if refused is None:
                fig.served(keys, bits, latency)
                continue
            if refused not in fig.refused:
                changed.append(f"{path}/refused[reason='{refused}']")
            fig.refuse(refused, latency)
        self._announce(changed)

    def _hop_changes(self) -> list[str]:
        """Paths of relay hops that are new, or lead to another KME, since last announced."""
        if len(self.hops) == len(self._announced_hops) and all(
                self._announced_hops.get(link) == hop.next_hop for link, hop in self.hops.items()):
            return []
        changed = [f"/{SS}/kme/key-relay/hop[qkdl-id='{link}']" for link, hop in self.hops.items()
                   if self._announced_hops.get(link) != hop.next_hop]
        self._announced_hops = {link: hop.next_hop for link, hop in self.hops.items()}
        return changed

    def _announce(self, paths: list[str]) -> None:
        """Tell the agent's subscribers that the KME's state changed under `paths`."""
        if paths and self.bus is not None:
            self.bus.publish(DeviceEvent("state", paths=tuple(paths), time_ns=time.time_ns()))

    # -- state ---------------------------------------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        """The KME's figures as JSON-IETF, merged by the agent over running and after the device's
        state. The token buckets of sessions that key delivery applications use are this KME's
        (they police ETSI GS QKD 014 requests), so their `tokens`, `admitted` and `rejected` are
        reported from here and take the place of the twin's figures for those sessions (the twin's
        copy of a bucket polices only the service units it simulates)."""
        if self.config.kme_id is None:
            return {}
        kme: dict[str, Any] = {"key-delivery": self.total.to_json()}
        if self.hops:
            kme["key-relay"] = {"hop": [hop.to_json(link) for link, hop in self.hops.items()]}
        policed = {app.session_id for app in self.config.apps.values() if app.session_id and app.master and app.slaves}
        sessions = [b.to_json(sid) for sid, b in self.buckets.items() if sid in policed]
        if sessions:
            kme["sessions"] = {"session": sessions}
        state: dict[str, Any] = {SS: {"kme": kme}}
        apps = [{"app_id": app_id, "qstrata-ss:key-delivery": fig.to_json()}
                for app_id, fig in self.apps.items() if app_id in self.config.apps]
        if apps:
            state[QKD] = {"qkd_applications": {"qkd_app": apps}}
        return state
