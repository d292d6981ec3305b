"""Which twin serves which kind of device: the one list of built-in device kinds.

    driver = create("qkd", world, "alice")          # -> DeviceDriver
    drivers = create_all(world)                     # every node of the world's topology
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .base import DeviceDriver
from .empty import EmptyDevice
from .memory_twin import MemoryTwin
from .qkd_twin import QkdTwin
from .switch_twin import SwitchTwin
from .world import World

log = logging.getLogger("qstrata.devices")

Factory = Callable[..., DeviceDriver]
"""factory(world, name, **options) -> DeviceDriver"""

BUILTINS: dict[str, Factory] = {
    "qkd": QkdTwin,
    "memory": MemoryTwin,
    "switch": SwitchTwin,
}


def kinds() -> tuple[str, ...]:
    return tuple(BUILTINS)


def create(kind: str, world: World, name: str, **options: Any) -> DeviceDriver:
    """The twin of device `name` (a node of the world's topology) for its kind."""
    factory = BUILTINS.get(kind)
    if factory is None:
        raise ValueError(f"no device twin of kind {kind!r} (known: {', '.join(BUILTINS)})")
    return factory(world, name, **options)


def create_for(world: World, name: str, **options: Any) -> DeviceDriver:
    """The twin of a topology node, its kind taken from the topology."""
    node = world.topology.nodes.get(name)
    if node is None:
        raise ValueError(f"{name} is not a node of topology {world.topology.name}")
    return create(node.kind, world, name, **options)


def create_or_empty(world: World, kind: str, name: str) -> DeviceDriver:
    """The twin of node `name` when the world's topology has a node of that name and kind, else
    an empty device (logged): the agent still serves its kind's modules."""
    node = world.topology.nodes.get(name)
    if node is None or node.kind != kind:
        log.warning("%s is not a %s node of topology %s: serving an empty device", name, kind, world.topology.name)
        return EmptyDevice(kind, name)
    return create(kind, world, name)


def create_all(world: World, names: list[str] | None = None) -> list[DeviceDriver]:
    """Twins of every node (or of `names`) of the world's topology, in topology order."""
    return [create_for(world, n) for n in (names if names is not None else list(world.topology.nodes))]
