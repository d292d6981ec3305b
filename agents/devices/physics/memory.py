"""Quantum memories and heralded entanglement (physics.md §2).

Fidelities are with respect to the target Bell state. A pair is kept as (F0, creation time) and
its fidelity evaluated lazily when read, as SeQUeNCe and NetSquid do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FIBRE_LIGHT_SPEED_KM_S = 2e5


@dataclass(frozen=True, slots=True)
class MemoryPlatform:
    """Coherence and photonic interface of a memory technology.

    t1_s/t2_s are the orders of magnitude of physics.md's table; eta_c (photon emission into the
    fibre, including frequency conversion) and f0 (fidelity of a fresh heralded pair) are
    assumptions for a testbed, not measured values.
    """

    name: str
    t1_s: float
    t2_s: float
    eta_c: float
    f0: float
    modes: int = 1
    attempt_overhead_s: float = 5e-6


NV = MemoryPlatform("nv-centre", t1_s=3600.0, t2_s=1.0, eta_c=0.05, f0=0.9)
ION = MemoryPlatform("trapped-ion", t1_s=1e5, t2_s=5500.0, eta_c=0.1, f0=0.95)
REE = MemoryPlatform("rare-earth", t1_s=1e5, t2_s=6 * 3600.0, eta_c=0.05, f0=0.9, modes=100)
RB = MemoryPlatform("cold-atom", t1_s=10.0, t2_s=0.22, eta_c=0.76, f0=0.9, modes=1)
SC = MemoryPlatform("superconducting", t1_s=300e-6, t2_s=200e-6, eta_c=0.01, f0=0.85)
PLATFORMS: dict[str, MemoryPlatform] = {p.name: p for p in (NV, ION, REE, RB, SC)}


def t1t2_fidelity(t_s: float, t1_s: float, t2_s: float) -> float:
    """Perfect Bell pair, both halves stored t under T1/T2 (Hahn-echo T2, as NetSquid):
    F = 1/2 * (1 - gamma + gamma^2 + exp(-2t/T2)), gamma = 1 - exp(-t/T1)."""
    gamma = -math.expm1(-t_s / t1_s) if math.isfinite(t1_s) else 0.0
    dephase = math.exp(-2.0 * t_s / t2_s) if math.isfinite(t2_s) else 1.0
    return 0.5 * (1.0 - gamma + gamma * gamma + dephase)


def t1t2_fidelity_two(t_s: float, t1_a: float, t2_a: float, t1_b: float, t2_b: float) -> float:
    """As `t1t2_fidelity` with the halves in two different memories:
    F = 1/4*(1 + gA*gB + (1-gA)*(1-gB)) + 1/2*exp(-t/T2A - t/T2B); equal memories give the
    physics.md formula."""
    g_a = -math.expm1(-t_s / t1_a) if math.isfinite(t1_a) else 0.0
    g_b = -math.expm1(-t_s / t1_b) if math.isfinite(t1_b) else 0.0
    dephase = math.exp(-(t_s / t2_a if math.isfinite(t2_a) else 0.0) - (t_s / t2_b if math.isfinite(t2_b) else 0.0))
    return 0.25 * (1.0 + g_a * g_b + (1.0 - g_a) * (1.0 - g_b)) + 0.5 * dephase


def werner_depolarised(f0: float, t_s: float, tau_a_s: float, tau_b_s: float) -> float:
    """Werner pair in two depolarising memories: F = 1/4 + (F0 - 1/4)*exp(-t/tau_A - t/tau_B)."""
    return 0.25 + (f0 - 0.25) * math.exp(-t_s / tau_a_s - t_s / tau_b_s)


def through_channel(f0: float, channel_fidelity: float) -> float:
    """Werner pair F0 through a noise channel whose entanglement fidelity is Fe.

    Twirling makes any channel acting on a Werner state depolarising with the same Fe, so
    F = F0*Fe + (1-F0)*(1-Fe)/3 exactly; with F0 = 1 this is Fe, e.g. `t1t2_fidelity`.
    """
    return f0 * channel_fidelity + (1.0 - f0) * (1.0 - channel_fidelity) / 3.0


def stored_fidelity(f0: float, t_s: float, t1_s: float, t2_s: float) -> float:
    """Fidelity of a pair created with F0 after both halves spent t in T1/T2 memories."""
    return through_channel(f0, t1t2_fidelity(t_s, t1_s, t2_s))


def swap_fidelity(f1: float, f2: float) -> float:
    """Entanglement swapping of two Werner pairs: F_s = F1*F2 + (1-F1)*(1-F2)/3."""
    return f1 * f2 + (1.0 - f1) * (1.0 - f2) / 3.0


def bbm92_qber(fidelity: float) -> float:
    """QBER of a BBM92 key drawn from a Werner pair: e = 2(1-F)/3."""
    return 2.0 * (1.0 - fidelity) / 3.0


def channel_efficiency(eta_c: float, attenuation_db_per_km: float, length_km: float) -> float:
    """eta_x = eta_c * 10^(-alpha*L_x/10): emission to detection over one arm."""
    return eta_c * 10.0 ** (-attenuation_db_per_km * length_km / 10.0)


def barrett_kok_probability(eta_a: float, eta_b: float) -> float:
    """Two-photon (Barrett-Kok) heralding: p ~ eta_A*eta_B/2."""
    return eta_a * eta_b / 2.0


def single_click_probability(bright_state: float, eta: float) -> float:
    """Single-click heralding: p ~ 2*alpha_b*eta (the price of F ~ 1 - alpha_b)."""
    return 2.0 * bright_state * eta


def single_click_fidelity(bright_state: float) -> float:
    """Single-click pairs: F ~ 1 - alpha_b."""
    return 1.0 - bright_state


def attempt_period_s(length_km: float, overhead_s: float = 0.0) -> float:
    """T >= L/c_f (photon to the midpoint and the herald back) plus local preparation time."""
    return length_km / FIBRE_LIGHT_SPEED_KM_S + overhead_s


def generation_rate_hz(p_success: float, modes: int, period_s: float) -> float:
    """rate = p * modes / T, with p capped at one success per mode per attempt."""
    return min(p_success, 1.0) * modes / period_s
