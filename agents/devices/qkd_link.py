"""A physical QKD link as the world sees it: one session per qkdl_id, shared by both end nodes.

Both nodes' agents configure the same qkdl_id (ETSI GS QKD 015); the session joins their
configurations, resolves the light path, runs the decoy-state physics every tick and keeps the
key store both ends draw from, so Alice and Bob report the same rate and QBER.

Life cycle (`status`, an ETSI link-status identity):
  OFF      disabled by either end (qkdl_enable false or qkdl_status OFF in config);
  PENDING  enabled, but no light (no path, cut fibre, switch moving, wrong peer, peer not yet
           configured) or still re-locking: the re-lock timer starts when light returns;
  ACTIVE   locked and distilling key (skr > 0);
  PASSIVE  locked but no secret key (QBER too high / too much loss), or held PASSIVE by config.

Estimators (`estimator`): "finite-key" (default) gathers detections into blocks of n_X sifted bits
(`key_blocks`) and releases each block's finite-key secret key (Lim et al. 2014) when it is
complete: the link stays PENDING after it locks until its first block is released, ACTIVE or
PASSIVE then as the last block yielded key or not, and skr is the last block's rate. The
asymptotic estimators ("weak+vacuum", "asymptotic": Ma et al. 2005 on each tick's gains) make key
continuously, as the twins did before blocks.

Eavesdroppers (`plant.FibreState.eavesdropper`, set by a scenario): every tick the link reads the
fraction of pulses attacked on each fibre of its path and raises its optical error accordingly
(`physics.intercept_resend`), so the QBER and the finite-key bound see the attack through the
counts. Key distilled from attacked detections is never stored: blocks are marked at release
(`key_blocks`), and the store discards the key of attacked ones (counted as discarded). From the
first attacked block until a clean one is released the link is `compromise`d: PASSIVE, with the
eavesdropper's fibre in its reason, and its key store delivers nothing (`compromise.refusal`).
The key stored before the attack is kept, and delivered again once a clean block has come.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import optics
from .key_blocks import KeyBlocks, Released
from .physics import finite_key, intercept_resend, qkd
from .physics.sampling import binomial, ornstein_uhlenbeck, poisson
from .physics.units import yield_per_gate
from .topology import Endpoint

if TYPE_CHECKING:
    from .world import World

NS = 1_000_000_000
DEFAULT_RELOCK_S = 10.0
FINITE_KEY = "finite-key"
ESTIMATORS = (FINITE_KEY, "weak+vacuum", "asymptotic")
SIGNAL_SHARE, DECOY_SHARE, VACUUM_SHARE = 0.9, 0.05, 0.05
"""Share of pulses of each intensity, used only to size the sampled counts (asymptotic estimators)."""
E_D_DRIFT_RELATIVE = 0.1
E_D_DRIFT_TAU_S = 600.0
OVERLOAD_CLEAR = 0.95
"""An overload clears when consumption drops below this fraction of the rate (hysteresis)."""


@dataclass(slots=True)
class LinkEnd:
    """One node's configuration of the link (what its agent committed)."""

    node: str
    link_type: str = "PHYS"
    enabled: bool = True
    admin_status: str | None = None
    interface: int | None = None
    start: Endpoint | None = None
    """Where this end's light enters the plant, None when the interface has no fibre."""
    role: str | None = None
    channel_att_db: float | None = None
    remote_node: str | None = None
    virt_bandwidth: int = 0


@dataclass(slots=True)
class KeyStore:
    """Secret key bits shared by the two ends, never negative.

    The bits are a stream (`key_stream`) of the session `epoch` (a random nonce per link session,
    so a new session never repeats an old one's key); `offset_bits` is the stream position up to
    which key has been taken. Everything taken advances it, the synthetic draws of applications
    too, so no bit of the stream is ever handed out twice."""

    bits: float = 0.0
    produced_bits: float = 0.0
    consumed_bits: float = 0.0
    capacity_bits: float = 1e9
    """A full store discards new key (qstrata-ss key-store capacity-bits)."""
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex)
    offset_bits: float = 0.0
    discarded_bits: float = 0.0
    """Key of attacked blocks, thrown away instead of stored (never part of the stream)."""
    discarded_blocks: int = 0

    def add(self, bits: float) -> None:
        self.bits = min(self.bits + bits, self.capacity_bits)
        self.produced_bits += bits

    def discard(self, bits: float, blocks: int) -> None:
        """Key an eavesdropper may know: counted, never stored."""
        self.discarded_bits += bits
        self.discarded_blocks += blocks

    def take(self, bits: float) -> float:
        """Withdraw up to `bits`; returns what was actually taken."""
        taken = min(self.bits, max(bits, 0.0))
        self.bits -= taken
        self.consumed_bits += taken
        self.offset_bits += taken
        return taken

    def take_bytes(self, nbytes: int) -> int | None:
        """Withdraw `nbytes` whole bytes, all or nothing: the byte offset of the block in the
        stream, or None when the store holds less."""
        need = nbytes * 8
        if nbytes <= 0 or self.bits < need:
            return None
        start = math.ceil(self.offset_bits / 8)
        self.bits -= need
        self.consumed_bits += need
        self.offset_bits = (start + nbytes) * 8
        return start


@dataclass(slots=True)
class Compromise:
    """A link whose last key came from detections an eavesdropper attacked: since when, where the
    eavesdropper was, how much key was discarded since, and the QBER it left."""

    since_ns: int
    fibres: tuple[str, ...]
    blocks: int = 0
    bits: float = 0.0
    qber: float = 0.0

    @property
    def reason(self) -> str:
        where = ", ".join(self.fibres) or "the link's path"
        return (f"eavesdropper on fibre {where}: key of {self.blocks} block(s) discarded (QBER {self.qber:.3f})"
                if self.blocks else f"eavesdropper on fibre {where}: key discarded (QBER {self.qber:.3f})")

    def refusal(self, qkdl_id: str, since: str) -> str:
        """What a KME tells an application it refuses (`since`: the world's date of `since_ns`)."""
        return (f"QKD link {qkdl_id} is compromised since {since}: {self.reason}; no key is delivered over it "
                "until a clean key block is released")


@dataclass(slots=True)
class Measurement:
    skr: float = 0.0
    qber: float = 0.0
    loss_db: float = math.inf
    background_yield: float = 0.0
    state: qkd.DecoyState | None = None
    """Asymptotic estimators: every quantity of the tick's evaluation."""
    asymptotic_skr: float = 0.0
    """bit/s for infinitely long keys: of the last block (finite-key), of the tick (others)."""
    block: Released | None = None
    """Finite-key: the last block released since the link locked."""


@dataclass(eq=False)
class QkdLinkSession:
    world: World
    qkdl_id: str
    params: qkd.DecoyBB84Parameters = qkd.MODERN
    estimator: str = FINITE_KEY
    relock_ns: int = int(DEFAULT_RELOCK_S * NS)
    ends: dict[str, LinkEnd] = field(default_factory=dict)
    consumers: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per node: app_id -> bit/s it draws. An app configured on both ends counts once."""
    status: str = "OFF"
    reason: str = "not configured"
    lock_at_ns: int | None = None
    measurement: Measurement = field(default_factory=Measurement)
    store: KeyStore = field(default_factory=KeyStore)
    created_ns: int = 0
    """When the session (and so its store's counters) started, on the world's clock."""
    overloaded: bool = False
    shortfall_bits: float = 0.0
    e_d: float = 0.0
    tick_order: int = 10
    _noise_version: int = -1
    _noise_y0: float = 0.0
    _path: optics.Trace | None = None
    _path_key: tuple[optics.Hop, ...] | None = None
    _expected: float | None = None
    blocks: KeyBlocks | None = None
    """Finite-key post-processing (None with the asymptotic estimators)."""
    compromise: Compromise | None = None
    """Set while the link's last key was distilled from attacked detections (module docstring)."""
    _taps: tuple[tuple[str, float], ...] = ()
    """(fibre, fraction attacked) of the eavesdroppers on the path, read with the noise."""
    _attackers: tuple[str, ...] = ()
    """The fibres of the last eavesdroppers seen (for a block released after they left)."""

    def __post_init__(self) -> None:
        self.e_d = self.params.e_d
        self.created_ns = self.world.now_ns
        if self.estimator == FINITE_KEY:
            self.blocks = KeyBlocks(self.params)

    # -- configuration (from the twins) ------------------------------------------------------

    def configure(self, end: LinkEnd) -> None:
        self.ends[end.node] = end

    def remove(self, node: str) -> None:
        self.ends.pop(node, None)
        if self.consumers.pop(node, None) is not None:
            self._expected = None

    def set_consumers(self, node: str, draws: dict[str, float]) -> None:
        if self.consumers.get(node) != draws:
            self.consumers[node] = dict(draws)
            self._expected = None

    @property
    def expected_consumption(self) -> float:
        """bit/s drawn by the applications backed by this link (each app once); computed when
        the consumers change."""
        if self._expected is None:
            merged: dict[str, float] = {}
            for draws in self.consumers.values():
                for app, rate in draws.items():
                    merged[app] = max(rate, merged.get(app, 0.0))
            self._expected = sum(merged.values())
        return self._expected

    # -- the physics per tick ----------------------------------------------------------------

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        start_ns = now_ns - dt_ns
        active_ns = self._advance_status(start_ns, now_ns)
        if active_ns >= 0 and self.blocks is not None:
            self._distil(dt_ns, active_ns)
        elif active_ns >= 0:
            # Sample over the whole tick even when the lock came mid-tick, so the rate is
            # known from the first ACTIVE tick on; only the locked part yields key.
            self._measure(dt_ns / NS)
            bits = self.measurement.skr * active_ns / NS
            if self._taps:  # no blocks to mark: the tick's key is the attacked unit
                self._attacked(bits, 0)
                assert self.compromise is not None
                self._set("PASSIVE", self.compromise.reason)
            else:
                self.compromise = None
                self.store.add(bits)
                if self.measurement.skr <= 0.0 and self.status == "ACTIVE":
                    self._set("PASSIVE", f"no secret key: QBER {self.measurement.qber:.3f}")
                elif self.measurement.skr > 0.0 and self.status == "PASSIVE":
                    self._set("ACTIVE", "distilling key")
        else:
            self.measurement.skr = 0.0
            if self.blocks is not None:
                self.blocks.forget()
        demand = self.expected_consumption * dt_ns / NS
        self.shortfall_bits = demand - (self.store.take(demand) if self.compromise is None else 0.0)
        rate = self.measurement.skr if self.status == "ACTIVE" else 0.0
        consumption = self.expected_consumption
        if self.overloaded:
            self.overloaded = consumption > OVERLOAD_CLEAR * rate
        else:
            self.overloaded = consumption > 0.0 and consumption > rate and self.status == "ACTIVE"

    @property
    def admin_passive(self) -> bool:
        return any(end.admin_status == "PASSIVE" for end in self.ends.values())

    def _set(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason

    def _advance_status(self, start_ns: int, now_ns: int) -> int:
        """Update the life cycle; return how many ns of this tick the link distilled key
        (-1 when it is not locked at the end of the tick)."""
        if not self.ends or not all(e.enabled and e.admin_status != "OFF" for e in self.ends.values()):
            self.lock_at_ns = None
            self._set("OFF", "disabled by configuration")
            return -1
        obstacle, light_since = self._obstacle(start_ns, now_ns)
        if obstacle is not None:
            self.lock_at_ns = None
            self._set("PENDING", obstacle)
            return -1
        path_key = self._path.hops if self._path is not None else None
        lost = light_since > start_ns or (self._path_key is not None and path_key != self._path_key)
        self._path_key = path_key
        if lost:
            # The light went out and came back within this tick, or now takes another path:
            # the receiver lost synchronisation and re-locks from when the light returned.
            self.lock_at_ns = None
        if self.lock_at_ns is None:
            self.lock_at_ns = light_since + self.relock_ns
            self.reason = "light path changed: re-locking" if lost else "locking"
        if now_ns < self.lock_at_ns:
            self.status = "PENDING"
            return -1
        if self.admin_passive:
            self._set("PASSIVE", "held PASSIVE by configuration")
            self.measurement.skr = 0.0
            return -1
        if self.status not in ("ACTIVE", "PASSIVE"):
            if self.blocks is None:
                self._set("ACTIVE", "distilling key")
            else:
                self._set("PENDING", f"locked: filling the first key block ({self.blocks.size:.0f} sifted bits)")
        return min(now_ns - start_ns, now_ns - self.lock_at_ns)

    def _obstacle(self, start_ns: int, now_ns: int) -> tuple[str | None, int]:
        """Why no light reaches the peer now (None if it does) and since when light is back."""
        ends = list(self.ends.values())
        first = ends[0]
        for end in ends:
            remote = end.remote_node
            if remote and remote in self.world.hosted and remote not in self.ends:
                return f"waiting for peer {remote} to configure the link", start_ns
        if first.link_type == "VIRT":
            self._path = None
            return None, start_ns
        self._path = None
        for end in ends:
            if end.start is None:
                continue
            path = self.world.trace(end.start)
            if path.end is None:
                return f"no light: {path.broken}", start_ns
            if end.remote_node and path.end.device != end.remote_node:
                return f"light from {end.node} reaches {path.end.device}, not {end.remote_node}", start_ns
            self._path = path if self._transmits(end) else path.reversed()
            break
        if self._path is None:
            if all(end.channel_att_db is None for end in ends):
                return "no optical path and no phys_channel_att", start_ns
            return None, start_ns
        dark = optics.dark_until_ns(self.world.plant, self._path)
        if dark > now_ns:
            return "switch reconfiguring", start_ns
        return None, max(start_ns, dark)

    def _transmits(self, end: LinkEnd) -> bool:
        """Is `end` Alice? Its role says so; transceivers on both sides: the first name sorts."""
        if end.role == "TRANSMITTER":
            return True
        if end.role == "RECEIVER":
            return False
        for other in self.ends.values():
            if other.node != end.node and other.role in ("TRANSMITTER", "RECEIVER"):
                return other.role == "RECEIVER"
        peer = end.remote_node or ""
        return end.node <= peer or not peer

    def _loss_and_noise(self) -> tuple[float, float]:
        """Loss and background yield of the path now; also reads its eavesdroppers (`_taps`)."""
        if self._path is None:
            self._taps, self._noise_version = (), -1
            atts = [e.channel_att_db for e in self.ends.values() if e.channel_att_db is not None]
            return (atts[0] if atts else math.inf), 0.0
        plant = self.world.plant
        if self._noise_version != plant.version:
            self._taps = optics.eavesdroppers(plant, self._path)
            if self._taps:
                self._attackers = tuple(fibre for fibre, _ in self._taps)
            rate = optics.background_photon_rate(
                plant, self._path, self.world.classical_light(), self.params.filter_nm,
                self.params.wavelength_nm,
            )
            self._noise_y0 = yield_per_gate(rate, self.params.gate_s, self.params.eta_bob)
            self._noise_version = plant.version
        return optics.loss_db(plant, self._path), self._noise_y0

    def _drift(self, window_s: float) -> float:
        """The detector error e_d after `window_s` of drift (none in a deterministic world)."""
        p = self.params
        if not self.world.deterministic:
            self.e_d = ornstein_uhlenbeck(
                self.world.rng(f"qkd-drift/{self.qkdl_id}"), self.e_d, p.e_d,
                p.e_d * E_D_DRIFT_RELATIVE, E_D_DRIFT_TAU_S, window_s,
            )
        return min(max(self.e_d, 0.0), 0.5)

    def _error(self, window_s: float) -> float:
        """The optical error of this tick's detections: the drifted e_d, raised by every
        eavesdropper on the path (`_taps`, read by `_loss_and_noise` first)."""
        return intercept_resend.path_error(self._drift(window_s), (f for _, f in self._taps))

    def _attacked(self, bits: float, blocks: int) -> None:
        """Key from attacked detections: discarded, and the link compromised from now on."""
        self.store.discard(bits, blocks)
        if self.compromise is None:
            self.compromise = Compromise(self.world.now_ns, self._attackers)
        else:
            self.compromise.fibres = tuple(dict.fromkeys((*self.compromise.fibres, *self._attackers)))
        self.compromise.blocks += blocks
        self.compromise.bits += bits
        self.compromise.qber = self.measurement.qber

    def _distil(self, dt_ns: int, active_ns: int) -> None:
        """Finite-key: this tick's detections (sampled unless deterministic) go into the block
        being filled, for the locked part of the tick; completed blocks release their key."""
        blocks = self.blocks
        assert blocks is not None
        first = next(iter(self.ends.values()))
        if first.link_type == "VIRT":  # a virtual link relays key at its configured rate
            self._measure(dt_ns / NS)
            self.store.add(self.measurement.skr * active_ns / NS)
            self._set("ACTIVE", "distilling key")
            return
        p = self.params
        window_s = dt_ns / NS
        loss, extra = self._loss_and_noise()
        e_d = self._error(window_s)
        expected = finite_key.expected_block(p, loss, p.f_rep_hz * window_s, extra, e_d, blocks.decoys)
        seen = expected
        if not self.world.deterministic:
            seen = finite_key.sample_block(self.world.rng(f"qkd/{self.qkdl_id}"), expected)
        ideal = finite_key.ideal_key(p, expected, qkd.transmittance(p, loss), p.y0 + extra, e_d, blocks.decoys)
        share = active_ns / dt_ns
        before = blocks.released
        got = blocks.add(seen.scaled(share), window_s * share, ideal * share, attacked=bool(self._taps))
        self.store.add(got.bits)
        signal = seen.x.detections[0]  # QBER as systems report it: of the signal pulses, key basis
        qber = seen.x.errors[0] / signal if signal > 0.0 else qkd.E0
        last = blocks.last
        # In place, not a new Measurement per link per tick (one object fewer for the garbage
        # collector per link and tick); readers take its fields when they read it.
        m = self.measurement
        m.skr, m.qber, m.loss_db, m.background_yield, m.state = last.rate if last else 0.0, qber, loss, extra, None
        m.asymptotic_skr, m.block = last.ideal_rate if last else 0.0, last
        if got.attacked_blocks:
            self._attacked(got.attacked_bits, got.attacked_blocks)
        if blocks.released > before and last is not None:
            if last.attacked and self.compromise is not None:
                self._set("PASSIVE", self.compromise.reason)
                return
            self.compromise = None
            if last.length > 0.0:
                self._set("ACTIVE", "distilling key")
            else:
                self._set("PASSIVE", f"no secret key in the last block: QBER {qber:.3f}")

    def _measure(self, window_s: float) -> None:
        """One telemetry sample over `window_s` of locked time."""
        first = next(iter(self.ends.values()))
        if first.link_type == "VIRT":
            self.measurement = Measurement(skr=float(first.virt_bandwidth), qber=0.0, loss_db=0.0)
            return
        p = self.params
        loss, extra = self._loss_and_noise()
        e_d = self._error(window_s)
        eta = qkd.transmittance(p, loss)
        y0 = p.y0 + extra
        q_mu, e_mu = qkd.gain(eta, y0, p.mu), qkd.error_rate(eta, y0, p.mu, e_d)
        q_nu, e_nu = qkd.gain(eta, y0, p.nu), qkd.error_rate(eta, y0, p.nu, e_d)
        y0_seen = y0
        if not self.world.deterministic:
            rng = self.world.rng(f"qkd/{self.qkdl_id}")
            pulses = p.f_rep_hz * window_s
            q_mu, e_mu = _sample(rng, pulses * SIGNAL_SHARE, q_mu, e_mu)
            q_nu, e_nu = _sample(rng, pulses * DECOY_SHARE, q_nu, e_nu)
            n_vac = pulses * VACUUM_SHARE
            y0_seen = poisson(rng, n_vac * y0) / n_vac if n_vac > 0 else y0
        if self.estimator == "asymptotic":
            y1, e1 = qkd.single_photon(eta, y0, e_d)
            rate = qkd.secret_key_rate(p, q_mu, e_mu, y1, e1)
            state = qkd.DecoyState(eta, y0, q_mu, e_mu, y1, e1, y1 * p.mu * math.exp(-p.mu), rate)
        else:
            state = qkd.weak_vacuum(p, q_mu, e_mu, q_nu, e_nu, y0_seen, eta)
        self.measurement = Measurement(state.key_rate, e_mu, loss, extra, state,
                                       asymptotic_skr=qkd.asymptotic(p, loss, extra, e_d).key_rate)


def _sample(rng, pulses: float, q: float, e: float) -> tuple[float, float]:
    """Observed gain and QBER from Poisson detections and binomial errors."""
    if pulses <= 0.0:
        return q, e
    clicks = poisson(rng, pulses * q)
    if clicks <= 0.0:
        return 0.0, 0.5
    return clicks / pulses, binomial(rng, clicks, e) / clicks


def sessions(world: World) -> dict[str, QkdLinkSession]:
    """The world's QKD link sessions by qkdl_id."""
    return world.shared_state("qkd-links", dict)


def session(world: World, qkdl_id: str, **options) -> QkdLinkSession:
    """Get or create (and start ticking) the session of a link."""
    table = sessions(world)
    found = table.get(qkdl_id)
    if found is None:
        found = table[qkdl_id] = QkdLinkSession(world, qkdl_id, **options)
        world.attach(found)
    return found


def release(world: World, qkdl_id: str, node: str) -> None:
    """An end node deleted the link; the session goes when no end is left."""
    table = sessions(world)
    found = table.get(qkdl_id)
    if found is None:
        return
    found.remove(node)
    if not found.ends:
        world.detach(found)
        del table[qkdl_id]
