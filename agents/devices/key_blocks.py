"""Post-processing in blocks: a QKD link's detections gather until a block of n_X sifted X-basis
bits is complete, and only then is the block's secret key known and released.

A real system cannot distil key from a few detections: the finite-key bound (`physics.finite_key`)
needs a whole block's counts. So key arrives in blocks, after the time the link needs to fill one
(milliseconds on a short link, hours at 40 dB with large blocks), and the rate a system reports is
that of its last block: key length / the time the block took.

Each block's key is also capped by the asymptotic (ideal-decoy) key of the same pulses, summed
over the ticks the block spans. For mean counts the bound is always below it; on sampled counts
it could exceed it only when the sample strays past the bound's own confidence margins (odds
below eps_sec per block), which no real link can do either. The cap makes "the reported rate is
never above the asymptotic rate of the same link" hold in every run, not just almost surely
(`capped` counts the blocks where it acted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .physics import finite_key as fk
from .physics.qkd import DecoyBB84Parameters


@dataclass(frozen=True, slots=True)
class Released:
    """The last block released: its bounds, how long it took and what it yielded."""

    key: fk.FiniteKey
    seconds: float
    ideal_bits: float
    """Asymptotic (ideal-decoy) key of the same pulses."""
    length: float
    """Key bits released: key.length, capped at ideal_bits."""

    @property
    def rate(self) -> float:
        """Finite-key bit/s of the block."""
        return self.length / self.seconds if self.seconds > 0.0 else 0.0

    @property
    def ideal_rate(self) -> float:
        """Asymptotic bit/s over the same time."""
        return self.ideal_bits / self.seconds if self.seconds > 0.0 else 0.0


class KeyBlocks:
    """Counts of the block being filled; `add` releases the blocks a tick completes."""

    def __init__(self, params: DecoyBB84Parameters) -> None:
        self.params = params
        self.decoys = fk.Decoys.of(params)
        self.size = float(params.block_bits)
        self.released = 0
        """Blocks released since the link session started."""
        self.capped = 0
        """Blocks whose bound on sampled counts exceeded the asymptotic key (module docstring)."""
        self.last: Released | None = None
        self.reset()

    def reset(self) -> None:
        """Drop the block being filled: the link lost its lock, its detections make no block."""
        self.fill = fk.EMPTY
        self.seconds = 0.0
        self.ideal_bits = 0.0

    def forget(self) -> None:
        """`reset`, and report no block until the next one (the link lost its lock: the next
        figures are those of the next lock's blocks)."""
        self.reset()
        self.last = None

    @property
    def fill_bits(self) -> float:
        """Sifted X bits of the block being filled."""
        return self.fill.x.total

    def add(self, tick: fk.Block, seconds: float, ideal_bits: float) -> float:
        """Add the counts of `seconds` of locked time (`ideal_bits`: their asymptotic key); return
        the key bits of the blocks completed, 0 when none was."""
        have = tick.x.total
        need = self.size - self.fill.x.total
        if have < need or have <= 0.0:
            self.fill += tick
            self.seconds += seconds
            self.ideal_bits += ideal_bits
            return 0.0
        share = max(need, 0.0) / have
        bits = self._release(self.fill + tick.scaled(share), self.seconds + seconds * share,
                             self.ideal_bits + ideal_bits * share)
        whole = self.size / have
        full = math.floor((1.0 - share) / whole + 1e-9)
        if full:  # blocks filled entirely within this tick: same counts, one bound for all
            bits += full * self._release(tick.scaled(whole), seconds * whole, ideal_bits * whole, full)
        left = max(1.0 - share - full * whole, 0.0)
        self.fill = tick.scaled(left)
        self.seconds = seconds * left
        self.ideal_bits = ideal_bits * left
        return bits

    def _release(self, block: fk.Block, seconds: float, ideal_bits: float, count: int = 1) -> float:
        p = self.params
        key = fk.key_length(block, self.decoys, p.eps_sec, p.eps_cor, p.f_ec)
        length = min(key.length, math.floor(ideal_bits))
        if length < key.length:
            self.capped += count
        self.released += count
        self.last = Released(key, seconds, ideal_bits, length)
        return length
