"""Decoy-state BB84 (GLLP with decoys; Lo-Ma-Chen 2005; Ma, Qi, Zhao, Lo, PRA 72, 012326).

Two estimators: `asymptotic` assumes infinitely many decoys, so the single-photon yield Y1 and
error e1 are known exactly; `weak_vacuum` is what a deployed system does with one weak decoy nu
and a vacuum decoy: lower-bound Y1 and upper-bound e1 from the measured gains (Y1_L, e1_U).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

E0 = 0.5
"""Error rate of background counts (random bits)."""


@dataclass(frozen=True, slots=True)
class DecoyBB84Parameters:
    """A QKD system: the reference sets of physics.md plus what noise conversion needs.

    `gate_s` (effective detection window) and `filter_nm` (receiver filter width) turn Raman and
    crosstalk powers into per-gate yields; they are assumptions, not from the cited papers.

    The finite-key protocol (`finite_key`, Lim et al. 2014) uses three intensities: mu1 = `mu`,
    mu2 = `nu` and mu3 = `mu3` (mu1 > mu2 + mu3, mu2 > mu3 >= 0), sent with probabilities
    `p_mu`, `p_nu` and 1 - p_mu - p_nu; both ends choose the X (key) basis with probability `q_x`.
    A block holds `block_bits` sifted X bits (n_X); `eps_sec` and `eps_cor` are the secrecy and
    correctness of each block's key. `p_ap` is the after-pulse probability (0: counted in y0).
    The defaults (q_x 0.85, p 0.5/0.3/0.2, mu3 2e-4 as in the paper, blocks of 1e7 bits) keep the
    finite-key rate of the modern set at 63-75 % of the asymptotic rate of the same settings from
    0 to 30 dB (none at 40 dB); the other sets keep them unless they say otherwise. `q` is the
    sifting factor of the asymptotic estimators only.
    """

    name: str
    alpha_db_per_km: float
    eta_bob: float
    y0: float
    e_d: float
    f_ec: float
    f_rep_hz: float
    mu: float
    nu: float
    q: float = 0.5
    gate_s: float = 100e-12
    filter_nm: float = 0.8
    wavelength_nm: float = 1550.0
    mu3: float = 2e-4
    p_mu: float = 0.5
    p_nu: float = 0.3
    q_x: float = 0.85
    p_ap: float = 0.0
    block_bits: float = 1e7
    eps_sec: float = 1e-10
    eps_cor: float = 1e-15


MODERN = DecoyBB84Parameters(
    name="modern", alpha_db_per_km=0.2, eta_bob=0.2, y0=1e-6, e_d=0.01, f_ec=1.16,
    f_rep_hz=1e9, mu=0.5, nu=0.1, gate_s=100e-12, filter_nm=0.8,
)
GYS = DecoyBB84Parameters(
    name="gys", alpha_db_per_km=0.21, eta_bob=0.045, y0=1.7e-6, e_d=0.033, f_ec=1.22,
    f_rep_hz=2e6, mu=0.48, nu=0.05, gate_s=1e-9, filter_nm=1.0, block_bits=1e6,
)
PARAMETER_SETS: dict[str, DecoyBB84Parameters] = {p.name: p for p in (MODERN, GYS)}


@dataclass(frozen=True, slots=True)
class DecoyState:
    """Every intermediate quantity of one evaluation, so telemetry and tests can show them."""

    eta: float
    y0: float
    q_mu: float
    e_mu: float
    y1: float
    e1: float
    q1: float
    key_rate: float
    """Secret key rate in bit/s, floored at 0."""


def binary_entropy(p: float) -> float:
    """H2(p) in bits; 0 at the ends and 1 beyond 1/2 (no key there either way)."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    if p >= 0.5:
        return 1.0
    return -p * math.log2(p) - (1.0 - p) * math.log2(1.0 - p)


def transmittance(params: DecoyBB84Parameters, loss_db: float) -> float:
    """eta = eta_bob * 10^(-loss/10): channel loss (fibre, switches, connectors) plus Bob."""
    return params.eta_bob * 10.0 ** (-loss_db / 10.0)


def channel(
    params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0, e_d: float | None = None
) -> tuple[float, float, float]:
    """(eta, Y0, e_d) of a channel with `loss_db`: the background yield raised by `extra_y0`
    (Raman/crosstalk noise), the misalignment error the parameters' unless `e_d` is given."""
    return transmittance(params, loss_db), params.y0 + extra_y0, params.e_d if e_d is None else e_d


def gain(eta: float, y0: float, intensity: float) -> float:
    """Q = Y0 + 1 - exp(-eta*intensity): detection probability per pulse."""
    return y0 - math.expm1(-eta * intensity)


def error_rate(eta: float, y0: float, intensity: float, e_d: float) -> float:
    """E = (e0*Y0 + e_d*(1 - exp(-eta*intensity))) / Q: QBER of pulses of that intensity."""
    signal = -math.expm1(-eta * intensity)
    q = y0 + signal
    return (E0 * y0 + e_d * signal) / q if q > 0.0 else E0


def single_photon(eta: float, y0: float, e_d: float) -> tuple[float, float]:
    """(Y1, e1): yield and error of single-photon pulses."""
    y1 = y0 + eta - y0 * eta
    e1 = (E0 * y0 + e_d * eta) / y1 if y1 > 0.0 else E0
    return y1, e1


def secret_key_rate(
    params: DecoyBB84Parameters, q_mu: float, e_mu: float, y1: float, e1: float
) -> float:
    """R = f_rep*q*(-Q_mu*f*H2(E_mu) + Q1*(1 - H2(e1))), Q1 = Y1*mu*exp(-mu); floored at 0."""
    q1 = y1 * params.mu * math.exp(-params.mu)
    rate = params.f_rep_hz * params.q * (
        -q_mu * params.f_ec * binary_entropy(e_mu) + q1 * (1.0 - binary_entropy(e1))
    )
    return max(rate, 0.0)


def decoy_bounds(
    mu: float, nu: float, q_mu: float, q_nu: float, e_nu: float, y0: float
) -> tuple[float, float]:
    """(Y1_L, e1_U) from the signal and weak-decoy gains and the vacuum yield.

    Y1_L = mu/(mu*nu - nu^2) * (Q_nu*e^nu - Q_mu*e^mu*nu^2/mu^2 - (mu^2-nu^2)/mu^2 * Y0)
    e1_U = (E_nu*Q_nu*e^nu - e0*Y0) / (Y1_L*nu)
    Clamped to the physical ranges Y1_L >= 0, 0 <= e1_U <= 1/2 (a noisy estimate can cross them).
    """
    y1_l = mu / (mu * nu - nu * nu) * (
        q_nu * math.exp(nu)
        - q_mu * math.exp(mu) * nu * nu / (mu * mu)
        - (mu * mu - nu * nu) / (mu * mu) * y0
    )
    if y1_l <= 0.0:
        return 0.0, E0
    e1_u = (e_nu * q_nu * math.exp(nu) - E0 * y0) / (y1_l * nu)
    return y1_l, min(max(e1_u, 0.0), E0)


def asymptotic(
    params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0, e_d: float | None = None
) -> DecoyState:
    """Infinite-decoy key rate for a channel loss in dB; `extra_y0` adds Raman/crosstalk noise."""
    eta, y0, e_d = channel(params, loss_db, extra_y0, e_d)
    q_mu = gain(eta, y0, params.mu)
    e_mu = error_rate(eta, y0, params.mu, e_d)
    y1, e1 = single_photon(eta, y0, e_d)
    rate = secret_key_rate(params, q_mu, e_mu, y1, e1)
    return DecoyState(eta, y0, q_mu, e_mu, y1, e1, y1 * params.mu * math.exp(-params.mu), rate)


def weak_vacuum(
    params: DecoyBB84Parameters,
    q_mu: float,
    e_mu: float,
    q_nu: float,
    e_nu: float,
    y0: float,
    eta: float = float("nan"),
) -> DecoyState:
    """Key rate from measured gains, as a weak+vacuum decoy system computes it."""
    y1_l, e1_u = decoy_bounds(params.mu, params.nu, q_mu, q_nu, e_nu, y0)
    rate = secret_key_rate(params, q_mu, e_mu, y1_l, e1_u)
    return DecoyState(eta, y0, q_mu, e_mu, y1_l, e1_u, y1_l * params.mu * math.exp(-params.mu), rate)


def weak_vacuum_expected(
    params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0, e_d: float | None = None
) -> DecoyState:
    """`weak_vacuum` fed with the expected (noise-free) gains of a channel."""
    eta, y0, e_d = channel(params, loss_db, extra_y0, e_d)
    return weak_vacuum(
        params,
        gain(eta, y0, params.mu), error_rate(eta, y0, params.mu, e_d),
        gain(eta, y0, params.nu), error_rate(eta, y0, params.nu, e_d),
        y0, eta,
    )
