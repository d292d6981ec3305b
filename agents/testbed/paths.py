"""Paths as files hold them and as people read them.

Files the testbed writes hold absolute paths (a reader resolves them the same way from any
folder); the terminal shows them relative to the working folder, the way the user typed them.
"""

from __future__ import annotations

from pathlib import Path


def shown(path: Path | str | None) -> str:
    """`path` relative to the working folder when it lies under it, else as it is."""
    if path is None:
        return "-"
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
