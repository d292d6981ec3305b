"""Several collector instances share the target set through NATS JetStream key-value buckets.

No protocol of our own: two KV buckets whose entries expire (bucket TTL = `ttl`):

* ``qstrata-collector-members``: each live instance puts its id every round (a heartbeat); an
  instance that dies disappears from it `ttl` seconds after its last round;
* ``qstrata-collector-leases``: one key per target, its value the id of the instance that
  collects it. Taken with `create` (succeeds only if nobody holds it), renewed with a
  compare-and-set `update` on the revision the holder knows, given back with a compare-and-set
  `delete`. A dead holder's lease expires `ttl` seconds after its last renewal.

Who should hold a target is decided by rendezvous hashing over the live members (each target
goes to the member with the highest hash of (target, member)), so instances agree without
talking, and a member joining or leaving moves only its share. The holder gives a lease back
when the hash prefers another live member; the preferred member takes it at its next round.

Exactly one while NATS answers: a lease is held by at most one instance at a time (the KV's
compare-and-set). A lease that cannot be renewed because NATS is unreachable is not a lease
another instance took: the holder keeps collecting what it holds (an output outage must not blind
the collector) until NATS answers again and says otherwise (the entry is someone else's). So an
instance cut off from a NATS the others still reach may collect a target twice until it is back:
at least once, not at most once. Takeover time after a crash: at most `ttl` + one round
(defaults 5 s + 1 s).

The buckets are file-backed: a restart of NATS keeps the members and who holds what (the
division of work goes on as it was); a bucket that is gone anyway (deleted, or a memory bucket of
an older version) is created again at the next round. Entries that expired during an outage are
taken again by their holder when NATS is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable

import nats
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    ServiceUnavailableError,
)

from .natsutil import NatsUnavailable
from .tasks import cancel_and_wait

log = logging.getLogger("qstrata.collectors.leases")

MEMBERS = "qstrata-collector-members"
LEASES = "qstrata-collector-leases"


def preferred(target: str, members: Iterable[str]) -> str | None:
    """Rendezvous (highest random weight) hashing: the member that should collect `target`."""
    best, best_weight = None, b""
    for m in members:
        weight = hashlib.blake2b(f"{target}\x00{m}".encode(), digest_size=8).digest()
        if best is None or weight > best_weight:
            best, best_weight = m, weight
    return best


class LeaseManager:
    def __init__(self, nc: nats.NATS, instance: str, on_change: Callable[[set[str]], None], *, ttl: float = 5.0,
                 interval: float = 1.0) -> None:
        self.nc = nc
        self.instance = instance
        self.on_change = on_change
        self.ttl = ttl
        self.interval = interval
        self.targets: set[str] = set()
        self.held: dict[str, tuple[int, float]] = {}
        """target -> (revision, monotonic time of the last successful renewal)."""
        self.members: set[str] = set()
        self._reported: set[str] | None = None
        self._task: asyncio.Task | None = None
        self.last_error = ""
        self.failing_since: float | None = None
        """Monotonic time of the first failed round of the current outage (None: renewing)."""
        self.members_kv = self.leases_kv = None
        self._created: list[str] = []

    async def _bucket(self, name: str):
        js = self.nc.jetstream()
        try:
            kv = await js.key_value(name)
        except (nats.errors.NoRespondersError, ServiceUnavailableError):
            raise NatsUnavailable("the NATS server does not have JetStream enabled (start it with -js)") from None
        except BucketNotFoundError:
            try:
                kv = await js.create_key_value(KeyValueConfig(bucket=name, history=1, ttl=self.ttl,
                                                              storage=StorageType.FILE))
                self._created.append(name)
            except nats.js.errors.BadRequestError:  # another instance created it meanwhile
                kv = await js.key_value(name)
        return kv

    async def _open(self) -> None:
        """Look the buckets up (creating what is missing): at start, and after a failed round."""
        self.members_kv = await self._bucket(MEMBERS)
        self.leases_kv = await self._bucket(LEASES)

    async def start(self) -> None:
        await self._open()
        self._created.clear()
        self._task = asyncio.create_task(self._run(), name="leases")

    def set_targets(self, names: Iterable[str]) -> None:
        self.targets = set(names)

    @property
    def owned(self) -> set[str]:
        return set(self.held)

    async def _run(self) -> None:
        while True:
            try:
                if not self.nc.is_connected:  # fail at once: requests would wait for the reconnect
                    raise NatsUnavailable("NATS unreachable, reconnecting")
                if self.failing_since is not None:
                    try:
                        await self._open()  # NATS may have lost the buckets (restarted, deleted)
                    except NatsUnavailable:  # just restarted, most likely: JetStream not up yet
                        raise NatsUnavailable("NATS JetStream not answering") from None
                await self.round()
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, OSError, TimeoutError, NatsUnavailable) as exc:
                self._failed(str(exc) or type(exc).__name__)
            else:
                self._recovered()
            self._report()
            await asyncio.sleep(self.interval)

    def _failed(self, text: str) -> None:
        """No lease is dropped here: only NATS answering that another instance holds it does that."""
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        if text != self.last_error:
            self.last_error = text
            log.warning("leases: cannot be renewed (%s); still collecting the %d targets held here",
                        text, len(self.held))

    def _recovered(self) -> None:
        if self.failing_since is not None:
            recreated = f"; recreated bucket(s) {', '.join(self._created)}" if self._created else ""
            log.info("leases: NATS answers again after %.0f s; renewed, %d targets collected here%s",
                     time.monotonic() - self.failing_since, len(self.held), recreated)
        self.failing_since = None
        self.last_error = ""
        self._created.clear()

    def health(self) -> dict[str, object]:
        """Whether leases are renewed; while not, the error and for how long (targets held are still collected)."""
        failing = self.failing_since is not None
        return {"state": "failing" if failing else "ok", "held": len(self.held), "targets": len(self.targets),
                "members": sorted(self.members), "error": self.last_error or None,
                "failing_for": round(time.monotonic() - self.failing_since, 1) if failing else 0.0}

    def _report(self) -> None:
        owned = self.owned
        if owned != self._reported:
            self._reported = owned
            self.on_change(owned)

    async def round(self) -> None:
        await self.members_kv.put(self.instance, b"alive")
        try:
            self.members = set(await self.members_kv.keys()) | {self.instance}
        except NoKeysError:
            self.members = {self.instance}
        now = time.monotonic()
        renew_after = self.ttl / 3
        for target in sorted(self.targets | set(self.held)):
            want = target in self.targets and preferred(target, self.members) == self.instance
            held = self.held.get(target)
            if held is not None and not want:
                await self._release(target, held[0])
            elif held is not None and now - held[1] >= renew_after:
                try:
                    revision = await self.leases_kv.update(target, self.instance.encode(), last=held[0])
                except KeyWrongLastSequenceError:  # expired (NATS was away longer than ttl), or taken
                    revision = await self._take(target)
                if revision is None:
                    del self.held[target]
                    log.warning("leases: lost %s to another instance", target)
                else:
                    self.held[target] = (revision, time.monotonic())
            elif held is None and want:
                revision = await self._take(target)
                if revision is None:
                    continue  # still held (by the previous owner, until it releases or expires)
                self.held[target] = (revision, time.monotonic())
                log.info("leases: %s is now collected by %s", target, self.instance)

    async def _take(self, target: str) -> int | None:
        """The lease's revision once it is ours: created, or already ours (a renewal whose reply
        the outage swallowed); None while another instance holds it."""
        try:
            return await self.leases_kv.create(target, self.instance.encode())
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self.leases_kv.get(target)
        except KeyNotFoundError:  # given back meanwhile: taken at the next round
            return None
        return entry.revision if entry.value == self.instance.encode() else None

    async def _release(self, target: str, revision: int) -> None:
        del self.held[target]
        try:
            await self.leases_kv.delete(target, last=revision)
            log.info("leases: %s handed over", target)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            pass

    async def stop(self) -> None:
        """Clean shutdown: give every lease back at once, so survivors take over at their next round."""
        await cancel_and_wait(self._task)

        async def give_back() -> None:  # all at once: one 2 s budget however many leases (NATS may be down)
            if self.members_kv is None:  # the start failed before any bucket was there
                return
            await asyncio.gather(*(self._release(target, revision) for target, (revision, _) in self.held.items()),
                                 self.members_kv.delete(self.instance), return_exceptions=True)

        try:
            await asyncio.wait_for(give_back(), 2)
        except (nats.errors.Error, OSError, TimeoutError):
            pass  # they expire with their TTL
        self.held.clear()
