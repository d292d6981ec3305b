"""The registries of inputs, outputs and actions: a kind names a "module:class" that is imported
only when a collector asks for it, so an optional dependency (nats-py) loads only for its users."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def load(registry: Mapping[str, str], kind: str, what: str, error: type[ValueError] = ValueError) -> Any:
    """The class registered as `kind`; `error` (a ValueError) names the kinds there are."""
    target = registry.get(kind)
    if target is None:
        raise error(f"unknown {what} {kind!r}; known: {', '.join(sorted(registry))}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
