"""Alarm rules: QBER above 11 % with hysteresis, key availability and fidelity below a floor, an agent
unreachable for T s; alarms raised and cleared in the qstrata-telemetry alarm shape, stored and
published like any telemetry. A link's values count only while it is up: readings of a PENDING or
OFF link neither raise nor clear, a PASSIVE link's may raise but not clear, and a clear takes
`clear-readings` measurements in a row."""

from __future__ import annotations

import asyncio

import pytest
from qstrata.bindings.tree import DataTree
from qstrata.collectors.model import Batch, TargetStatus, Update
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.processors.alarms import AlarmProcessor, ThresholdRule, UnreachableRule

NS = 1_000_000_000
NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
QFS_NODE = "76758410-9639-5f76-bcd0-68eaffda2ce8"
LINK = "0000000a-0000-4000-8000-00000000000b"
QKD = "/etsi-qkd-sdn-node:qkd_node"
QKDL = f"{QKD}/qkd_links/qkd_link[qkdl_id='{LINK}']"
QBER = f"{QKDL}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:QBER']/value"
STORED = f"/qstrata-ss:service-stratum/kme/key-stores/key-store[qkdl-id='{LINK}']/stored-bits"
FIDELITY = "/qstrata-qfs:qfs-node/entanglement-links/link[link-id='e1']/delivered-fidelity"
TEL = "/qstrata-telemetry:telemetry"

QBER_RULE = ThresholdRule("qber-high", f"{TEL}/qkd-links/qkd-link/qber", "etsi-qkd-node-types:MAJOR", above=0.11,
                          clear=0.10)
KEY_RULE = ThresholdRule("key-low", f"{TEL}/qkd-links/qkd-link/key-available", "qstrata-telemetry:WARNING",
                         below=1000, clear=5000, clear_readings=1)
FIDELITY_RULE = ThresholdRule("fidelity-low", f"{TEL}/qfs-links/qfs-link/fidelity", "etsi-qkd-node-types:MINOR",
                              below=0.8, clear_readings=1)
STATUS = f"{QKDL}/qkdl_status"
ELINK_STATUS = "/qstrata-qfs:qfs-node/entanglement-links/link[link-id='e1']/status"
DOWN_RULE = UnreachableRule("agent-down", 30.0, "qstrata-telemetry:CRITICAL")


class Harness:
    """A pipeline with only the alarm processor; alarms collected per ingest."""

    def __init__(self, *rules) -> None:
        self.alarms = AlarmProcessor(list(rules))
        self.pipeline = Pipeline([], [self.alarms])
        asyncio.run(self.alarms.start(self.pipeline))

    def feed(self, target: str, path: str, value, ts: int, status: str | None = None) -> list:
        """One reading; with `status`, the link's status (ETSI identity name) reported just before it."""
        ident = f"{QKD}/qkdn_id" if target == "alice" else "/qstrata-qfs:qfs-node/uuid"
        node = NODE if target == "alice" else QFS_NODE
        updates = [Update(target, ident, node, ts)]
        if status is not None:
            where = STATUS if target == "alice" else ELINK_STATUS
            updates.append(Update(target, where, f"etsi-qkd-node-types:{status}", ts))
        return self.pipeline.ingest([*updates, Update(target, path, value, ts)]).alarms


def test_qber_raises_above_11_percent_and_clears_below_the_hysteresis():
    h = Harness(QBER_RULE)
    assert h.feed("alice", QBER, 0.05, 1 * NS) == []
    (raised,) = h.feed("alice", QBER, 0.12, 2 * NS)
    assert (raised.state, raised.agent, raised.severity, raised.raised_ns) == ("raised", "alice",
                                                                              "etsi-qkd-node-types:MAJOR", 2 * NS)
    assert raised.resource == QKDL
    assert raised.text == f"qber-high: qber 0.12 above 0.11 on {QKDL}"
    assert dict(raised.labels) == {"node": NODE, "link_id": LINK}
    assert h.feed("alice", QBER, 0.13, 3 * NS) == []  # once, not on every sample
    assert h.feed("alice", QBER, 0.105, 4 * NS) == []  # below 11 % but not below the 10 % clear level
    assert h.feed("alice", QBER, 0.09, 5 * NS) == []  # one reading below the clear level is not enough...
    assert h.feed("alice", QBER, 0.09, 6 * NS) == []
    assert h.feed("alice", QBER, 0.105, 7 * NS) == []  # ... and one above it starts the count again
    assert h.feed("alice", QBER, 0.09, 8 * NS) == []
    assert h.feed("alice", QBER, 0.08, 9 * NS) == []
    (cleared,) = h.feed("alice", QBER, 0.09, 10 * NS)  # the third in a row
    assert (cleared.state, cleared.alarm_id, cleared.raised_ns, cleared.cleared_ns) == ("cleared", raised.alarm_id,
                                                                                       2 * NS, 10 * NS)
    assert cleared.text == "qber-high: cleared, qber 0.09, below 0.1 for 3 readings"
    (again,) = h.feed("alice", QBER, 0.2, 11 * NS)
    assert again.alarm_id == raised.alarm_id and again.raised_ns == 11 * NS  # same cause, same id


def test_a_link_that_is_not_up_reports_no_measurement():
    """The re-route: QBER alarm raised, the link re-locks (PENDING, QBER 0), comes back ACTIVE."""
    h = Harness(QBER_RULE)
    (raised,) = h.feed("alice", QBER, 0.12, 1 * NS, status="ACTIVE")
    for t in range(2, 12):  # ten readings of 0 while PENDING: neither a clear nor a count towards one
        assert h.feed("alice", QBER, 0.0, t * NS, status="PENDING") == []
    assert h.feed("alice", QBER, 0.01, 12 * NS, status="ACTIVE") == []
    assert h.feed("alice", QBER, 0.0, 13 * NS, status="PENDING") == []  # a relapse starts the count again
    assert h.feed("alice", QBER, 0.01, 14 * NS, status="ACTIVE") == []
    assert h.feed("alice", QBER, 0.01, 15 * NS) == []
    (cleared,) = h.feed("alice", QBER, 0.01, 16 * NS)
    assert cleared.alarm_id == raised.alarm_id and cleared.cleared_ns == 16 * NS
    assert cleared.text == "qber-high: cleared, qber 0.01, below 0.1 for 3 readings, link ACTIVE"
    # a link coming up reports 0 while PENDING: not a breach of a floor either
    assert h.feed("mem-a", FIDELITY, 0.0, 17 * NS, status="PENDING") == []


def test_a_link_down_for_good_keeps_its_alarm_and_a_passive_link_cannot_clear_it():
    h = Harness(QBER_RULE, FIDELITY_RULE)
    (raised,) = h.feed("alice", QBER, 0.2, 1 * NS, status="ACTIVE")
    for t in range(2, 30):
        assert h.feed("alice", QBER, 0.0, t * NS, status="OFF") == []
    assert raised.alarm_id in h.pipeline.active_alarms
    # PASSIVE: locked, but no key (the QBER is too high to distil any): its QBER is measured, so it
    # may raise; the problem is not gone while the link makes no key, so it never clears
    for t in range(30, 35):
        assert h.feed("alice", QBER, 0.01, t * NS, status="PASSIVE") == []
    (low,) = h.feed("mem-a", FIDELITY, 0.5, 35 * NS, status="PASSIVE")
    assert low.rule == "fidelity-low"
    assert h.feed("mem-a", FIDELITY, 0.9, 36 * NS, status="PASSIVE") == []
    (back,) = h.feed("mem-a", FIDELITY, 0.9, 37 * NS, status="ACTIVE")
    assert back.state == "cleared" and back.alarm_id == low.alarm_id


def test_rules_loaded_later_know_the_link_state_already_reported():
    """Status leaves are sent on change: a rule added by a configuration reload must not wait for
    the next change to know the link is down."""
    h = Harness(KEY_RULE)
    h.feed("mem-a", FIDELITY, 0.0, 1 * NS, status="PENDING")
    h.alarms.set_rules([FIDELITY_RULE])
    assert h.feed("mem-a", FIDELITY, 0.0, 2 * NS) == []  # still PENDING: a 0 is no fidelity
    (low,) = h.feed("mem-a", FIDELITY, 0.5, 3 * NS, status="ACTIVE")
    assert low.rule == "fidelity-low"


def test_key_availability_and_fidelity_floors():
    h = Harness(KEY_RULE, FIDELITY_RULE)
    (low,) = h.feed("alice", STORED, 999, 1 * NS)
    assert low.rule == "key-low" and "key-available 999 below 1000" in low.text
    assert h.feed("alice", STORED, 4000, 2 * NS) == []
    (ok,) = h.feed("alice", STORED, 6000, 3 * NS)
    assert ok.state == "cleared"
    (bad,) = h.feed("mem-a", FIDELITY, 0.75, 4 * NS)
    assert bad.rule == "fidelity-low" and bad.agent == "mem-a"
    (good,) = h.feed("mem-a", FIDELITY, 0.81, 5 * NS)  # no hysteresis given: the floor itself
    assert good.state == "cleared"


def test_an_armed_store_rule_waits_for_the_store_to_fill_then_raises_when_it_runs_low():
    """`arm`: a key store still filling after its link came up (0 bits, then a few) has not run low;
    once it has held the clear level, falling below the threshold raises, and clears as usual."""
    rule = ThresholdRule("key-store-low", KEY_RULE.path, "etsi-qkd-node-types:MINOR", below=1000, clear=5000,
                         clear_readings=2, arm=True)
    h = Harness(rule)
    for t, stored in enumerate((0, 0, 800, 4000), start=1):  # filling: below the floor, never past 5000
        assert h.feed("alice", STORED, stored, t * NS) == []
    assert h.feed("alice", STORED, 6000, 5 * NS) == []  # armed
    assert h.feed("alice", STORED, 2000, 6 * NS) == []
    (low,) = h.feed("alice", STORED, 900, 7 * NS)
    assert low.state == "raised" and "key-available 900 below 1000" in low.text
    assert h.feed("alice", STORED, 5500, 8 * NS) == []
    (ok,) = h.feed("alice", STORED, 5600, 9 * NS)
    assert ok.state == "cleared" and "for 2 readings" in ok.text
    (again,) = h.feed("alice", STORED, 100, 10 * NS)  # still armed after a clear
    assert again.state == "raised"
    assert h.feed("alice", STORED, 6_000_000, 11 * NS) == []
    (big,) = h.feed("alice", STORED, 6_000_001, 12 * NS)  # key bits are written whole, never as 6e+06
    assert big.state == "cleared" and big.text == "key-store-low: cleared, key-available 6000001, above 5000 for 2 readings"
    (low,) = h.feed("alice", STORED, 0, 13 * NS)
    (gone,) = h.pipeline.ingest([Update("alice", STORED.rsplit("/", 1)[0], None, 14 * NS)]).alarms
    assert gone.state == "cleared"
    assert h.feed("alice", STORED, 0, 15 * NS) == []  # a new store starts unarmed again


def test_rule_limited_to_targets_and_resource_deletion_clears():
    rule = ThresholdRule("qber-bob", QBER_RULE.path, QBER_RULE.severity, above=0.11, targets=frozenset({"bob"}))
    h = Harness(rule, QBER_RULE)
    alarms = h.feed("alice", QBER, 0.2, 1 * NS)
    assert [a.rule for a in alarms] == ["qber-high"]
    (gone,) = h.pipeline.ingest([Update("alice", QKDL, None, 2 * NS)]).alarms  # the link was removed
    assert gone.state == "cleared" and "removed" in gone.text


def test_agent_unreachable_for_30_s():
    h = Harness(DOWN_RULE)
    h.pipeline.target_status(TargetStatus("alice", reachable=False, state="backoff", reason="connection refused",
                                          timestamp_ns=100 * NS))
    batch = Batch()
    h.alarms.tick(129 * NS, batch)
    assert batch.alarms == []
    h.alarms.tick(130 * NS, batch)
    (down,) = batch.alarms
    assert down.agent == "alice" and down.severity == "qstrata-telemetry:CRITICAL"
    assert down.text == "agent-down: alice unreachable for 30 s: connection refused"
    later = Batch()
    h.alarms.tick(200 * NS, later)
    assert later.alarms == []  # raised once
    up = Batch()
    h.alarms.status(TargetStatus("alice", reachable=True, state="subscribed", timestamp_ns=210 * NS), up)
    (cleared,) = up.alarms
    assert cleared.alarm_id == down.alarm_id and cleared.cleared_ns == 210 * NS


def test_reloading_rules_clears_alarms_of_removed_rules():
    h = Harness(QBER_RULE)
    (raised,) = h.feed("alice", QBER, 0.2, 1 * NS)
    h.alarms.set_rules([KEY_RULE])
    batch = Batch()
    h.alarms.tick(5 * NS, batch)
    (cleared,) = batch.alarms
    assert cleared.alarm_id == raised.alarm_id and cleared.state == "cleared"
    assert h.feed("alice", QBER, 0.3, 6 * NS) == []  # no longer watched


def test_alarms_are_valid_qstrata_telemetry():
    h = Harness(QBER_RULE)
    (raised,) = h.feed("alice", QBER, 0.2, 1_750_000_000 * NS)
    h.feed("alice", QBER, 0.01, 1_750_000_058 * NS)
    h.feed("alice", QBER, 0.01, 1_750_000_059 * NS)
    (cleared,) = h.feed("alice", QBER, 0.01, 1_750_000_060 * NS)
    for alarm in (raised, cleared):
        tree = DataTree.from_python({"qstrata-telemetry:telemetry": {"alarms": {"alarm": [alarm.to_yang()]}}})
        tree.validate()
    assert cleared.to_yang()["cleared-time"] == "2025-06-15T15:07:40.000Z"


@pytest.mark.parametrize("kwargs,message", [
    (dict(above=0.11, below=0.01), "exactly one"),
    (dict(), "exactly one"),
    (dict(above=0.11, clear=0.2), "must not be above"),
    (dict(below=1000, clear=10), "must not be below"),
    (dict(above=0.11, clear_readings=0), "at least 1"),
])
def test_inconsistent_rules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ThresholdRule("r", QBER_RULE.path, QBER_RULE.severity, **kwargs)


def test_a_target_no_longer_collected_clears_its_alarms_and_agent_entry():
    h = Harness(QBER_RULE, DOWN_RULE)
    (raised,) = h.feed("alice", QBER, 0.2, 1 * NS)
    h.pipeline.target_status(TargetStatus("alice", reachable=False, state="backoff", timestamp_ns=1 * NS))
    assert any("agents/agent[name='alice']" in s.path for s in h.pipeline.registry)
    h.pipeline.forget_target("alice")
    batch = Batch()
    h.alarms.tick(100 * NS, batch)  # not 'unreachable for 99 s': it is not ours any more
    (cleared,) = batch.alarms
    assert cleared.alarm_id == raised.alarm_id and cleared.text == "qber-high: alice no longer collected here"
    assert not any("alice" in s.path or s.target == "alice" for s in h.pipeline.registry)
