"""Intercept-resend eavesdropping on a decoy-state BB84 link: the errors it adds, and the fraction
of attacked pulses at which the finite-key bound leaves no key.

Eve cuts into a fibre and, on a fraction f of the pulses, measures each in a basis she picks at
random (X or Z) and sends Bob a fresh pulse in the state she found. Half the time she picks
Alice's basis and Bob's bit is what it would have been; the other half her state is unbiased in
Alice's basis and Bob's bit is random. A state that reaches Eve with error p relative to Alice's
bit therefore leaves her with error p/2 + 1/4, and over all pulses (an affine map, so the mean
composes exactly):

    e' = e + f (1/4 - e/2)                 (~ e + f/4 for small e)

Starting from the link's own optical error e_d, one eavesdropper gives e_d' = e_d + f (1/4 - e_d/2),
two or more on the path apply the map in turn. The signal QBER is then the link's formula with
e_d' in place of e_d, E = (E0 Y0 + e_d' (1 - e^(-eta mu))) / Q_mu: dark counts were random already.
A full attack (f = 1) gives 1/4 + e_d/2, the textbook 25 % plus half the link's own error.

Eve's choice of basis is symmetric, so the test (Z) basis errs as much as the key (X) basis: the
finite-key bound (`finite_key`) sees the raised phase error, and the key shrinks to nothing at a
fraction `threshold` that depends on the loss and the block size. Eve is assumed to keep Bob's
detection rates as they were (she sits close to Bob, or makes up for the loss she causes): the
counts are the channel's, only the errors betray her.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import finite_key
from .qkd import DecoyBB84Parameters

FULL_ATTACK_ERROR = 0.25
"""Error an attacked detection adds at most: Eve's basis is wrong half the time, and then Bob's bit
is wrong half the time."""


def attacked_error(e: float, fraction: float) -> float:
    """Error after one eavesdropper attacks `fraction` of the pulses: e + f (1/4 - e/2)."""
    return e + fraction * (FULL_ATTACK_ERROR - e / 2.0)


def path_error(e_d: float, fractions: Iterable[float]) -> float:
    """The link's optical error `e_d` after every eavesdropper on its path (one fraction each)."""
    e = e_d
    for fraction in fractions:
        e = attacked_error(e, fraction)
    return e


def signal_qber(params: DecoyBB84Parameters, loss_db: float, fraction: float, extra_y0: float = 0.0,
                e_d: float | None = None) -> float:
    """Expected QBER of the signal pulses in the key basis (what systems report) with `fraction`
    of the pulses attacked."""
    e = attacked_error(params.e_d if e_d is None else e_d, fraction)
    block = finite_key.expected_block(params, loss_db, params.f_rep_hz, extra_y0, e)
    return block.x.errors[0] / block.x.detections[0]


def finite_rate(params: DecoyBB84Parameters, loss_db: float, fraction: float, extra_y0: float = 0.0,
                e_d: float | None = None) -> finite_key.BlockRate:
    """`finite_key.finite_rate` of a link with `fraction` of its pulses attacked."""
    e = attacked_error(params.e_d if e_d is None else e_d, fraction)
    return finite_key.finite_rate(params, loss_db, extra_y0, e_d=e)


def threshold(params: DecoyBB84Parameters, loss_db: float, extra_y0: float = 0.0, e_d: float | None = None,
              tolerance: float = 1e-6) -> float:
    """The smallest attacked fraction at which a block of the parameters' size yields no key (0
    when the link makes none unattacked). The key length falls as the error rises, so bisection
    finds it."""
    if finite_rate(params, loss_db, 0.0, extra_y0, e_d).key.length <= 0.0:
        return 0.0
    low, high = 0.0, 1.0
    if finite_rate(params, loss_db, high, extra_y0, e_d).key.length > 0.0:
        return 1.0
    while high - low > tolerance:
        middle = (low + high) / 2.0
        if finite_rate(params, loss_db, middle, extra_y0, e_d).key.length > 0.0:
            low = middle
        else:
            high = middle
    return high
