"""Spontaneous Raman scattering of a classical channel into a quantum channel in the same fibre.

Eraerds et al., NJP 12, 063027 (2010); Patel et al., PRX 2, 041010 (2012). Forward scatter
travels with the classical light, backward scatter against it; both land in the receiver's
filter band `filter_nm` and add to the background yield Y0.
"""

from __future__ import annotations

import math

from .units import alpha_per_km

DEFAULT_BETA_PER_KM_NM = 1e-9
"""Effective Raman coefficient, 1/(km nm): physics.md gives ~1e-10..3e-9 (to verify)."""


def forward_power_w(
    launch_w: float, length_km: float, attenuation_db_per_km: float, filter_nm: float,
    beta_per_km_nm: float = DEFAULT_BETA_PER_KM_NM,
) -> float:
    """Co-propagating noise at the far end: P_f = P_in*exp(-alpha*L)*beta*L*d_lambda."""
    alpha = alpha_per_km(attenuation_db_per_km)
    return launch_w * math.exp(-alpha * length_km) * beta_per_km_nm * length_km * filter_nm


def backward_power_w(
    launch_w: float, length_km: float, attenuation_db_per_km: float, filter_nm: float,
    beta_per_km_nm: float = DEFAULT_BETA_PER_KM_NM,
) -> float:
    """Counter-propagating noise back at the launch end:
    P_b = P_in*beta*d_lambda*(1 - exp(-2*alpha*L))/(2*alpha)."""
    alpha = alpha_per_km(attenuation_db_per_km)
    if alpha <= 0.0:
        return launch_w * beta_per_km_nm * filter_nm * length_km
    return launch_w * beta_per_km_nm * filter_nm * -math.expm1(-2.0 * alpha * length_km) / (2.0 * alpha)
