"""leaf_info: counters vs gauges from the YANG type, followed through typedef chains."""

from __future__ import annotations

import pytest
from qstrata.bindings.leafinfo import leaf_info
from qstrata.bindings.schema import Schema

CASES = [
    ("/qstrata-qfs:qfs-node/entanglement-links/link/attempts", "uint64", True, True),       # yang:counter64
    ("/qstrata-ss:service-stratum/kme/sessions/session/admitted", "uint64", True, True),
    ("/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link/qkdl_performance/skr", "uint32", False, True),
    ("/qstrata-telemetry:telemetry/qkd-links/qkd-link/qber", "decimal64", False, True),
    ("/qstrata-telemetry:telemetry/agents/agent/updates-received", "uint64", True, True),
    ("/qstrata-telemetry:telemetry/agents/agent/reachable", "boolean", False, True),
    ("/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link/qkdl_status", "identityref", False, False),
]


@pytest.mark.parametrize("path,base,counter,numeric", CASES)
def test_leaf_facts(path, base, counter, numeric):
    info = leaf_info(path)
    assert (info.base, info.counter, info.numeric) == (base, counter, numeric)


def test_units_come_from_typedefs():
    assert leaf_info("/qstrata-telemetry:telemetry/qkd-links/qkd-link/secret-key-rate").units == "bit/s"


@pytest.mark.parametrize("path", ["/nope:x", "/etsi-qkd-sdn-node:qkd_node/qkd_links", "not a path"])
def test_not_a_leaf(path):
    assert leaf_info(path) is None


def test_typedef_chain_reaches_the_ietf_counter(tmp_path):
    (tmp_path / "chain-test.yang").write_text("""module chain-test {
  yang-version 1.1; namespace "urn:test:chain"; prefix ct;
  import ietf-yang-types { prefix yang; }
  typedef my-counter { type yang:zero-based-counter64; }
  typedef pkt-counter { type my-counter; }
  typedef my-gauge { type yang:gauge64; }
  container c {
    config false;
    leaf pkts { type pkt-counter; }
    leaf level { type my-gauge; }
    leaf plain { type uint64; }
  }
}""")
    schema = Schema(yang_dir=tmp_path, extra_modules=())
    assert leaf_info("/chain-test:c/pkts", schema).counter
    assert not leaf_info("/chain-test:c/level", schema).counter
    assert not leaf_info("/chain-test:c/plain", schema).counter
