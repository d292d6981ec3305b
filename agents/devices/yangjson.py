"""JSON-IETF (RFC 7951) encoding details the twins share.

decimal64 travels as a string, uint32 as a number (saturated, since a counter that wraps would
lie), identityrefs are module-qualified when the identity's module differs from the leaf's.
"""

from __future__ import annotations

from typing import Any

UINT32_MAX = 4_294_967_295


def uint32(value: float) -> int:
    """Round and saturate to the uint32 range."""
    return int(min(max(round(value), 0), UINT32_MAX))


def decimal64(value: float, fraction_digits: int) -> str:
    return f"{value:.{fraction_digits}f}"


def identity(module: str, name: str) -> str:
    return f"{module}:{name}"


def bare_identity(value: Any) -> str | None:
    """"etsi-qkd-node-types:PHYS" or "PHYS" -> "PHYS" (controllers send both)."""
    if value is None:
        return None
    return str(value).rsplit(":", 1)[-1]


def as_float(value: Any) -> float | None:
    """decimal64 arrives as a string, but be lenient with numbers."""
    if value is None or value == "":
        return None
    return float(value)


def as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def as_list(value: Any) -> list[Any]:
    """A JSON-IETF list or leaf-list; tolerate a single entry sent as an object."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]
