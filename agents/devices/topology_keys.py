"""The keys each kind of entry of a topology file may hold, and the one way code reads them.

Every reader of a topology entry takes its keys through the entry's `Keys` (``SWITCH_NODE.get(opts,
"crosstalk_db", -50.0)``), and `topology_check` refuses every key the entry's `Keys` does not
declare. So the keys a file may hold are the keys the code reads: reading an undeclared key fails
at once (a `KeyError` naming this module), and tests/devices/test_topology_keys.py checks on the
source that every declared key is read somewhere. A key added to a twin is thereby allowed in the
file, and a key nobody reads any more is no longer accepted in silence.

The sections of `qstrata up` (controller, scenario, collector) are declared the same way beside
their one reader, `agents/testbed/plan.py`; their names are top-level keys here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Keys:
    """The keys one kind of entry may hold; `what` names the entry in messages."""

    what: str
    keys: tuple[str, ...]

    def __init__(self, what: str, *keys: str) -> None:
        object.__setattr__(self, "what", what)
        object.__setattr__(self, "keys", keys)

    def get(self, entry: Mapping[str, Any], key: str, default: Any = None) -> Any:
        """``entry.get(key, default)`` for a declared key; an undeclared one is a bug in the reader."""
        if key not in self.keys:
            raise KeyError(f"{key!r} is not a key of a {self.what}: declare it in its Keys "
                           "(agents/devices/topology_keys.py or agents/testbed/plan.py)")
        return entry.get(key, default)


TOP = Keys("topology", "name", "seed", "qkd_parameters", "nodes", "fibres", "classical_channels",
           "gnmi_gateway_port", "controller", "scenario", "collector")
"""Top-level sections. ``seed`` and ``qkd_parameters`` are defaults of the world and its QKD nodes;
``gnmi_gateway_port`` is `qstrata up`'s one gNMI port (hosting.py)."""

NODE = Keys("node", "name", "kind", "location", "qkdn_id", "netconf_port", "gnmi_port")
"""Keys of every node, whatever its kind; the kind's own keys are in `NODE_KINDS`."""

QKD_NODE = Keys("qkd node", "interfaces", "parameters", "estimator", "relock_s", "perf_interval_s", "perf_change",
                "kme", "version")
QKD_INTERFACE = Keys("qkd interface", "id", "att_point", "role_support", "wavelength_range", "max_absorption",
                     "model")
ATT_POINT = Keys("attachment point", "device", "port")
"""Where an interface without a fibre in the topology is attached (``att_point`` of an interface)."""

MEMORY_NODE = Keys("memory node", "memories", "urn")
MEMORY = Keys("memory", "id", "technology", "capacity", "t1_s", "t2_s", "efficiency")

SWITCH_NODE = Keys("switch node", "ports", "port_labels", "cross_connects", "insertion_loss_db", "crosstalk_db",
                   "switching_time_us", "manufacturer", "serial", "model", "software_version")
SWITCH_PORT = Keys("switch port", "id")
"""An entry of a switch's ``ports`` when it is a list of mappings rather than a count."""
CROSS_CONNECT = Keys("cross-connect", "ingress", "egress")

NODE_KINDS: dict[str, Keys] = {"qkd": QKD_NODE, "memory": MEMORY_NODE, "switch": SWITCH_NODE}

FIBRE = Keys("fibre", "id", "length_km", "attenuation_db_per_km", "connector_loss_db", "a", "b")
FIBRE_END = Keys("fibre end", "device", "port")
CHANNEL = Keys("classical channel", "id", "fibre", "from", "launch_power_dbm", "wavelength_nm",
               "raman_beta_per_km_nm")
