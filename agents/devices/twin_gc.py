"""The garbage collector's policy in a process that hosts twins (an agent, `qstrata up`'s world
service): long-lived objects frozen once built, the young generations collected a slice at a time.

Why (measured with `scripts/bench_twins.py`, 1,000 QKD links + 1,000 entanglement links + 1,000
live service units, CPython 3.11; README, twin benchmark):

- A full collection traverses every tracked object of the process: the built world, schemas and
  datastores are some 200,000, so one full collection took 80-200 ms, the longest stretch the
  event loop waited, many times the tick's 2 ms slice. `settle` collects once and moves what
  survives to the permanent generation (`gc.freeze`), which collections never traverse;
  reference counting still frees those objects. After it a full collection traverses only what
  was made since (some 14,000 objects with 1,000 units, 1-3 ms). The paced clock settles after
  a tick when links or twins came or went (`World.settle_garbage`), as an agent does once it
  has started.
- CPython starts a young collection when allocations minus deallocations of tracked objects pass
  700. A tick replaces as many objects as it makes (a link's new block for its last one, a new
  pair for a discarded one), so that count barely moves while the young generation fills with
  a whole tick's survivors, 10,000-20,000 objects; the collection that finally comes then takes
  1.5-6 ms inside one slice. `collect_young` runs at the start of a slice of the sliced tick
  (`world._Pacer`, its time counted in the slice) when half a slice or more has passed since
  the last: the young generation then holds about one slice's survivors, and the middle one
  is collected when due (every `gc.get_threshold()[1]` young collections, as CPython would),
  ten slices' survivors. Full collections stay CPython's own (a full one forced every thousand
  slices took up to 7 ms): they come from allocations between ticks, where the agent's own
  garbage is made; the twins make none (none collected in 150 ticks with 1,000 units).
"""

from __future__ import annotations

import gc
import time

RECLAIM_EVERY_S = 600.0
"""A settle at least this long after the last reclaim unfreezes first, so the full collection it
runs also traverses what earlier settles froze. `gc.freeze` freezes every object alive, not only
the world's: a NETCONF or RESTCONF session open at that moment is frozen too, and any cycle its
objects form when it closes would never be collected. Reclaiming costs one full traversal of the
process (80-200 ms with 1,000 links and units, between two ticks) at most once in this time, and
only after a tick in which links or twins came or went."""

_last_reclaim = time.monotonic()


def settle(*, reclaim: bool | None = None) -> None:
    """Collect once, then freeze every surviving object (call when a process has built what it
    keeps: its world and twins, schemas, datastores, servers). Call again after building more.
    `reclaim` (default: when `RECLAIM_EVERY_S` has passed since the last) collects what was
    frozen before too, and frees the cycles that became garbage since."""
    global _last_reclaim
    now = time.monotonic()
    if reclaim is None:
        reclaim = now - _last_reclaim >= RECLAIM_EVERY_S
    if reclaim:
        gc.unfreeze()
        _last_reclaim = now
    gc.collect()
    gc.freeze()


def collect_young() -> None:
    """The young generation, or the young and middle ones when the middle one is due."""
    gc.collect(1 if gc.get_count()[1] >= gc.get_threshold()[1] else 0)
