"""Finite-key decoy-state BB84 after Lim, Curty, Walenta, Xu and Zbinden, "Concise security bounds
for practical decoy-state quantum key distribution", PRA 89, 022307 (2014), arXiv 1311.7129.

The asymptotic estimators of `qkd` assume infinitely long keys. A real system distils key block by
block: it counts, per basis and intensity, the detections and errors of one block of n_X sifted
X-basis bits, bounds from those counts what Eve may know, and keeps only what the bounds allow.
The protocol of the paper, in our words:

- Alice sends phase-randomised pulses of three intensities mu1 > mu2 + mu3, mu2 > mu3 >= 0
  (probabilities p1, p2, p3) and both ends pick the X basis with probability q_x (the key basis),
  Z otherwise (the test basis, used only to estimate the phase error);
- the probability that Alice sent n photons is tau_n = sum_k p_k e^-k k^n / n!;
- every count is widened by Hoeffding's deviation delta(n, eps) = sqrt(n/2 ln(1/eps)), with
  eps = eps_sec/21 (the 21 error terms of the secrecy analysis, each set to the same value), and
  rescaled to its intensity: n_k^+- = e^k/p_k (n_k +- delta(n_total));
- vacuum events      s0 >= tau0 (mu2 n3^- - mu3 n2^+) / (mu2 - mu3);
- single-photon      s1 >= tau1 mu1 (n2^- - n3^+ - (mu2^2 - mu3^2)/mu1^2 (n1^+ - s0/tau0))
                             / (mu1 (mu2 - mu3) - mu2^2 + mu3^2);
- single-photon errors in Z  v1 <= tau1 (m2^+ - m3^-) / (mu2 - mu3), errors widened by
  delta(m_total);
- phase error of the X single-photon events  phi <= v1/s1_Z + gamma(eps_sec, v1/s1_Z, s1_Z, s1_X)
  with gamma(a, b, c, d) = sqrt((c+d)(1-b)b / (c d ln 2) * log2((c+d)/(c d (1-b) b) * 21^2/a^2))
  (random sampling without replacement);
- key length  l = floor(s0 + s1 (1 - h(phi)) - leak_EC - 6 log2(21/eps_sec) - log2(2/eps_cor)),
  leak_EC = f_EC n_X h(E_X) with E_X the block's observed X-basis error rate.

Dropping the deviations and the epsilon terms gives the same three-intensity protocol for
infinitely long keys (`asymptotic_length`, the paper's dashed curve); `ideal_rate` is the
infinite-decoy bound of the same protocol (exact Y0, Y1, e1), above both (`ideal_key`).

Channel model (the paper's dedicated fibre, with physics.md's names): Y_n = 1 - (1-Y0)(1-eta)^n
detections and E0 Y0 + e_d (1 - (1-eta)^n) errors per n-photon pulse, each detection followed by an
after-pulse with probability p_ap that carries a random bit. For intensity k this gives
D_k = 1 - (1-Y0) e^(-eta k), R_k = D_k (1 + p_ap) and E0 Y0 + e_d (1 - e^(-eta k)) + p_ap D_k/2
errors, the paper's formulas with Y0 = 2 p_dc. (The paper prints the misalignment term with
eta_ch, the fibre alone; we use eta = eta_ch eta_Bob as for every other term, so that an optical
error needs a detection.)
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from .qkd import E0, DecoyBB84Parameters, binary_entropy, transmittance
from .sampling import binomial, poisson

TERMS = 21
"""Error terms of the secrecy analysis, each eps_sec/21 (paper, Eq. B4)."""


@dataclass(frozen=True, slots=True)
class Decoys:
    """What Alice and Bob choose per pulse: intensities mu1 > mu2 + mu3, mu2 > mu3 >= 0, their
    probabilities, and the probability q_x of the X (key) basis at each end."""

    mu: tuple[float, float, float]
    p: tuple[float, float, float]
    q_x: float
    tau0: float = field(init=False)
    tau1: float = field(init=False)
    weight: tuple[float, float, float] = field(init=False)
    """e^k / p_k: what one count of intensity k weighs in the photon-number mix."""

    def __post_init__(self) -> None:  # the bounds use these constantly: once per parameter set
        object.__setattr__(self, "tau0", self.tau(0))
        object.__setattr__(self, "tau1", self.tau(1))
        object.__setattr__(self, "weight", tuple(math.exp(k) / p for k, p in zip(self.mu, self.p, strict=True)))

    @classmethod
    def of(cls, params: DecoyBB84Parameters) -> Decoys:
        return cls((params.mu, params.nu, params.mu3), (params.p_mu, params.p_nu, 1.0 - params.p_mu - params.p_nu),
                   params.q_x)

    def tau(self, n: int) -> float:
        """Probability that Alice sends n photons, whatever the intensity."""
        return sum(p * math.exp(-k) * k**n for k, p in zip(self.mu, self.p, strict=True)) / math.factorial(n)


@dataclass(frozen=True, slots=True)
class Counts:
    """Detections and errors of one basis, per intensity (mu1, mu2, mu3)."""

    detections: tuple[float, float, float]
    errors: tuple[float, float, float]

    @property
    def total(self) -> float:
        return sum(self.detections)

    @property
    def total_errors(self) -> float:
        return sum(self.errors)


@dataclass(frozen=True, slots=True)
class Block:
    """What one block of post-processing sees: the X (key) and Z (test) counts of `pulses` pulses."""

    x: Counts
    z: Counts
    pulses: float

    def scaled(self, factor: float) -> Block:
        """The counts of `factor` times as many pulses (a share of a tick, several blocks)."""
        if factor == 1.0:
            return self

        def scale(c: Counts) -> Counts:
            (a, b, d), (e, f, g) = c.detections, c.errors
            return Counts((a * factor, b * factor, d * factor), (e * factor, f * factor, g * factor))

        return Block(scale(self.x), scale(self.z), self.pulses * factor)

    def __add__(self, other: Block) -> Block:
        def add(a: Counts, b: Counts) -> Counts:
            return Counts(tuple(u + v for u, v in zip(a.detections, b.detections, strict=True)),
                          tuple(u + v for u, v in zip(a.errors, b.errors, strict=True)))

        return Block(add(self.x, other.x), add(self.z, other.z), self.pulses + other.pulses)


EMPTY = Block(Counts((0.0,) * 3, (0.0,) * 3), Counts((0.0,) * 3, (0.0,) * 3), 0.0)


@dataclass(frozen=True, slots=True)
class FiniteKey:
    """Every bound of one block, so telemetry and tests can show them."""

    s_x0: float
    """Lower bound on the X detections of vacuum pulses."""
    s_x1: float
    """Lower bound on the X detections of single-photon pulses."""
    s_z1: float
    v_z1: float
    """Upper bound on the Z errors of single-photon pulses."""
    phase_error: float
    """Upper bound on the phase error rate of the X single-photon events (at most 1/2)."""
    leak_ec: float
    """Bits revealed by error correction: f_EC n_X h(E_X)."""
    length: float
    """Secret key bits of the block, floored at 0 (l of the paper)."""


def hoeffding(n: float, eps: float) -> float:
    """delta(n, eps) = sqrt(n/2 ln(1/eps)): how far n Bernoulli draws stray from their mean,
    except with probability eps on each side."""
    return math.sqrt(max(n, 0.0) / 2.0 * math.log(1.0 / eps))


def widened(counts: Sequence[float], decoys: Decoys, delta: float) -> tuple[list[float], list[float]]:
    """(n_k^-, n_k^+) = e^k/p_k (n_k -+ delta): the counts of each intensity as counts of the
    photon-number mix, widened by the deviation."""
    w = decoys.weight
    return [w[0] * (counts[0] - delta), w[1] * (counts[1] - delta), w[2] * (counts[2] - delta)], \
        [w[0] * (counts[0] + delta), w[1] * (counts[1] + delta), w[2] * (counts[2] + delta)]


def vacuum_events(lo: Sequence[float], hi: Sequence[float], decoys: Decoys) -> float:
    """Lower bound on the detections of vacuum pulses (paper Eq. 2), never below 0."""
    _, mu2, mu3 = decoys.mu
    return max(decoys.tau0 * (mu2 * lo[2] - mu3 * hi[1]) / (mu2 - mu3), 0.0)


def single_photon_events(lo: Sequence[float], hi: Sequence[float], decoys: Decoys, s0: float) -> float:
    """Lower bound on the detections of single-photon pulses (paper Eq. 3), never below 0."""
    mu1, mu2, mu3 = decoys.mu
    multi = (mu2 * mu2 - mu3 * mu3) / (mu1 * mu1) * (hi[0] - s0 / decoys.tau0)
    bound = decoys.tau1 * mu1 * (lo[1] - hi[2] - multi) / (mu1 * (mu2 - mu3) - mu2 * mu2 + mu3 * mu3)
    return max(bound, 0.0)


def single_photon_errors(lo: Sequence[float], hi: Sequence[float], decoys: Decoys) -> float:
    """Upper bound on the errors of single-photon pulses (paper Eq. 4), never below 0."""
    _, mu2, mu3 = decoys.mu
    return max(decoys.tau1 * (hi[1] - lo[2]) / (mu2 - mu3), 0.0)


def sampling_deviation(eps: float, rate: float, tested: float, untested: float) -> float:
    """gamma(eps, b, c, d) of the paper (Eq. 5): how much higher the error rate of d untested
    single-photon events can be than the rate b seen on c tested ones, except with probability
    about eps/21 (random sampling without replacement)."""
    c, d, b = tested, untested, rate
    if b <= 0.0 or b >= 1.0 or c <= 0.0 or d <= 0.0:
        return 0.0
    spread = (c + d) * (1.0 - b) * b / (c * d * math.log(2.0))
    log_term = math.log2((c + d) / (c * d * (1.0 - b) * b) * TERMS**2 / (eps * eps))
    return math.sqrt(spread * log_term) if log_term > 0.0 else 0.0


def key_length(
    block: Block, decoys: Decoys, eps_sec: float, eps_cor: float, f_ec: float, *, finite: bool = True
) -> FiniteKey:
    """The secret key one block yields (paper Eq. 1-5). `finite=False` drops every term that
    vanishes for infinitely long keys (deviations, sampling, epsilons): `asymptotic_length`."""
    eps = eps_sec / TERMS
    n_x, n_z, m_z = block.x.total, block.z.total, block.z.total_errors
    dev = (lambda n: hoeffding(n, eps)) if finite else (lambda n: 0.0)
    lo, hi = widened(block.x.detections, decoys, dev(n_x))
    s_x0 = vacuum_events(lo, hi, decoys)
    s_x1 = single_photon_events(lo, hi, decoys, s_x0)
    lo, hi = widened(block.z.detections, decoys, dev(n_z))
    s_z1 = single_photon_events(lo, hi, decoys, vacuum_events(lo, hi, decoys))
    lo, hi = widened(block.z.errors, decoys, dev(m_z))
    v_z1 = single_photon_errors(lo, hi, decoys)
    if s_z1 > 0.0:
        seen = min(v_z1 / s_z1, E0)
        phase = seen + (sampling_deviation(eps_sec, seen, s_z1, s_x1) if finite else 0.0)
    else:
        phase = E0  # no single-photon test events: nothing bounds Eve's knowledge
    phase = min(phase, E0)
    e_x = block.x.total_errors / n_x if n_x > 0.0 else E0
    leak = f_ec * n_x * binary_entropy(e_x)
    raw = s_x0 + s_x1 * (1.0 - binary_entropy(phase)) - leak
    if finite:
        raw = math.floor(raw - 6.0 * math.log2(TERMS / eps_sec) - math.log2(2.0 / eps_cor))
    return FiniteKey(s_x0, s_x1, s_z1, v_z1, phase, leak, max(raw, 0.0))


def asymptotic_length(block: Block, decoys: Decoys, f_ec: float) -> float:
    """Key bits of the same three-intensity protocol for infinitely long keys: the limit that
    `key_length` approaches as the block grows (the paper's dashed curve)."""
    return key_length(block, decoys, 1.0, 1.0, f_ec, finite=False).length


def length_at_secrecy_per_bit(
    block: Block, decoys: Decoys, kappa: float, eps_cor: float, f_ec: float, rounds: int = 8
) -> FiniteKey:
    """`key_length` with eps_sec = kappa * l, as the paper evaluates it (kappa = 1e-15: the
    secrecy leaked per key bit): a fixed point, found from eps_sec = kappa * n_X in a few rounds
    (l depends on eps_sec only through logarithms)."""
    eps = kappa * max(block.x.total, 1.0)
    result = key_length(block, decoys, min(eps, 1.0), eps_cor, f_ec)
    for _ in range(rounds):
        eps = kappa * max(result.length, 1.0)
        result = key_length(block, decoys, min(eps, 1.0), eps_cor, f_ec)
    return result


# -- the channel: expected counts of a block ---------------------------------------------------


def detection(eta: float, y0: float, e_d: float, p_ap: float, intensity: float) -> tuple[float, float]:
    """(detection probability, error probability) per pulse of `intensity` (module docstring)."""
    signal = -math.expm1(-eta * intensity)
    clicks = y0 + (1.0 - y0) * signal
    return clicks * (1.0 + p_ap), E0 * y0 + e_d * signal + p_ap * clicks / 2.0


def expected_block(
    params: DecoyBB84Parameters, loss_db: float, pulses: float, extra_y0: float = 0.0, e_d: float | None = None,
    decoys: Decoys | None = None,
) -> Block:
    """Mean counts of `pulses` pulses over a channel of `loss_db` (extra_y0: Raman, crosstalk);
    `decoys`: `Decoys.of(params)`, when the caller keeps it."""
    decoys = decoys or Decoys.of(params)
    eta = transmittance(params, loss_db)
    y0 = params.y0 + extra_y0
    e_d = params.e_d if e_d is None else e_d
    probabilities = [detection(eta, y0, e_d, params.p_ap, k) for k in decoys.mu]
    sift_x, sift_z = decoys.q_x**2, (1.0 - decoys.q_x) ** 2

    def basis(share: float) -> Counts:
        return Counts(tuple(pulses * share * p * r for p, (r, _) in zip(decoys.p, probabilities, strict=True)),
                      tuple(pulses * share * p * e for p, (_, e) in zip(decoys.p, probabilities, strict=True)))

    return Block(basis(sift_x), basis(sift_z), pulses)


def sifted_rate(params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0) -> float:
    """Sifted X-basis bits per second: how fast a block fills."""
    return expected_block(params, loss_db, params.f_rep_hz, extra_y0).x.total


def ideal_key(params: DecoyBB84Parameters, block: Block, eta: float, y0: float, e_d: float,
              decoys: Decoys | None = None) -> float:
    """Key bits of this protocol from the pulses of `block` (its mean counts) with infinitely many
    decoys and infinitely long keys: vacuum and single-photon X events known exactly, phase error
    = e1. No block of any size, sampled or not, may yield more: `key_length` bounds these very
    quantities from below (s0, s1) and above (phase error) for the mean counts."""
    decoys = decoys or Decoys.of(params)
    y1 = y0 + eta - y0 * eta
    e1 = ((E0 * y0 + e_d * eta) / y1 + params.p_ap / 2.0) / (1.0 + params.p_ap)
    sifted = block.pulses * decoys.q_x**2 * (1.0 + params.p_ap)
    secret = sifted * (y0 * decoys.tau0 + y1 * decoys.tau1 * (1.0 - binary_entropy(e1)))
    n_x = block.x.total
    leak = params.f_ec * n_x * binary_entropy(block.x.total_errors / n_x) if n_x > 0.0 else 0.0
    return max(secret - leak, 0.0)


def ideal_rate(params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0, e_d: float | None = None) -> float:
    """`ideal_key` of one second of pulses: the asymptotic (ideal-decoy) bit/s of a channel."""
    e_d = params.e_d if e_d is None else e_d
    block = expected_block(params, loss_db, params.f_rep_hz, extra_y0, e_d)
    return ideal_key(params, block, transmittance(params, loss_db), params.y0 + extra_y0, e_d)


def sample_block(rng: random.Random, expected: Block) -> Block:
    """Counts as a detector sees them: Poisson detections, binomial errors among them."""

    def basis(c: Counts) -> Counts:
        clicks, errors = [], []
        for n, m in zip(c.detections, c.errors, strict=True):
            k = poisson(rng, n)
            clicks.append(k)
            errors.append(binomial(rng, k, m / n) if n > 0.0 else 0.0)
        return Counts(tuple(clicks), tuple(errors))

    return Block(basis(expected.x), basis(expected.z), expected.pulses)


def problems(params: DecoyBB84Parameters) -> list[str]:
    """Why a parameter set cannot run the protocol ([] when it can), one phrase each."""
    found = []
    if not params.mu > params.nu + params.mu3:
        found.append(f"mu ({params.mu}) must exceed nu + mu3 ({params.nu} + {params.mu3})")
    if not params.nu > params.mu3 >= 0.0:
        found.append(f"nu ({params.nu}) must exceed mu3 ({params.mu3}), and mu3 must not be negative")
    if not (params.p_mu > 0.0 and params.p_nu > 0.0 and params.p_mu + params.p_nu < 1.0):
        found.append(f"p_mu ({params.p_mu}) and p_nu ({params.p_nu}) must be positive and leave mu3 a share "
                     "(p_mu + p_nu < 1)")
    if not 0.0 < params.q_x < 1.0:
        found.append(f"q_x ({params.q_x}) must lie strictly between 0 and 1")
    for name in ("eps_sec", "eps_cor"):
        if not 0.0 < getattr(params, name) < 1.0:
            found.append(f"{name} ({getattr(params, name)}) must lie strictly between 0 and 1")
    if not params.block_bits >= 1.0:
        found.append(f"block_bits ({params.block_bits}) must be at least 1")
    if not 0.0 <= params.p_ap < 1.0:
        found.append(f"p_ap ({params.p_ap}) must lie in [0, 1)")
    return found


@dataclass(frozen=True, slots=True)
class BlockRate:
    """A block of n_X sifted bits on a steady channel: how long it takes and what it yields."""

    seconds: float
    key: FiniteKey
    rate: float
    """Finite-key bit/s: key length / seconds."""


def finite_rate(params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0,
                block_bits: float | None = None, e_d: float | None = None) -> BlockRate:
    """Key bit/s of blocks of `block_bits` (default the parameters' own) from their mean counts."""
    n_x = params.block_bits if block_bits is None else block_bits
    per_second = expected_block(params, loss_db, params.f_rep_hz, extra_y0, e_d)
    if per_second.x.total <= 0.0:
        return BlockRate(math.inf, key_length(EMPTY, Decoys.of(params), params.eps_sec, params.eps_cor, 1.0), 0.0)
    seconds = n_x / per_second.x.total
    key = key_length(per_second.scaled(seconds), Decoys.of(params), params.eps_sec, params.eps_cor, params.f_ec)
    return BlockRate(seconds, key, key.length / seconds)


TUNING_Q_X = tuple(q / 20 for q in range(2, 20))
TUNING_P_MU = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TUNING_P_NU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def tuned(params: DecoyBB84Parameters, loss_db: float, block_bits: float | None = None) -> DecoyBB84Parameters:
    """`params` with the basis bias and intensity probabilities (q_x, p_mu, p_nu) that give the
    most finite-key bit/s at `loss_db` for blocks of `block_bits`, from a grid (steps of 0.05 and
    0.1): what an operator sets when choosing a block size. Intensities are kept. The parameters
    unchanged (but for the block size) when no setting of the grid gives key."""
    base = dataclasses.replace(params, block_bits=params.block_bits if block_bits is None else block_bits)
    best, found = 0.0, base
    for q_x in TUNING_Q_X:
        for p_mu in TUNING_P_MU:
            for p_nu in TUNING_P_NU:
                if p_mu + p_nu >= 0.96:
                    continue
                trial = dataclasses.replace(base, q_x=q_x, p_mu=p_mu, p_nu=p_nu)
                rate = finite_rate(trial, loss_db).rate
                if rate > best:
                    best, found = rate, trial
    return found

