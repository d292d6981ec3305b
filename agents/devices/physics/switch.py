"""Optical (fibre cross-connect) switch physics: insertion loss and crosstalk (physics.md §3)."""

from __future__ import annotations

from dataclasses import dataclass

from .units import dbm_to_watt


@dataclass(frozen=True, slots=True)
class SwitchParameters:
    """A Polatis-class beam-steering switch (values to verify against a datasheet)."""

    insertion_loss_db: float = 1.0
    crosstalk_db: float = -50.0
    switching_time_us: int = 25_000
    opm_floor_dbm: float = -60.0
    opm_ceiling_dbm: float = 28.0


def crosstalk_power_w(neighbour_dbm: float, crosstalk_db: float) -> float:
    """Light leaking from a lit neighbour port: P_nbr * 10^(XT/10)."""
    return dbm_to_watt(neighbour_dbm) * 10.0 ** (crosstalk_db / 10.0)


def opm_reading_dbm(power_dbm: float, params: SwitchParameters) -> float:
    """What a per-port optical power monitor shows: clipped to its range, 2 decimals."""
    return round(min(max(power_dbm, params.opm_floor_dbm), params.opm_ceiling_dbm), 2)
