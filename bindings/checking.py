"""The shape checks both hand-written file formats of the house make (topology YAML, collector YAML).

Each reader reports every problem at its path in the document, never a traceback; the two readers
word a wrong type the same way because they share these checks. It lives here because `bindings` is
the one package that agents and collectors may both import (see spelling.py).
"""

from __future__ import annotations

from typing import Any


def kind_of(value: Any) -> str:
    """What a YAML value is, in the words of an error message (``expected a list, got a string``)."""
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            type(None): "nothing"}.get(type(value), type(value).__name__)


class ShapeChecker:
    """A document reader's problem list: `add` records one problem; the checks below add theirs."""

    def add(self, path: str, message: str) -> None:
        raise NotImplementedError

    def mapping(self, value: Any, path: str) -> dict | None:
        """`value` if it is a mapping, else None and a problem at `path`."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {kind_of(value)}")
            return None
        return value

    def listing(self, value: Any, path: str) -> list:
        """`value` if it is a list, [] when absent, else [] and a problem at `path`."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, f"expected a list, got {kind_of(value)}")
            return []
        return value
