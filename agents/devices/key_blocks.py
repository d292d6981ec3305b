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

A block is marked `attacked` at release when any of its detections came from a tick during which
an eavesdropper attacked the link's pulses (`physics.intercept_resend`): its bound is computed
like any other's from the counts the attack raised, but `add` hands its key to the caller as
attacked key, which the link's key store discards (`qkd_link.KeyStore.discard`). A tick is
attacked as a whole, so a block that shares a tick with an attack is attacked too: the twin
errs on the side of discarding.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from .physics import finite_key as fk
from .physics.qkd import DecoyBB84Parameters


@dataclass(frozen=True, slots=True)
class Yielded:
    """What the blocks completed by one tick released: key bits of clean blocks, and the key bits
    and number of attacked blocks (to be discarded)."""

    bits: float = 0.0
    attacked_bits: float = 0.0
    attacked_blocks: int = 0


NOTHING = Yielded()


@dataclass(frozen=True, slots=True)
class Released:
    """The last block released: its bounds, how long it took and what it yielded."""

    key: fk.FiniteKey
    seconds: float
    ideal_bits: float
    """Asymptotic (ideal-decoy) key of the same pulses."""
    length: float
    """Key bits released: key.length, capped at ideal_bits."""
    attacked: bool = False
    """Some of the block's detections were attacked by an eavesdropper: its key is discarded."""

    @property
    def rate(self) -> float:
        """Finite-key bit/s of the block."""
        return self.length / self.seconds if self.seconds > 0.0 else 0.0

    @property
    def ideal_rate(self) -> float:
        """Asymptotic bit/s over the same time."""
        return self.ideal_bits / self.seconds if self.seconds > 0.0 else 0.0


_FILL_SIZE = 13
"""The block being filled, flat: X detections and errors, Z detections and errors (three
intensities each), pulses."""
_ZERO_FILL = array("d", bytes(8 * _FILL_SIZE))


class KeyBlocks:
    """Counts of the block being filled; `add` releases the blocks a tick completes.

    The counts being filled are summed in place in a flat array of doubles (`_fill`), not as a
    new `Block` per tick: a link adds a tick's counts every second, and a new Block (a Block, two
    Counts, four tuples) per link per tick was most of the objects a tick left for the garbage
    collector to traverse (README, twin benchmark). An array of doubles is not tracked by the
    collector at all. The sums are the ones `Block.__add__` makes, in the same order."""

    def __init__(self, params: DecoyBB84Parameters) -> None:
        self.params = params
        self.decoys = fk.Decoys.of(params)
        self.size = float(params.block_bits)
        self.released = 0
        """Blocks released since the link session started."""
        self.capped = 0
        """Blocks whose bound on sampled counts exceeded the asymptotic key (module docstring)."""
        self.last: Released | None = None
        self._fill = array("d", _ZERO_FILL)
        self.reset()

    def reset(self) -> None:
        """Drop the block being filled: the link lost its lock, its detections make no block."""
        self._fill[:] = _ZERO_FILL
        self.seconds = 0.0
        self.ideal_bits = 0.0
        self.fill_attacked = False

    def forget(self) -> None:
        """`reset`, and report no block until the next one (the link lost its lock: the next
        figures are those of the next lock's blocks)."""
        self.reset()
        self.last = None

    @property
    def fill(self) -> fk.Block:
        """The counts of the block being filled."""
        f = self._fill
        return fk.Block(fk.Counts((f[0], f[1], f[2]), (f[3], f[4], f[5])),
                        fk.Counts((f[6], f[7], f[8]), (f[9], f[10], f[11])), f[12])

    @property
    def fill_bits(self) -> float:
        """Sifted X bits of the block being filled."""
        f = self._fill
        return sum((f[0], f[1], f[2]))  # as Counts.total adds them

    def _accumulate(self, tick: fk.Block) -> None:
        """`fill + tick`, in place."""
        f, i = self._fill, 0
        for counts in (tick.x, tick.z):
            for values in (counts.detections, counts.errors):
                for value in values:
                    f[i] += value
                    i += 1
        f[12] += tick.pulses

    def _set_fill(self, block: fk.Block) -> None:
        f, i = self._fill, 0
        for counts in (block.x, block.z):
            for values in (counts.detections, counts.errors):
                for value in values:
                    f[i] = value
                    i += 1
        f[12] = block.pulses

    def add(self, tick: fk.Block, seconds: float, ideal_bits: float, attacked: bool = False) -> Yielded:
        """Add the counts of `seconds` of locked time (`ideal_bits`: their asymptotic key;
        `attacked`: an eavesdropper attacked some of their pulses); return what the blocks
        completed released (`NOTHING` when none was)."""
        have = tick.x.total
        need = self.size - self.fill_bits
        if have < need or have <= 0.0:
            self._accumulate(tick)
            self.seconds += seconds
            self.ideal_bits += ideal_bits
            self.fill_attacked = self.fill_attacked or attacked
            return NOTHING
        share = max(need, 0.0) / have
        out = [self._release(self.fill + tick.scaled(share), self.seconds + seconds * share,
                             self.ideal_bits + ideal_bits * share, self.fill_attacked or attacked)]
        whole = self.size / have
        full = math.floor((1.0 - share) / whole + 1e-9)
        if full:  # blocks filled entirely within this tick: same counts, one bound for all
            out.append(self._release(tick.scaled(whole), seconds * whole, ideal_bits * whole, attacked, full))
        left = max(1.0 - share - full * whole, 0.0)
        self._set_fill(tick.scaled(left))
        self.seconds = seconds * left
        self.ideal_bits = ideal_bits * left
        self.fill_attacked = attacked and left > 0.0
        return Yielded(sum(bits for bits, bad, _ in out if not bad), sum(bits for bits, bad, _ in out if bad),
                       sum(count for _, bad, count in out if bad))

    def _release(self, block: fk.Block, seconds: float, ideal_bits: float, attacked: bool,
                 count: int = 1) -> tuple[float, bool, int]:
        """Bound one block (or `count` identical ones); (key bits of all, attacked, count)."""
        p = self.params
        key = fk.key_length(block, self.decoys, p.eps_sec, p.eps_cor, p.f_ec)
        length = min(key.length, math.floor(ideal_bits))
        if length < key.length:
            self.capped += count
        self.released += count
        self.last = Released(key, seconds, ideal_bits, length, attacked)
        return length * count, attacked, count
