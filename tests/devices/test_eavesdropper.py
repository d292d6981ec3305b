"""An intercept-resend eavesdropper on a fibre (issue 20, section 3): the QBER rises as the physics
says (e_d' = e_d + f (1/4 - e_d/2), about a quarter of the attacked fraction), the finite-key
bound drops the key to zero above its threshold, the ETSI 015 notifications fire, and no key of a
block with attacked detections is stored or delivered: the link is held back (KeyCompromised)
until a clean block is released, and the discarded key is counted."""

from __future__ import annotations

import dataclasses
import math

import pytest
from qstrata.agents.devices import qkd_link as qkd_sessions
from qstrata.agents.devices.base import KeyCompromised
from qstrata.agents.devices.key_blocks import KeyBlocks
from qstrata.agents.devices.physics import finite_key, intercept_resend, qkd
from test_twin_finite_key import LINK, link_over
from test_twin_world import link_state, run, status

NS = 1_000_000_000
P = qkd.MODERN
LOSS = 5.0  # 25 km of 0.2 dB/km fibre


# -- the physics, against the formulas written out once more -------------------------------------


@pytest.mark.parametrize("e_d", (0.0, 0.01, 0.033))
@pytest.mark.parametrize("fraction", (0.0, 0.1, 0.5, 1.0))
def test_an_attacked_detection_errs_with_a_quarter_plus_half_the_link_error(e_d, fraction):
    # Eve's basis is right half the time (Bob errs with e_d), wrong half the time (Bob's bit is random)
    attacked = 0.5 * e_d + 0.5 * 0.5
    assert intercept_resend.attacked_error(e_d, fraction) == pytest.approx((1 - fraction) * e_d + fraction * attacked)
    assert intercept_resend.path_error(e_d, [fraction]) == intercept_resend.attacked_error(e_d, fraction)


def test_a_full_attack_gives_a_quarter_and_two_eavesdroppers_compose():
    assert intercept_resend.attacked_error(0.0, 1.0) == 0.25
    # a pulse through two eavesdroppers attacking half of the pulses each, counted pulse by pulse
    e = 0.01
    once, twice = e / 2 + 0.25, (e / 2 + 0.25) / 2 + 0.25
    by_pulse = 0.25 * e + 0.5 * once + 0.25 * twice
    assert intercept_resend.path_error(e, [0.5, 0.5]) == pytest.approx(by_pulse)


@pytest.mark.parametrize("fraction", (0.0, 0.05, 0.2, 1.0))
def test_signal_qber_is_physics_md_with_the_raised_error(fraction):
    eta = qkd.transmittance(P, LOSS)
    e = P.e_d + fraction * (0.25 - P.e_d / 2)
    expected = qkd.error_rate(eta, P.y0, P.mu, e)  # E = (e0 Y0 + e_d' (1 - e^-eta mu)) / Q_mu
    assert intercept_resend.signal_qber(P, LOSS, fraction) == pytest.approx(expected, rel=1e-5)
    assert intercept_resend.signal_qber(P, LOSS, fraction) - intercept_resend.signal_qber(P, LOSS, 0.0) \
        == pytest.approx(fraction * (0.25 - P.e_d / 2), rel=1e-3)  # "about 25 % of the attacked fraction"


def test_the_finite_key_bound_leaves_no_key_above_the_threshold():
    f = intercept_resend.threshold(P, LOSS)
    assert 0.05 < f < 0.2, f
    assert intercept_resend.finite_rate(P, LOSS, f - 1e-3).key.length > 0
    assert intercept_resend.finite_rate(P, LOSS, f + 1e-3).key.length == 0
    # the QBER at the threshold is below what one-way BB84 tolerates with infinitely long keys (11 %)
    assert intercept_resend.signal_qber(P, LOSS, f) < 0.11
    # more loss, smaller blocks: less room for Eve; bigger blocks: more
    assert intercept_resend.threshold(P, 20.0) < f
    assert intercept_resend.threshold(dataclasses.replace(P, block_bits=1e9), LOSS) > f
    assert intercept_resend.threshold(P, 45.0) == 0.0  # no key even without her


def test_a_block_with_one_attacked_tick_is_attacked_and_the_next_is_clean():
    blocks = KeyBlocks(P)
    tick = finite_key.expected_block(P, LOSS, P.f_rep_hz * 0.1)  # a tenth of a block's time or so
    per_block = math.ceil(blocks.size / tick.x.total)
    got = [blocks.add(tick, 0.1, 1e9, attacked=(i == 1)) for i in range(2 * per_block + 1)]
    released = [g for g in got if g.bits or g.attacked_blocks]
    assert released[0].attacked_blocks == 1 and released[0].bits == 0 and released[0].attacked_bits > 0
    assert released[1].attacked_blocks == 0 and released[1].bits == released[0].attacked_bits


# -- the twin: two QKD agents over the tapped fibre -------------------------------------------------


def qber(agent) -> float:
    return float(link_state(agent, LINK)["qkdl_performance"]["phys_perf"][0]["value"])


def finite_leaves(agent) -> dict:
    return link_state(agent, LINK)["qkdl_performance"]["qstrata-qkd:finite-key"]


def store_leaves(agent) -> dict:
    stores = agent.state()["qstrata-ss:service-stratum"]["kme"]["key-stores"]["key-store"]
    return next(s for s in stores if s["qkdl-id"] == LINK)


def notifications(agent, kind: str) -> list[dict]:
    key = f"etsi-qkd-sdn-node:{kind}"
    return [e.data[key] for e in agent.events if e.kind == "notification" and key in e.data]


def test_the_twin_sees_the_attack_discards_its_blocks_and_holds_the_link_back():
    world, alice, bob = link_over(LOSS)
    session = qkd_sessions.sessions(world)[LINK]
    world.run_for(15 * NS)
    assert status(alice, LINK) == "ACTIVE" and qber(alice) == pytest.approx(intercept_resend.signal_qber(P, LOSS, 0),
                                                                            abs=5e-4)
    before = session.store.produced_bits
    run(alice.driver.take_key(LINK, 8192))  # key is delivered before the attack

    # above the threshold: QBER up by a quarter of the fraction, no key, blocks discarded
    world.plant.set_eavesdropper("f", 0.3)
    world.run_for(6 * NS)
    assert qber(alice) == pytest.approx(intercept_resend.signal_qber(P, LOSS, 0.3), abs=5e-4)
    assert qber(alice) == pytest.approx(0.01 + 0.3 * 0.245, abs=1e-3)
    assert status(alice, LINK) == status(bob, LINK) == "PASSIVE"
    assert finite_leaves(alice)["last-block-length"] == "0"
    assert link_state(alice, LINK)["qkdl_performance"]["skr"] == 0
    assert session.store.produced_bits == before, "no key of an attacked block is stored"
    assert session.store.discarded_blocks >= 2
    down = notifications(alice, "sdqkdn_link_down")
    assert down and "eavesdropper on fibre f" in down[-1]["qkd_link"]["reason"]
    alarms = [a for a in notifications(alice, "alarm") if "link" in a]
    assert alarms and "eavesdropper on fibre f" in alarms[-1]["link"]["message"]
    with pytest.raises(KeyCompromised, match=f"QKD link {LINK} is compromised since .*eavesdropper on fibre f"):
        run(alice.driver.take_key(LINK, 8192))
    with pytest.raises(KeyCompromised):
        run(bob.driver.key_stock(LINK))
    assert "compromised-since" in store_leaves(alice)

    # below the threshold: the bound leaves key (the formula's), and the twin still discards it
    world.plant.set_eavesdropper("f", 0.05)
    world.run_for(6 * NS)
    attacked = intercept_resend.finite_rate(P, LOSS, 0.05)
    assert attacked.key.length > 0
    assert int(finite_leaves(alice)["last-block-length"]) == int(attacked.key.length)
    assert qber(alice) == pytest.approx(intercept_resend.signal_qber(P, LOSS, 0.05), abs=5e-4)
    discarded = session.store.discarded_bits
    assert discarded >= attacked.key.length and session.store.produced_bits == before
    assert status(alice, LINK) == "PASSIVE"
    leaves = store_leaves(alice)
    assert int(leaves["discarded-bits"]) == int(discarded) and int(leaves["discarded-blocks"]) >= 3

    # she leaves: the block she shared a tick with is discarded, then clean blocks resume delivery
    world.plant.set_eavesdropper("f", 0.0)
    world.run_for(6 * NS)
    assert status(alice, LINK) == "ACTIVE" and "compromised-since" not in store_leaves(alice)
    assert session.store.produced_bits > before
    assert qber(alice) == pytest.approx(intercept_resend.signal_qber(P, LOSS, 0), abs=5e-4)
    assert run(alice.driver.take_key(LINK, 8192)).nbytes == 1024
    assert [e for e in notifications(alice, "event") if e["link"]["qkdl_id"] == LINK][-1]["link"]["message"] \
        == "link up: distilling key"


def test_sampled_counts_give_the_same_qber_and_no_key_escapes():
    world, alice, _ = link_over(LOSS, deterministic=False, seed=11)
    session = qkd_sessions.sessions(world)[LINK]
    world.run_for(15 * NS)
    before = session.store.produced_bits
    world.plant.set_eavesdropper("f", 0.5)
    seen = []
    for _ in range(8):
        world.advance(NS)
        seen.append(qber(alice))
    assert sum(seen) / len(seen) == pytest.approx(intercept_resend.signal_qber(P, LOSS, 0.5), abs=2e-3)
    assert session.store.produced_bits == before and session.compromise is not None


def test_an_eavesdropper_attacks_a_fraction_of_the_pulses_and_nothing_else():
    world, _, _ = link_over(LOSS)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        world.plant.set_eavesdropper("f", 1.5)
    with pytest.raises(KeyError):
        world.plant.set_eavesdropper("nowhere", 0.5)
