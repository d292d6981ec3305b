"""Actions triggered by alarms: a webhook POST against a real local HTTP server and a NETCONF
edit-config against a real `qstrata agent`; rate-limited, logged, failures contained, and never in
the way of ingestion; an alarm's raise, its action's result and its clear recorded in that order
(log, pipeline events, store) however fast the condition goes away."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from collector_servers import WebhookServer
from lxml import etree
from qstrata.collectors.actions import ActionConfig
from qstrata.collectors.config import TargetConfig
from qstrata.collectors.model import Alarm, Update
from qstrata.collectors.outputs.sqlite import SqliteOutput
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.processors.actions import ActionProcessor
from qstrata.collectors.processors.alarms import AlarmProcessor, ThresholdRule
from qstrata.collectors.store import StoreReader

NS = 1_000_000_000
NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
LINK = "0000000a-0000-4000-8000-00000000000b"
QKD_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
QKD = "/etsi-qkd-sdn-node:qkd_node"
QBER = (f"{QKD}/qkd_links/qkd_link[qkdl_id='{LINK}']/qkdl_performance/"
        "phys_perf[perf_type='etsi-qkd-node-types:QBER']/value")
RULE = ThresholdRule("qber-high", "/qstrata-telemetry:telemetry/qkd-links/qkd-link/qber", "etsi-qkd-node-types:MAJOR",
                     above=0.11, clear=0.10, actions=("act",))


async def pipeline_with(action: ActionConfig, resolve=None, outputs=()) -> tuple[Pipeline, ActionProcessor]:
    actions = ActionProcessor([action], {"qber-high": ("act",)}, resolve)
    pipeline = Pipeline(list(outputs), [AlarmProcessor([RULE]), actions])
    await pipeline.start()
    return pipeline, actions


def qber(value: float, ts: int, target: str = "alice") -> list[Update]:
    return [Update(target, f"{QKD}/qkdn_id", NODE, ts), Update(target, QBER, value, ts)]


async def settle(actions: ActionProcessor, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(actions.history) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


@pytest.fixture
def webhook():
    server = WebhookServer()
    yield server
    server.close()


def test_webhook_posts_raise_and_clear(webhook):
    async def main():
        action = ActionConfig("act", "webhook", on=frozenset({"raise", "clear"}), rate_limit=(10, 60.0),
                              options={"url": webhook.url, "timeout": 5.0, "headers": {"X-Token": "t0k"}})
        pipeline, actions = await pipeline_with(action)
        pipeline.ingest(qber(0.2, 1 * NS))
        for k in range(2, 5):  # three readings below the clear level
            pipeline.ingest(qber(0.05, k * NS))
        await settle(actions, 2)
        await pipeline.stop()
        return list(actions.history)

    history = asyncio.run(main())
    assert [r.outcome for r in history] == ["ok", "ok"]
    (p1, h1, raised), (_, _, cleared) = webhook.posts
    assert p1 == "/hook" and h1["X-Token"] == "t0k" and h1["Content-Type"] == "application/json"
    assert raised["alarm"]["state"] == "raised" and raised["alarm"]["source"]["agent"] == "alice"
    assert raised["labels"] == {"node": NODE, "link_id": LINK} and raised["rule"] == "qber-high"
    assert cleared["alarm"]["state"] == "cleared" and cleared["alarm"]["alarm-id"] == raised["alarm"]["alarm-id"]


def test_the_clear_is_recorded_after_the_result_of_the_action_taken_for_the_raise(webhook, tmp_path, caplog):
    """The condition is gone while the raise's webhook still runs (it answers after 1 s): the clear
    waits for its result, so the log, the pipeline's events and the store's alarm log all read
    raise -> action result -> clear -> the clear's action result."""
    caplog.set_level(logging.INFO, logger="qstrata.collectors")
    db = tmp_path / "c.db"

    async def main():
        webhook.delay = 1.0
        action = ActionConfig("act", "webhook", on=frozenset({"raise", "clear"}),
                              options={"url": webhook.url, "timeout": 5.0})
        pipeline, actions = await pipeline_with(action, outputs=[SqliteOutput(db)])
        pipeline.ingest(qber(0.2, 1 * NS))
        for k in range(2, 5):
            pipeline.ingest(qber(0.05, k * NS))
        held = set(pipeline.active_alarms)  # the clear is decided, the action has not answered
        await settle(actions, 2)
        await pipeline.stop()
        return held, pipeline

    held, pipeline = asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    raised_line = next(i for i, m in enumerate(lines) if m.startswith("alarm raised: qber-high"))
    action_line = next(i for i, m in enumerate(lines) if m.startswith("action act for alarm") and "raised)" in m)
    cleared_line = next(i for i, m in enumerate(lines) if m.startswith("alarm cleared: qber-high"))
    assert raised_line < action_line < cleared_line, lines
    assert len(held) == 1
    story = [(e.state,) if isinstance(e, Alarm) else (e.action, e.transition, e.outcome)
             for _, e in pipeline.events_since(0)]
    assert story == [("raised",), ("act", "raise", "ok"), ("cleared",), ("act", "clear", "ok")]
    reader = StoreReader(db)
    try:
        log = reader.alarm_log()
        (alarm,) = reader.alarms()
    finally:
        reader.close()
    assert [(e.event, e.action, e.outcome) for e in log] == [
        ("raised", "", ""), ("action", "act", "ok"), ("cleared", "", ""), ("action", "act", "ok")]
    assert {(e.alarm_id, e.raised_ns, e.agent, e.rule) for e in log} == {(alarm.alarm_id, NS, "alice", "qber-high")}
    assert alarm.cleared_ns == 4 * NS and log[2].detail == alarm.text
    assert [body["alarm"]["state"] for _, _, body in webhook.posts] == ["raised", "cleared"]


def test_rate_limit_failures_and_slow_hooks_do_not_block(webhook):
    async def main():
        action = ActionConfig("act", "webhook", rate_limit=(2, 60.0), options={"url": webhook.url, "timeout": 1.0})
        pipeline, actions = await pipeline_with(action)
        webhook.status, webhook.delay = 500, 0.3
        t0 = time.perf_counter()
        for k, target in enumerate(["a1", "a2", "a3", "a4"]):  # four alarms, two runs allowed per minute
            pipeline.ingest(qber(0.2, (k + 1) * NS, target))
        elapsed = time.perf_counter() - t0
        await settle(actions, 4)
        await pipeline.stop()
        return elapsed, list(actions.history), actions.health()

    elapsed, history, health = asyncio.run(main())
    assert elapsed < 0.2  # a slow webhook never holds up ingestion
    assert sorted(r.outcome for r in history) == ["failed", "failed", "rate-limited", "rate-limited"]
    assert all("HTTP 500" in r.detail for r in history if r.outcome == "failed")
    assert health == {"act": {"rate-limited": 2, "failed": 2}}


def test_webhook_unreachable_is_a_failed_run():
    async def main():
        action = ActionConfig("act", "webhook", options={"url": "http://127.0.0.1:1/hook", "timeout": 2.0})
        pipeline, actions = await pipeline_with(action)
        pipeline.ingest(qber(0.2, NS))
        await settle(actions, 1)
        await pipeline.stop()
        return list(actions.history)

    (run,) = asyncio.run(main())
    assert run.outcome == "failed" and ("refused" in run.detail or "Connect call failed" in run.detail), run.detail


LINK_CONFIG = f"""<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><qkd_node xmlns="{QKD_NS}">
<qkd_links><qkd_link><qkdl_id>{LINK}</qkdl_id><qkdl_enable>true</qkdl_enable></qkd_link></qkd_links>
</qkd_node></config>"""
DISABLE = (f'<qkd_node xmlns="{QKD_NS}"><qkd_links><qkd_link><qkdl_id>{{link_id}}</qkdl_id>'
           "<qkdl_enable>false</qkdl_enable></qkd_link></qkd_links></qkd_node>")


def link_enabled(m) -> str | None:
    data = etree.fromstring(m.get_config(source="running").data_xml.encode())
    return data.findtext(f".//{{{QKD_NS}}}qkd_link/{{{QKD_NS}}}qkdl_enable")


def test_netconf_edit_config_disables_the_link_on_the_agent(agent, connect):
    alice = agent("qkd", "alice", twin=False)
    m = connect(alice)
    m.edit_config(target="running", config=LINK_CONFIG)
    assert link_enabled(m) == "true"
    target = TargetConfig("alice", "127.0.0.1", 9339, kind="qkd", netconf=(alice.host, alice.port),
                          credentials_file=alice.state_dir / "credentials.json")

    async def main(template: str):
        action = ActionConfig("act", "netconf", options={"config": template, "datastore": "running"})
        pipeline, actions = await pipeline_with(action, {"alice": target}.get)
        pipeline.ingest(qber(0.25, NS))
        await settle(actions, 1)
        await pipeline.stop()
        return list(actions.history)

    (run,) = asyncio.run(main(DISABLE))
    assert run.outcome == "ok", run.detail
    assert run.detail == f"edit-config on {alice.host}:{alice.port} (running): ok"
    assert link_enabled(m) == "false"

    bad = DISABLE.replace("<qkdl_enable>false</qkdl_enable>", "<qkdl_enable>perhaps</qkdl_enable>")
    (failed,) = asyncio.run(main(bad))
    assert failed.outcome == "failed" and failed.detail.startswith("rpc-error: invalid-value")
    assert link_enabled(m) == "false"  # the agent refused; nothing changed
