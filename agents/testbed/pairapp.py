"""`qstrata up`'s built-in entangled-state application: ENTANGLED-STATE units over NETCONF.

For each `entanglement_apps` entry of the plan, an application on the source memory node asks its
node for a unit of `pairs` pairs at or above `fidelity` towards the destination node's URN every
`every_s` simulated seconds, as an SDN application would: an `edit-config` creating a qstrata-ss
`service-unit` on running, then `<get>` of that unit until it is ready, failed or expired. A ready
unit's pairs are used at once: the unit is deleted (`consumed` in its node's notifications, its
memory slots freed). A failed or expired unit is deleted too, after its link-layer error is noted.
What each application got (units delivered and failed by error, the fidelity of its last pairs) is
said on `up`'s event line and kept in `PairStats` for the status table.

The lifecycle URN's `valid-until` is POSIX seconds of the world's clock, which runs `speed` times
faster than wall time from wherever the world started: the application learns it from its first
unit's `created-time` (that unit is valid for a year) and counts on from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from qstrata.bindings.wire.netconf_client import NetconfEndpoint, NetconfError, NetconfSession

from .plan import EntanglementAppPlan

log = logging.getLogger("qstrata.up.pairs")

SS = "urn:qstrata:yang:qstrata-ss"
POLL_S = 0.5
"""Wall seconds between two reads of a pending unit (the agents' NETCONF load stays the same at
any `--speed`)."""
UNIT_NAMESPACE = uuid.UUID("0b6a3c52-7f1e-4d8a-9e20-5c31a7d4e8f9")


@dataclass
class PairStats:
    """What one application got."""

    app: EntanglementAppPlan
    requested: int = 0
    delivered_units: int = 0
    delivered_pairs: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    last_fidelity: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return f"{self.app.source} -> {self.app.destination}"


def unit_xml(unit_id: str, app: EntanglementAppPlan, source_urn: str, nonce: int, valid_until: int,
             operation: str = "") -> str:
    """The qstrata-ss service unit of one request (`operation="delete"`: its removal)."""
    if operation:
        return (f'<service-stratum xmlns="{SS}" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><service-units>'
                f'<service-unit nc:operation="{operation}"><unit-id>{unit_id}</unit-id></service-unit>'
                "</service-units></service-stratum>")
    lifecycle = f"urn:qstrata:lifecycle?=size={app.pairs}&amp;valid-until={valid_until}&amp;fidelity={app.fidelity:g}"
    return (f'<service-stratum xmlns="{SS}" xmlns:ss="{SS}"><service-units><service-unit>'
            f"<unit-id>{unit_id}</unit-id><kind>ss:ENTANGLED-STATE</kind>"
            f"<source-urn>{escape(source_urn)}:app?=nonce={nonce}</source-urn>"
            f"<destination-urn>{escape(app.destination_urn)}:app?=nonce={nonce}</destination-urn>"
            f"<lifecycle-urn>{lifecycle}</lifecycle-urn>"
            "</service-unit></service-units></service-stratum>")


class PairApplication:
    """Every entanglement application of the plan, each a task with its own NETCONF session."""

    def __init__(self, apps: tuple[EntanglementAppPlan, ...], logins: dict[str, NetconfEndpoint], speed: float,
                 say: Callable[[str], None] | None = None, timeout: float = 10.0) -> None:
        self.apps = apps
        self.logins = logins
        self.speed = speed
        self.say = say or log.info
        self.timeout = timeout
        self.stats = [PairStats(app) for app in apps]
        self._tasks: list[asyncio.Task] = []
        self._clock: tuple[float, float] | None = None
        """(world POSIX seconds, wall POSIX seconds) of one instant, once a unit said when it was
        accepted."""

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(s), name=f"up-pairs-{s.app.source}-{s.app.destination}")
                       for s in self.stats]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, stats: PairStats) -> None:
        """Request, watch, use or drop, sleep; a lost session is opened again after a pause."""
        while True:
            session = None
            try:
                session = await NetconfSession.open(self.logins[stats.app.source])
                source_urn = await self._node_urn(session)
                while True:
                    began = time.monotonic()
                    await self._one_unit(session, stats, source_urn)
                    await asyncio.sleep(max(stats.app.every_s / self.speed - (time.monotonic() - began), 0.0))
            except (NetconfError, OSError, TimeoutError) as exc:
                self.say(f"pairs {stats.label}: {exc or 'timed out'}; trying again in 5 s")
                await asyncio.sleep(5.0)
            except Exception:  # a bug here must not pass in silence (the task would just end)
                log.exception("pairs %s: the application failed", stats.label)
                raise
            finally:
                if session is not None:
                    await session.close()

    async def _get(self, session: NetconfSession, subtree: str):
        return await session.request(f'<get><filter type="subtree">{subtree}</filter></get>', self.timeout)

    async def _node_urn(self, session: NetconfSession) -> str:
        qfs = "urn:qstrata:yang:qstrata-qfs"
        reply = await self._get(session, f'<qfs-node xmlns="{qfs}"><urn/></qfs-node>')
        return (reply.findtext(f".//{{{qfs}}}urn") or "urn:qstrata:node:unnamed").strip()

    def _valid_until(self, valid_s: float) -> int:
        """`valid_s` simulated seconds from now on the world's clock (a year while it is unknown)."""
        if self._clock is None:
            return int(time.time()) + 365 * 86400
        world, wall = self._clock
        return int(world + (time.time() - wall) * self.speed + valid_s) + 1

    async def _one_unit(self, session: NetconfSession, stats: PairStats, source_urn: str) -> None:
        app = stats.app
        stats.requested += 1
        nonce = stats.requested
        unit_id = str(uuid.uuid5(UNIT_NAMESPACE, f"{app.source}/{app.destination}/{time.time_ns()}/{nonce}"))
        valid_until = self._valid_until(app.valid_s)
        sent = time.time()
        await self._edit(session, unit_xml(unit_id, app, source_urn, nonce, valid_until))
        deadline = time.monotonic() + (app.valid_s + 2.0) / self.speed + self.timeout
        state, unit = "requested", None
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            reply = await self._get(session, f'<service-stratum xmlns="{SS}"><service-units><service-unit>'
                                             f"<unit-id>{unit_id}</unit-id></service-unit></service-units>"
                                             "</service-stratum>")
            unit = reply.find(f".//{{{SS}}}service-unit")
            state = (unit.findtext(f"{{{SS}}}state") if unit is not None else None) or "gone"
            created = unit.findtext(f"{{{SS}}}created-time") if unit is not None else None
            if self._clock is None and created:
                self._clock = (datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp(), sent)
            if state in ("ready", "failed", "expired", "consumed", "gone"):
                break
        if state == "ready" and unit is not None:
            fidelities = [float(f) for f in unit.findall(f".//{{{SS}}}delivered-pair/{{{SS}}}fidelity")
                          for f in [f.text or "0"]]
            stats.delivered_units += 1
            stats.delivered_pairs += len(fidelities)
            stats.last_fidelity = fidelities[-1] if fidelities else None
            if stats.delivered_units == 1:
                route = [r.text or "" for r in unit.findall(f"{{{SS}}}route")]
                via = f" through {len(route) - 2} repeater(s)" if len(route) > 2 else ""
                self.say(f"pairs: {stats.label}: first unit of {len(fidelities)} pair(s) delivered{via}, fidelity "
                         + ", ".join(f"{f:.3f}" for f in fidelities) + f" (asked {app.fidelity:g})")
        else:
            error = (unit.findtext(f".//{{{SS}}}failure") if unit is not None else None) or state
            stats.failed[error] += 1
            if stats.failed[error] == 1:  # the first of each kind; `stats` counts them all
                self.say(f"pairs {stats.label}: unit {unit_id[:8]} {state} ({error})")
        await self._edit(session, unit_xml(unit_id, app, source_urn, nonce, valid_until, "delete"))

    async def _edit(self, session: NetconfSession, config: str) -> None:
        await session.request("<edit-config><target><running/></target>"
                          f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">{config}</config>'
                          "</edit-config>", self.timeout)
