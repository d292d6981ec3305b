"""Re-read the configuration file when it changes; apply it only when it is valid.

Polls the files' modification times and sizes (every second by default): no inotify dependency,
and it works for editors that replace the file and for files on network mounts. A file that no
longer validates is logged (every problem, one line each) and the running configuration stays;
the health view shows the error until a valid file is saved.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from .config import CollectorConfig, ConfigError, load

log = logging.getLogger("qstrata.collectors.config")


def _stamp(files: tuple[Path, ...]) -> tuple:
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


class ConfigWatcher:
    def __init__(self, config: CollectorConfig, apply: Callable[[CollectorConfig], None], interval: float = 1.0) -> None:
        self.config = config
        self.apply = apply
        self.interval = interval
        self.error: str | None = None
        self.reloads = 0
        self._stamp = _stamp(config.files)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="config-watch")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    def check(self) -> bool:
        """Reload if a file changed; True when a new configuration was applied."""
        stamp = _stamp(self.config.files)
        if stamp == self._stamp or self.config.source is None:
            return False
        self._stamp = stamp
        try:
            config = load(self.config.source)
        except ConfigError as exc:
            self.error = exc.issues[0]
            for issue in exc.issues:
                log.error("configuration not reloaded: %s", issue)
            return False
        self.error = None
        self.config = config
        self._stamp = _stamp(config.files)
        self.reloads += 1
        log.info("configuration reloaded from %s: %d targets, %d alarm rules, %d actions", config.source,
                 len(config.targets), len(config.rules), len(config.actions))
        self.apply(config)
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
