"""One network per state directory: `qstrata up` holds STATE_DIR/up.lock while it runs (see
`qstrata.agents.state_lock`, which every agent uses for its own folder too).

Other commands ask `holder()` whether a network is running in a state directory before they try
to reach it (`qstrata demo`), so a leftover endpoints.json of a network that is gone is not
mistaken for a live one.
"""

from __future__ import annotations

from pathlib import Path

from qstrata.agents import state_lock
from qstrata.agents.state_lock import StateDirInUse

__all__ = ["LOCK_FILE", "StateDirInUse", "StateDirLock", "holder"]

LOCK_FILE = "up.lock"


class StateDirLock(state_lock.StateDirLock):
    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir, LOCK_FILE, "qstrata up")


def holder(state_dir: Path) -> int | None:
    """The pid of the `up` running in `state_dir`, or None when none is (0: running, pid unknown)."""
    return state_lock.holder(state_dir, LOCK_FILE)
