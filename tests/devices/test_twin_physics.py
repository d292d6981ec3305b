"""Physics of the twins against physics.md, with expected values computed here from the
formulas (not by calling the functions under test)."""

from __future__ import annotations

import math

import pytest
from qstrata.agents.devices.physics import memory, qkd, raman
from qstrata.agents.devices.physics.units import noise_yield_per_gate, photon_energy_j

LOSSES_DB = (0, 2, 10, 20, 30, 40)


def h2(p: float) -> float:
    return 0.0 if p <= 0 or p >= 1 else -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def reference_bb84(alpha, eta_bob, y0, e_d, f, f_rep, mu, loss_db, q=0.5):
    """physics.md §1, written out independently."""
    eta = eta_bob * 10 ** (-loss_db / 10)
    q_mu = y0 + 1 - math.exp(-eta * mu)
    e_mu = (0.5 * y0 + e_d * (1 - math.exp(-eta * mu))) / q_mu
    y1 = y0 + eta - y0 * eta
    e1 = (0.5 * y0 + e_d * eta) / y1
    q1 = y1 * mu * math.exp(-mu)
    rate = f_rep * q * (-q_mu * f * h2(e_mu) + q1 * (1 - h2(e1)))
    return max(rate, 0.0), e_mu


MODERN_RAW = (0.2, 0.2, 1e-6, 0.01, 1.16, 1e9, 0.5)
GYS_RAW = (0.21, 0.045, 1.7e-6, 0.033, 1.22, 2e6, 0.48)


@pytest.mark.parametrize("loss_db", LOSSES_DB)
@pytest.mark.parametrize("params,raw", [(qkd.MODERN, MODERN_RAW), (qkd.GYS, GYS_RAW)])
def test_key_rate_and_qber_match_formulas(params, raw, loss_db):
    expected_rate, expected_qber = reference_bb84(*raw, loss_db)
    got = qkd.asymptotic(params, loss_db)
    assert got.e_mu == pytest.approx(expected_qber, rel=0.01)
    if expected_rate == 0.0:
        assert got.key_rate == 0.0
    else:
        assert got.key_rate == pytest.approx(expected_rate, rel=0.01)


def test_modern_rate_at_2_db_is_in_the_calibration_range():
    # Yuan et al. 2018 measured 13.72 Mb/s (finite size) over a 2 dB channel; the asymptotic
    # bound must be of that order and above it.
    rate = qkd.asymptotic(qkd.MODERN, 2.0).key_rate
    assert 13.72e6 < rate < 20e6


def cutoff_km(params: qkd.DecoyBB84Parameters) -> float:
    length = 0.0
    while qkd.asymptotic(params, params.alpha_db_per_km * length).key_rate > 0.0:
        length += 0.5
    return length


def test_modern_key_vanishes_near_220_km():
    assert qkd.asymptotic(qkd.MODERN, 0.2 * 200).key_rate > 0
    assert qkd.asymptotic(qkd.MODERN, 0.2 * 240).key_rate == 0
    assert 205 <= cutoff_km(qkd.MODERN) <= 235


def test_gys_key_vanishes_near_140_km():
    assert 130 <= cutoff_km(qkd.GYS) <= 150


def test_weak_vacuum_bounds_are_below_the_true_single_photon_values():
    for loss in (5, 15, 25):
        exact = qkd.asymptotic(qkd.MODERN, loss)
        practical = qkd.weak_vacuum_expected(qkd.MODERN, loss)
        assert practical.y1 <= exact.y1 * (1 + 1e-9)
        assert practical.e1 >= exact.e1 * (1 - 1e-9)
        assert 0.8 * exact.key_rate < practical.key_rate <= exact.key_rate


def test_weak_vacuum_bound_formula():
    mu, nu, y0, eta, e_d = 0.5, 0.1, 1e-6, 0.2 * 10 ** (-1.0), 0.01
    q = {i: y0 + 1 - math.exp(-eta * i) for i in (mu, nu)}
    e_nu = (0.5 * y0 + e_d * (1 - math.exp(-eta * nu))) / q[nu]
    y1_l = mu / (mu * nu - nu**2) * (
        q[nu] * math.exp(nu) - q[mu] * math.exp(mu) * nu**2 / mu**2 - (mu**2 - nu**2) / mu**2 * y0
    )
    e1_u = (e_nu * q[nu] * math.exp(nu) - 0.5 * y0) / (y1_l * nu)
    got = qkd.decoy_bounds(mu, nu, q[mu], q[nu], e_nu, y0)
    assert got == pytest.approx((y1_l, e1_u), rel=1e-9)


def test_more_classical_power_lowers_the_key_rate():
    params = qkd.MODERN
    length, att = 25.0, 0.2
    rates = []
    for dbm in (-40, -30, -20, -10):
        p_in = 1e-3 * 10 ** (dbm / 10)
        p_f = raman.forward_power_w(p_in, length, att, params.filter_nm)
        y_r = noise_yield_per_gate(p_f, params.wavelength_nm, params.gate_s, params.eta_bob)
        rates.append(qkd.asymptotic(params, att * length, extra_y0=y_r).key_rate)
    assert rates == sorted(rates, reverse=True)
    assert rates[0] > rates[-1]


def test_raman_formulas():
    p_in, length, att, d_lambda, beta = 1e-4, 20.0, 0.2, 0.8, 2e-9
    alpha = att * math.log(10) / 10
    assert raman.forward_power_w(p_in, length, att, d_lambda, beta) == pytest.approx(
        p_in * math.exp(-alpha * length) * beta * length * d_lambda, rel=1e-12
    )
    assert raman.backward_power_w(p_in, length, att, d_lambda, beta) == pytest.approx(
        p_in * beta * d_lambda * (1 - math.exp(-2 * alpha * length)) / (2 * alpha), rel=1e-12
    )
    power = 1e-15
    y = power / (6.62607015e-34 * 299792458.0 / 1550e-9) * 100e-12 * 0.2
    assert noise_yield_per_gate(power, 1550.0, 100e-12, 0.2) == pytest.approx(y, rel=1e-3)
    assert photon_energy_j(1550.0) == pytest.approx(1.2816e-19, rel=1e-3)


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 1.0, 3.0])
def test_stored_pair_fidelity_follows_t1_t2(t):
    t1, t2 = 2.0, 1.0
    gamma = 1 - math.exp(-t / t1)
    expected = 0.5 * (1 - gamma + gamma**2 + math.exp(-2 * t / t2))
    assert memory.t1t2_fidelity(t, t1, t2) == pytest.approx(expected, rel=1e-12)
    assert memory.stored_fidelity(1.0, t, t1, t2) == pytest.approx(expected, rel=1e-12)


def test_pure_dephasing_limit():
    assert memory.t1t2_fidelity(0.3, math.inf, 1.0) == pytest.approx(0.5 * (1 + math.exp(-0.6)))


def test_werner_depolarising():
    assert memory.werner_depolarised(0.9, 2.0, 4.0, 8.0) == pytest.approx(
        0.25 + 0.65 * math.exp(-0.5 - 0.25)
    )


def test_werner_pair_through_noise_channel_matches_depolarising_form():
    # A Werner pair through a channel of entanglement fidelity Fe: 1/4 + (F0-1/4)(Fe-1/4)*4/3.
    f0, fe = 0.92, 0.8
    assert memory.through_channel(f0, fe) == pytest.approx(0.25 + (f0 - 0.25) * (fe - 0.25) * 4 / 3)


def test_swapping_two_werner_pairs():
    assert memory.swap_fidelity(0.95, 0.95) == pytest.approx(0.903, abs=5e-4)
    assert memory.swap_fidelity(0.95, 0.95) == pytest.approx(0.95**2 + 0.05**2 / 3)


def test_bbm92_qber():
    assert memory.bbm92_qber(0.97) == pytest.approx(0.02)


def test_heralded_generation():
    eta_a = memory.channel_efficiency(0.1, 0.2, 10.0)
    assert eta_a == pytest.approx(0.1 * 10 ** (-0.2))
    assert memory.barrett_kok_probability(eta_a, eta_a) == pytest.approx(eta_a**2 / 2)
    assert memory.single_click_probability(0.1, eta_a) == pytest.approx(2 * 0.1 * eta_a)
    assert memory.single_click_fidelity(0.1) == pytest.approx(0.9)
    period = memory.attempt_period_s(20.0)
    assert period == pytest.approx(20.0 / 2e5)
    assert memory.generation_rate_hz(1e-3, 10, period) == pytest.approx(1e-3 * 10 / period)
