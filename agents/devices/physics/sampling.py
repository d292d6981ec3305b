"""Random draws that make twin telemetry fluctuate like hardware: counts and slow drifts.

Every function takes its `random.Random` so a world's named streams keep runs reproducible.
"""

from __future__ import annotations

import math
import random

_EXACT_POISSON_MAX = 30.0


def poisson(rng: random.Random, mean: float) -> float:
    """Poisson count; exact (Knuth) for small means, normal approximation above 30."""
    if mean <= 0.0:
        return 0.0
    if mean > _EXACT_POISSON_MAX:
        return max(0.0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    k, prod = 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return float(k)


def binomial(rng: random.Random, n: float, p: float) -> float:
    """Binomial count; Poisson for rare events, normal when both tails are wide."""
    if n <= 0.0 or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return n
    mean = n * p
    var = mean * (1.0 - p)
    if var > _EXACT_POISSON_MAX:
        return min(n, max(0.0, round(rng.gauss(mean, math.sqrt(var)))))
    if p < 0.05 or n > 1000:
        return min(n, poisson(rng, mean))
    return float(sum(1 for _ in range(int(n)) if rng.random() < p))


def ornstein_uhlenbeck(
    rng: random.Random, x: float, mean: float, sigma: float, tau_s: float, dt_s: float
) -> float:
    """Exact OU step: relax towards `mean` with time constant tau; stationary std `sigma`."""
    if dt_s <= 0.0:
        return x
    decay = math.exp(-dt_s / tau_s)
    return mean + (x - mean) * decay + sigma * math.sqrt(1.0 - decay * decay) * rng.gauss(0.0, 1.0)
