"""Unit conversions shared by the optics formulas (dB, dBm, photon energy)."""

from __future__ import annotations

import math

PLANCK_J_S = 6.62607015e-34
SPEED_OF_LIGHT_M_S = 299_792_458.0
DARK_DBM = -200.0
"""Stands for "no light" where a power in dBm is needed (log of zero)."""


def db_to_linear(loss_db: float) -> float:
    """Transmittance of a loss in dB (10 dB -> 0.1)."""
    return 10.0 ** (-loss_db / 10.0)


def dbm_to_watt(power_dbm: float) -> float:
    """Optical power: 0 dBm is 1 mW."""
    return 1e-3 * 10.0 ** (power_dbm / 10.0)


def watt_to_dbm(power_w: float) -> float:
    """Inverse of `dbm_to_watt`; DARK_DBM for no light at all."""
    if power_w <= 0.0:
        return DARK_DBM
    return 10.0 * math.log10(power_w / 1e-3)


def photon_energy_j(wavelength_nm: float) -> float:
    """h*nu of one photon, to turn a noise power into photons per second."""
    return PLANCK_J_S * SPEED_OF_LIGHT_M_S / (wavelength_nm * 1e-9)


def alpha_per_km(attenuation_db_per_km: float) -> float:
    """Fibre attenuation in 1/km (power e-folding), as the Raman formulas want it."""
    return attenuation_db_per_km * math.log(10.0) / 10.0


def yield_per_gate(photon_rate_hz: float, gate_s: float, eta_det: float) -> float:
    """Detection probability per gate from noise photons arriving at `photon_rate_hz`.

    physics.md: Y = P/(h*nu) * dt_gate * eta_det. Written as 1 - exp(-Y) so that a bright
    leak saturates at one click per gate instead of exceeding probability 1; for the small
    yields of interest (< 1e-3) the two agree to better than 0.05 %.
    """
    return -math.expm1(-photon_rate_hz * gate_s * eta_det)


def noise_yield_per_gate(power_w: float, wavelength_nm: float, gate_s: float, eta_det: float) -> float:
    """`yield_per_gate` of a noise power at the receiver."""
    return yield_per_gate(power_w / photon_energy_j(wavelength_nm), gate_s, eta_det)
