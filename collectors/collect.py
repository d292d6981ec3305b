"""`qstrata collect` (placeholder until the collector app lands)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("collect", help="run a telemetry collector")
