"""The `entry()` of every list class in bindings/generated: a list entry's data path.

The generated modules state each list's name, keys and parent path once (``entry = _entry(NAME,
KEYS, PARENT)``) and share this one builder, instead of a generated function per list.
"""

from __future__ import annotations

from typing import Any


def q(value: object) -> str:
    """Quote a key value for an XPath predicate (YANG booleans are lower case)."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text + "'" if "'" not in text else '"' + text + '"'


def entry(name: str, keys: tuple[str, ...], default_parent: str) -> Any:
    """The `entry` of a list class: ``entry(*key_values, parent=default_parent)`` is the data path
    of one entry, the key values in `keys`' order; `parent` is the parent's data path. With
    ``below="leaf"`` (or ``"a/b"``) it is the path of that node inside the entry, the form a
    device's refusal or change list names."""

    def data_path(*values: object, parent: str = default_parent, below: str = "") -> str:
        if len(values) != len(keys):
            raise TypeError(f"{name}.entry() takes {len(keys)} key value(s) ({', '.join(keys)}), got {len(values)}")
        path = f"{parent}/{name}" + "".join(f"[{k}={q(v)}]" for k, v in zip(keys, values, strict=True))
        return f"{path}/{below}" if below else path

    return staticmethod(data_path)
