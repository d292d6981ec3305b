"""What the commands that edit an agent's state dir directly (`qstrata user`, `qstrata sae`) share:
they work whether the agent runs or not, take the dir as ``--state-dir`` and fail in one line.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_state_dir(p: argparse.ArgumentParser, holds: str) -> None:
    """The required ``--state-dir`` of a subcommand; `holds` says what the command reads there."""
    p.add_argument("--state-dir", required=True, help=f"the {holds}")


def fail(command: str, message: str, code: int = EXIT_FAILED) -> int:
    """Say what is wrong on stderr in one line (``qstrata COMMAND: MESSAGE``); the exit code."""
    print(f"qstrata {command}: {message}", file=sys.stderr)
    return code
