"""What every class in bindings/generated derives from its data, and the `entry()` of its lists.

A generated class states only its data: ``PATH`` and, for a list, ``KEYS``. `derive` completes
them all the same way: ``NAME``, the JSON-IETF member name, is PATH's last step, and a list's
``entry()`` builds the data path of one entry with this one builder, instead of a generated
function per list.
"""

from __future__ import annotations

from types import ModuleType
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



def derive(module: ModuleType) -> None:
    """Complete every class of a generated module (the package's __init__ calls this for each):
    ``NAME`` and, for a list with keys, ``entry``. A top-level class whose PATH has more than one
    step stands in an augment, and a class below a list (a class with ``KEYS``) has no data path
    without the enclosing entry's keys: their lists' entry() has no default parent ('')."""
    for cls in _classes(module, module.__name__):
        _complete(cls, module.__name__, in_data=cls.PATH.count("/") == 1)


def _complete(cls: type, module_name: str, in_data: bool) -> None:
    parent_path, _, name = cls.PATH.rpartition("/")
    cls.NAME = name
    keys = vars(cls).get("KEYS")
    if keys:
        cls.entry = entry(name, keys, parent_path if in_data else "")
    for child in _classes(cls, module_name):
        _complete(child, module_name, in_data and "KEYS" not in vars(cls))


def _classes(namespace: object, module_name: str) -> list[Any]:
    return [v for v in vars(namespace).values() if isinstance(v, type) and v.__module__ == module_name]
