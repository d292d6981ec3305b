"""Digital twins driven in process and read as a gNMI subscription would deliver them: real
operational data for the collector's pipeline, without sockets."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from qstrata.agents.devices.base import ConfigTransaction
from qstrata.agents.devices.registry import create_for
from qstrata.agents.devices.world import World
from qstrata.bindings.codecs.gnmi import tree_to_updates
from qstrata.bindings.paths import gnmi_to_xpath
from qstrata.bindings.tree import DataTree
from qstrata.collectors.model import Update


class Twin:
    def __init__(self, world: World, name: str) -> None:
        self.name = name
        self.driver = create_for(world, name)
        self.running = copy.deepcopy(asyncio.run(self.driver.start()).config)

    def edit(self, mutate) -> None:
        new = copy.deepcopy(self.running)
        mutate(new)
        # drivers work from the change list, as the datastore hands it to them
        changes = DataTree.from_python(self.running).diff(DataTree.from_python(new))
        txn = ConfigTransaction(tuple(changes), self.running, new)
        asyncio.run(self.driver.prepare(txn))
        asyncio.run(self.driver.commit(txn))
        self.running = new

    def updates(self, ts: int) -> list[Update]:
        """What a gNMI subscription to the whole agent would deliver: running + state, leaf by leaf."""
        tree = DataTree.from_python(self.running)
        tree.merge(DataTree.from_python(self.driver.read_state(), validate=False))
        out = []
        for u in tree_to_updates(tree):
            kind = u.val.WhichOneof("value")
            if kind == "leaflist_val":
                continue
            if kind == "decimal_val":
                value: Any = u.val.decimal_val.digits / 10 ** u.val.decimal_val.precision
            else:
                value = getattr(u.val, kind)
            out.append(Update(self.name, gnmi_to_xpath(u.path), value, ts))
        return out
