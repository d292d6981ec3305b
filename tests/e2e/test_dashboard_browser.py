"""The dashboard in a real browser: `qstrata up` runs the built-in network, Debian's chromium (headless,
fresh profile, no network beyond 127.0.0.1) loads the page from the collector, and the tests wait on
the page's own DOM:

* first paint: with every ``/api/*`` request held unanswered, the document alone fills every panel
  (the collector embeds the state in the page; a panel without data says so in words);
* the live network on a desktop window: plots hold data, the QKD link shows ACTIVE with a non-zero
  key rate, both ends of a link are drawn distinguishably, the page asks for history by full link id;
* key delivery: up's own application fetches keys alice -> charlie through bob; the Key delivery
  panel lists it (master -> slave, route, keys/s and bits/s delivered, key made, refusals) and
  plots its delivered bit rate against the key rate of both links on its route;
* a phone-width window (390 x 844, then 360 and 500 wide): the topology fills the width at a
  readable size, the header stays compact, nothing overflows the page and every table scrolls
  inside its panel.

Screenshots (desktop and narrow) go under the test's output directory (pytest's tmp_path).

chromium is driven over the DevTools protocol on a pipe (`chromium_cdp.py`): a fixed
--virtual-time-budget never elapses while the page's event stream is open."""

from __future__ import annotations

import json
import re
import time

import pytest
from agent_processes import stop_process
from chromium_cdp import Browser, find_chromium
from up_process import start_up

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(find_chromium() is None,
                                 reason="chromium is not installed (bash scripts/dev.sh setup installs it)")]

AGENTS = {"alice", "bob", "charlie", "sw1", "mem-a", "mem-b"}
RELAYED = "6ba3ee58-1c2d-4e5f-8a9b-0c1d2e3f4a02"
"""The built-in network's relayed application (alice -> charlie through bob), fetched by up's own
application (controller section of agents/devices/topologies/network.yaml)."""

READY = """(() => {
  if (!document.getElementById('live')) return null;  // still loading
  const q = document.querySelector('#links tr[data-kind="qkd"]');
  const series = [...document.querySelectorAll('#plots path.series')];
  return JSON.stringify({
    live: document.getElementById('live').dataset.state,
    status: q ? q.querySelector('[data-status]').dataset.status : null,
    rate: q ? Number(q.querySelector('[data-rate]').dataset.rate || 0) : 0,
    plots: series.map(p => [p.dataset.metric, p.dataset.agent, Number(p.dataset.points)]),
    arcs: [...document.querySelectorAll('#topology path.link')].map(p => p.dataset.status),
    nodes: [...document.querySelectorAll('#topology [data-node]')].map(g => g.dataset.node),
    agents: document.querySelectorAll('#agents .badge.subscribed').length,
  });
})()"""

PANELS = """(() => {
  const out = {};
  for (const id of ['network', 'summary', 'topology', 'alarms', 'agents', 'links', 'delivery', 'plots', 'footer']) {
    const e = document.getElementById(id);
    const r = e.getBoundingClientRect();
    out[id] = {text: e.innerText.trim().slice(0, 300), shapes: e.querySelectorAll('svg *').length,
               width: r.width, height: r.height};
  }
  out.nodes = [...document.querySelectorAll('#topology [data-node]')].map(g => g.dataset.node);
  out.live = document.getElementById('live').textContent.trim();
  return JSON.stringify(out);
})()"""

STYLES = """(() => JSON.stringify([...document.querySelectorAll('#plots .chart')].map(c => ({
  metric: c.dataset.metric,
  lines: [...c.querySelectorAll('path.series')].map(p => ({agent: p.dataset.agent, stroke: p.getAttribute('stroke'),
    dash: p.getAttribute('stroke-dasharray') || '', width: p.getAttribute('stroke-width')})),
  markers: [...c.querySelectorAll(':scope > svg [data-marker]')].map(m => [m.dataset.agent, m.dataset.marker]),
  latest: [...c.querySelectorAll('[data-latest]')].map(l => [l.dataset.agent, l.textContent.trim()]),
  legend: [...c.closest('.plotcard').querySelectorAll('.legend [data-agent]')].map(l => ({
    agent: l.dataset.agent, text: l.textContent.trim(),
    dash: (l.querySelector('line') || {getAttribute: () => null}).getAttribute('stroke-dasharray') || '',
    stroke: (l.querySelector('line') || {getAttribute: () => null}).getAttribute('stroke')})),
}))))()"""

DELIVERY = """(() => {
  if (!document.getElementById('delivery')) return null;  // still loading
  const row = document.querySelector('#apps tr[data-app="@APP@"]');
  const chart = document.querySelector('#delivery .chart[data-app="@APP@"]');
  return JSON.stringify({
    app: row ? row.dataset.app : null,
    text: row ? row.innerText.replace(/\\s+/g, ' ').trim() : document.getElementById('delivery').innerText.trim(),
    route: row ? row.querySelector('[data-route]').dataset.route : null,
    keys: row ? Number(row.querySelector('[data-keys]').dataset.keys || 0) : 0,
    bits: row ? Number(row.querySelector('[data-bits]').dataset.bits || 0) : 0,
    made: row ? Number(row.querySelector('[data-made]').dataset.made || 0) : 0,
    refused: row ? JSON.parse(row.querySelector('[data-refused]').dataset.refused) : null,
    lines: chart ? [...chart.querySelectorAll('path.series')].map(p => [p.dataset.agent, Number(p.dataset.points)]) : [],
    legend: chart ? [...chart.querySelectorAll('.legend [data-line]')].map(l => l.dataset.line) : [],
  });
})()""".replace("@APP@", RELAYED)

SERIES_REQUESTS = """JSON.stringify(performance.getEntriesByType('resource').map(e => e.name)
  .filter(n => n.includes('/api/series')).map(n => new URL(n).searchParams.get('link')))"""

LAYOUT = """(() => {
  const vw = window.innerWidth, rect = e => e.getBoundingClientRect();
  const topo = document.querySelector('#topology svg');
  const label = document.querySelector('#topology .node-label');
  const tables = [...document.querySelectorAll('table')].map(t => {
    let clippedBy = null, scroller = null;
    for (let a = t.parentElement; a && a !== document.body; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll') { scroller = a; break; }
      if ((o === 'hidden' || o === 'clip') && t.scrollWidth > a.clientWidth + 1) { clippedBy = a.id || a.className; break; }
    }
    const box = rect(scroller || t);
    return {id: t.id || t.parentElement.id, width: t.scrollWidth, clippedBy, scrollable: !!scroller,
            fits: t.scrollWidth <= (scroller ? scroller.clientWidth : vw) + 1, left: box.left, right: box.right};
  });
  return JSON.stringify({
    vw, scrollWidth: document.documentElement.scrollWidth, bodyScrollWidth: document.body.scrollWidth,
    header: rect(document.querySelector('header')).height,
    topo: topo ? {width: rect(topo).width, height: rect(topo).height} : null,
    label: label ? rect(label).height : 0,
    axis: Math.min(...[...document.querySelectorAll('#plots .axis')].map(a => rect(a).height)),
    cards: [...document.querySelectorAll('.card')].map(c => [c.id || c.className, rect(c).left, rect(c).right]),
    tables,
  });
})()"""


def _ready(doc: dict) -> bool:
    skr = [p for p in doc["plots"] if p[0] == "secret-key-rate"]
    return (doc["live"] == "live" and doc["status"] == "ACTIVE" and doc["rate"] > 0 and len(skr) == 4
            and all(p[2] >= 2 for p in doc["plots"]) and doc["agents"] == 6)


def _wait_ready(browser: Browser, timeout: float = 60) -> dict:
    last: dict = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = browser.evaluate(READY)
        last = json.loads(found) if found else {}
        if last and _ready(last):
            break
        time.sleep(0.5)
    return last


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """The dashboard URL of a `qstrata up` network started for this module."""
    state = tmp_path_factory.mktemp("dash-browser") / "up"
    proc, _ = start_up(state, "--speed", "10", "--dashboard-port", "0", "--quiet")
    try:
        yield json.loads((state / "endpoints.json").read_text())["collector"]["dashboard"]
    finally:
        stop_process(proc)


def test_first_paint_fills_every_panel(dashboard, tmp_path):
    """Every /api/* request (state, topology, series, alarms, the event stream) is held unanswered:
    what shows is what the document itself carries, i.e. the first paint before any delta."""
    with Browser("about:blank", width=1400, height=1000) as browser:
        browser.hold_requests("*/api/*")
        browser.navigate(dashboard)
        browser.wait_for("document.readyState === 'complete' && !!document.getElementById('links') && "
                         "document.getElementById('links').rows.length > 0", 10)
        doc = json.loads(browser.evaluate(PANELS))
        shot = browser.screenshot(tmp_path / "first-paint.png")
        held = browser.release_requests()
    assert held >= 1, "the page opened no event stream"
    for panel in ("network", "summary", "topology", "alarms", "agents", "links", "plots", "footer"):
        found = doc[panel]
        assert found["height"] > 0 and (found["shapes"] or found["text"]), f"{panel} is blank on first paint ({shot})"
        assert found["text"].lower().rstrip(".…") not in ("connecting", "loading"), f"{panel}: {found['text']!r}"
    assert set(doc["nodes"]) == AGENTS, doc["nodes"]
    assert all(name in doc["agents"]["text"] for name in AGENTS), doc["agents"]["text"]
    assert re.match(r"agents [0-6]/6", doc["summary"]["text"]), doc["summary"]
    assert doc["network"]["text"] == "qstrata-network"


def test_dashboard_shows_the_live_network(dashboard, tmp_path):
    with Browser(dashboard, width=1400, height=1000) as browser:
        last = _wait_ready(browser)
        styles = json.loads(browser.evaluate(STYLES))
        requested = json.loads(browser.evaluate(SERIES_REQUESTS))
        shot = browser.screenshot(tmp_path / "dashboard.png")
    assert last and _ready(last), f"the page never showed the live network: {last} (screenshot {shot})"
    assert "ACTIVE" in last["arcs"] and AGENTS <= set(last["nodes"])
    assert {p[0] for p in last["plots"]} == {"secret-key-rate", "effective-key-rate", "qber", "key-available",
                                             "generation-rate", "fidelity"}
    # the two ends of a link report nearly the same values: their lines must differ in more than colour
    assert len(styles) == 10, styles  # 4 metrics of each QKD link, 2 of the entanglement link
    for chart in styles:
        agents = [line["agent"] for line in chart["lines"]]
        assert len(agents) == 2 and len(set(agents)) == 2, chart
        assert len({line["dash"] for line in chart["lines"]}) == 2, f"same dash pattern for both ends: {chart}"
        assert len({line["stroke"] for line in chart["lines"]}) == 2, chart
        assert sorted(a for a, _ in chart["markers"]) == sorted(agents) and len({m for _, m in chart["markers"]}) == 2
        assert sorted(a for a, _ in chart["latest"]) == sorted(agents) and all(v and v != "-" for _, v in chart["latest"])
        legend = {entry["agent"]: entry for entry in chart["legend"]}
        for line in chart["lines"]:  # the legend names each agent with its own line style
            entry = legend[line["agent"]]
            assert line["agent"] in entry["text"] and (entry["dash"], entry["stroke"]) == (line["dash"], line["stroke"])
    # the page asks for history by the full link id, never the short one it shows
    assert requested and all(len(link) == 36 for link in requested), requested
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    print(f"screenshot: {shot}")


def test_key_delivery_panel_shows_key_delivered_against_key_made(dashboard, tmp_path):
    """up's relayed application (alice -> charlie through bob): its row and its plot of the bits it
    gets against the key rate of both links on its route."""
    with Browser(dashboard, width=1400, height=1000) as browser:
        def ready() -> dict:
            doc = json.loads(browser.evaluate(DELIVERY) or "{}")
            return doc if (doc.get("keys", 0) > 0 and doc["made"] > 0 and len(doc["lines"]) == 3
                           and all(n >= 2 for _, n in doc["lines"])) else {}

        deadline = time.monotonic() + 60
        while not (doc := ready()) and time.monotonic() < deadline:
            time.sleep(0.5)
        doc = doc or json.loads(browser.evaluate(DELIVERY) or "{}")
        browser.evaluate("document.getElementById('delivery').scrollIntoView()")
        shot = browser.screenshot(tmp_path / "key-delivery.png")
    assert doc.get("app") == RELAYED, f"the panel never showed the relayed application: {doc} (screenshot {shot})"
    assert doc["route"] == "alice bob charlie" and doc["text"].startswith("sae-alice → sae-charlie alice → bob → charlie"), doc
    assert doc["bits"] > 0 and doc["keys"] > 0, doc
    assert doc["legend"] == ["delivered", "key rate alice–bob", "key rate bob–charlie"], doc
    assert [a for a, _ in doc["lines"]] == doc["legend"], doc
    assert isinstance(doc["refused"], dict), doc  # by reason (the first requests may find no key yet)
    print(f"screenshot: {shot}")


def _layout_problems(doc: dict, width: int) -> list[str]:
    vw, problems = doc["vw"], []
    if vw != width:
        problems.append(f"laid out {vw} px wide in a {width} px phone window (the phone shrinks it to fit)")
    if max(doc["scrollWidth"], doc["bodyScrollWidth"]) > vw:
        problems.append(f"the page is {max(doc['scrollWidth'], doc['bodyScrollWidth'])} px wide in a {vw} px window")
    if doc["header"] > 110:
        problems.append(f"header {doc['header']:.0f} px tall")
    topo = doc["topo"]
    if not topo or topo["width"] < 0.85 * vw or topo["height"] < 250:
        problems.append(f"topology {topo} in a {vw} px window")
    if doc["label"] < 10:
        problems.append(f"topology labels {doc['label']:.1f} px tall: unreadable")
    if doc["axis"] < 9:
        problems.append(f"plot axis labels {doc['axis']:.1f} px tall: unreadable")
    for name, left, right in doc["cards"]:
        if left < -0.5 or right > vw + 0.5:
            problems.append(f"panel {name} spans {left:.0f}..{right:.0f} px")
    for t in doc["tables"]:
        if t["clippedBy"] or not (t["fits"] or t["scrollable"]) or t["left"] < -0.5 or t["right"] > vw + 0.5:
            problems.append(f"table {t} is cut off")
    return problems


def test_phone_width_layout(dashboard, tmp_path):
    with Browser("about:blank", width=390, height=844) as browser:
        browser.resize(390, 844, mobile=True)
        browser.navigate(dashboard)
        last = _wait_ready(browser)
        assert last and _ready(last), f"the page never showed the live network at 390 px: {last}"
        time.sleep(0.3)
        layouts = {390: json.loads(browser.evaluate(LAYOUT))}
        shot = browser.screenshot(tmp_path / "dashboard-narrow.png")
        browser.evaluate("document.getElementById('delivery').scrollIntoView()")
        print(f"screenshot: {browser.screenshot(tmp_path / 'key-delivery-narrow.png')}")
        for width in (360, 500):
            browser.resize(width, 800, mobile=True)
            time.sleep(0.5)  # the page redraws on resize
            layouts[width] = json.loads(browser.evaluate(LAYOUT))
    print(f"screenshot: {shot}")
    assert {t["id"] for t in layouts[390]["tables"]} == {"links", "agents", "apps"}, layouts[390]
    problems = {w: _layout_problems(doc, w) for w, doc in layouts.items()}
    assert not any(problems.values()), f"{problems} (screenshot {shot})"
