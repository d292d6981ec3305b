// qstrata dashboard: vanilla JS drawing SVG, nothing fetched from the internet.
// The first paint comes from the page itself: the collector embeds its state and the topology
// (#initial-state), so no panel waits for a request. Then state comes from /api/events (a snapshot,
// then deltas at most once a second) and history from /api/series (the embedded store, downsampled
// by the collector). SVG is drawn at the size it is shown (one user unit = one CSS pixel), so text
// stays readable from a phone to a wide screen; the page redraws when the window is resized.
// Key delivery (ETSI GS QKD 014): one row per application from the state, and one plot each of
// the key it gets against the secret key rate of the links on its route (/api/delivery).
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
// One style per reporting agent. Both ends of a link report nearly the same values, so their lines
// overlap: they differ in colour, dash pattern and the marker at the newest point (a ring round a
// square stays visible when the two coincide).
const STYLES = [
  { colour: "#4fb3ff", dash: "", width: 3, marker: "ring" },
  { colour: "#f5b83d", dash: "7 4", width: 2, marker: "square" },
  { colour: "#3ddc84", dash: "2 3", width: 2, marker: "triangle" },
  { colour: "#ff7ab6", dash: "10 3 2 3", width: 2, marker: "diamond" },
  { colour: "#b18cff", dash: "4 2", width: 2, marker: "square" },
  { colour: "#2bc4c4", dash: "1 3", width: 2, marker: "triangle" },
];
const NARROW = 560;       // px of drawing width below which the topology puts labels under the nodes
const METRICS = {
  qkd: [
    { id: "secret-key-rate", field: "rate", title: "Secret key rate", unit: "b/s", fmt: v => si(v, "b/s") },
    { id: "effective-key-rate", field: "effective_rate", title: "Effective key rate", unit: "b/s", fmt: v => si(v, "b/s") },
    { id: "qber", field: "qber", title: "QBER", unit: "%", fmt: v => pct(v) },
    { id: "key-available", field: "key_available", title: "Key available", unit: "b", fmt: v => si(v, "b") },
  ],
  qfs: [
    { id: "generation-rate", field: "rate", title: "Generation rate", unit: "Hz", fmt: v => si(v, "Hz") },
    { id: "fidelity", field: "fidelity", title: "Fidelity", unit: "", fmt: v => v == null ? "-" : v.toFixed(3) },
  ],
};
const MAX_PLOTTED = 6;
const REFETCH_MS = 60000;

const app = {
  state: null,           // the collector's state: links, agents, alarms, switches, collector
  topology: { nodes: [], fibres: [] },
  selected: [],          // link keys "kind/link_id" whose plots are shown
  userSelected: false,
  history: {},           // "kind/link_id" -> {metric -> {agent -> [[ms, v], ...]}}
  fetched: {},           // "kind/link_id" -> time of the last /api/series fetch
  delivered: {},         // app_id -> {line -> [[ms, v], ...]}: "delivered" and one per hop of its route
  deliveryFetched: {},   // app_id -> time of the last /api/delivery fetch
  recentAlarms: [],
  span: "15m",
  widths: { topology: 0, chart: 0, delivery: 0 },  // drawing widths in CSS px, measured once per window size (0: measure)
};

// ------------------------------------------------------------------ formatting
function si(v, unit) {
  if (v == null || !isFinite(v)) return "-";
  const a = Math.abs(v);
  for (const [s, p] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (a >= s) return sig3(v / s) + " " + p + unit;
  }
  return (a === 0 ? "0" : sig3(v)) + " " + unit;
}
function sig3(x) {  // three significant digits: 1.33, 38.4, 769
  const a = Math.abs(x);
  return x.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
}
function pct(v) { return v == null || !isFinite(v) ? "-" : (v * 100).toFixed(2) + "%"; }
function short(id) { return String(id).slice(0, 8); }
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]); }
function hms(ms) { const d = new Date(ms); return d.toTimeString().slice(0, 8); }
function hm(ms) { const d = new Date(ms); return d.toTimeString().slice(0, 5); }
function ago(ns) {
  if (!ns) return "never";
  const s = Math.max(0, (Date.now() - ns / 1e6) / 1000);
  return s < 2 ? "now" : s < 120 ? s.toFixed(0) + " s ago" : (s / 60).toFixed(0) + " min ago";
}
function spanMs(text) {
  const m = /^(\d+)(s|m|h|d)$/.exec(text);
  return m ? Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]] : 9e5;
}
let measure = null;
function widest(texts, font) {
  // how wide the widest of `texts` is drawn in `font` (a canvas measures without touching the page's layout)
  measure = measure || document.createElement("canvas").getContext("2d");
  measure.font = `${font} ${getComputedStyle(document.body).fontFamily}`;
  return Math.max(0, ...texts.map(t => measure.measureText(t).width));
}
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) if (attrs[k] != null && attrs[k] !== "") e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function marker(parent, style, x, y, attrs) {
  // the newest point of one agent's line, in that agent's shape
  const common = { ...attrs, "data-marker": style.marker };
  switch (style.marker) {
    case "ring": return el("circle", { cx: x, cy: y, r: 5.5, fill: "none", stroke: style.colour, "stroke-width": 2, ...common }, parent);
    case "square": return el("rect", { x: x - 3, y: y - 3, width: 6, height: 6, fill: style.colour, ...common }, parent);
    case "triangle": return el("path", { d: `M${x},${y - 4}L${x + 4},${y + 3}L${x - 4},${y + 3}Z`, fill: style.colour, ...common }, parent);
    default: return el("path", { d: `M${x},${y - 4}L${x + 4},${y}L${x},${y + 4}L${x - 4},${y}Z`, fill: style.colour, ...common }, parent);
  }
}
function swatch(style, line = true) {
  // a legend's sample of a line style: the dash pattern and the marker, as in the plots (or the marker alone)
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("class", "swatch");
  svg.setAttribute("width", line ? "30" : "12");
  svg.setAttribute("height", "12");
  if (line) el("line", { x1: 1, y1: 6, x2: 21, y2: 6, stroke: style.colour, "stroke-width": style.width,
    "stroke-dasharray": style.dash }, svg);
  marker(svg, style, line ? 24 : 6, 6, {});
  return svg.outerHTML;
}

// ------------------------------------------------------------------ the state
function linkGroups() {
  // "kind/link_id" -> {kind, link_id, rows: [row per reporting agent]}
  const groups = new Map();
  const links = (app.state && app.state.links) || {};
  for (const key of Object.keys(links).sort()) {
    const r = links[key];
    const g = `${r.kind}/${r.link_id}`;
    if (!groups.has(g)) groups.set(g, { key: g, kind: r.kind, link_id: r.link_id, rows: [] });
    groups.get(g).rows.push(r);
  }
  const order = new Map(app.topology.nodes.map((n, i) => [n.name, i]));
  for (const g of groups.values()) g.rows.sort((a, b) => (order.get(a.agent) ?? 1e9) - (order.get(b.agent) ?? 1e9));
  return groups;
}
function agentUp(name) {
  const a = app.state && app.state.agents[name];
  return a ? a.reachable : null;
}
function groupStatus(g) {
  if (g.rows.some(r => agentUp(r.agent) === false)) return "DOWN";
  const s = g.rows.map(r => r.status);
  return s.every(x => x === "ACTIVE") ? "ACTIVE" : (s.find(x => x !== "ACTIVE") || "-");
}

function apply(delta) {
  if (!app.state) { app.state = delta; return; }
  for (const section of ["links", "apps", "pairs", "agents"]) {
    if (!delta[section]) continue;
    app.state[section] = app.state[section] || {};
    for (const [k, v] of Object.entries(delta[section])) {
      if (v === null) delete app.state[section][k]; else app.state[section][k] = v;
    }
  }
  for (const section of ["alarms", "switches", "collector", "now_ns"]) {
    if (delta[section] !== undefined) app.state[section] = delta[section];
  }
}

function appendLive() {
  // each plotted link's newest values become points, unless the store fetch already has them
  const groups = linkGroups();
  const horizon = spanMs(app.span);
  for (const key of app.selected) {
    const g = groups.get(key);
    if (!g) continue;
    const h = (app.history[key] = app.history[key] || {});  // until the store's answer: the live values
    for (const r of g.rows) {
      const t = r.updated_ns / 1e6;
      for (const m of METRICS[g.kind]) {
        const v = r[m.field];
        if (v == null) continue;
        const byAgent = (h[m.id] = h[m.id] || {});
        const pts = (byAgent[r.agent] = byAgent[r.agent] || []);
        if (pts.length && pts[pts.length - 1][0] >= t) continue;
        pts.push([t, v]);
        while (pts.length && pts[0][0] < t - horizon) pts.shift();
      }
    }
  }
}

// ------------------------------------------------------------------ entangled pairs
// One row per memory node serving ENTANGLED-STATE units (qstrata-ss): units admitted, refused and
// expired, pairs delivered and their fidelity at delivery, failures by link-layer error.
function renderPairs() {
  const box = document.getElementById("pairs");
  if (!box) return;
  const nodes = Object.values(app.state.pairs || {});
  if (!nodes.length) {
    box.innerHTML = `<div class="none">No entangled pairs delivered yet: ENTANGLED-STATE service units asked of a
      memory node (qstrata-ss) show here, with the fidelity of the pairs it delivered.</div>`;
    return;
  }
  const n = v => v == null ? "-" : String(Math.round(v));
  const f = v => v == null ? "-" : v.toFixed(3);
  const rows = [`<tr class="head"><th>node</th><th class="num">pairs delivered</th><th class="num">last fidelity</th>
    <th class="num">mean fidelity</th><th class="num">admitted</th><th class="num">refused</th><th class="num">expired</th>
    <th>failures</th></tr>`];
  for (const r of nodes) {
    const failures = Object.entries(r.failures).filter(([, c]) => c > 0).map(([e, c]) => `${e} ${c}`).join(", ");
    rows.push(`<tr data-pairs="${esc(r.agent)}"><td><b>${esc(r.agent)}</b></td>
      <td class="num" data-label="pairs delivered" data-delivered="${r.pairs_delivered ?? ""}">${n(r.pairs_delivered)}</td>
      <td class="num" data-label="last fidelity" data-fidelity="${r.last_fidelity ?? ""}">${f(r.last_fidelity)}</td>
      <td class="num" data-label="mean fidelity">${f(r.fidelity_mean)}</td>
      <td class="num" data-label="admitted">${n(r.admitted)}</td><td class="num" data-label="refused">${n(r.rejected)}</td>
      <td class="num" data-label="expired">${n(r.expired)}</td><td data-label="failures">${esc(failures || "none")}</td></tr>`);
  }
  box.innerHTML = `<div class="scroll"><table id="pair-nodes" class="grid">${rows.join("")}</table></div>`;
}

// ------------------------------------------------------------------ key delivery
const DELIVERED = { id: "delivered", title: "Delivered / secret key rate", fmt: v => si(v, "b/s") };

function deliveryLines(a) {
  // the lines of an application's plot: what it gets, then the key each link of its route makes
  const groups = linkGroups();
  return [["delivered", null, null], ...a.hops.map(([agent, link]) => {
    const g = groups.get(`qkd/${link}`);
    return [`key rate ${g ? g.rows.map(r => r.agent).join("–") : short(link)}`, agent, link];
  })];
}

function appendDelivered() {
  // each application's newest delivered rate and its links' key rates become points
  const horizon = spanMs(app.span);
  for (const a of Object.values((app.state && app.state.apps) || {})) {
    const h = (app.delivered[a.app_id] = app.delivered[a.app_id] || {});
    for (const [line, agent, link] of deliveryLines(a)) {
      const row = link ? app.state.links[`qkd/${link}/${agent}`] : null;
      const [t, v] = link ? [row && row.updated_ns / 1e6, row && row.rate] : [a.updated_ns / 1e6, a.bits_per_s];
      if (v == null || !t) continue;
      const pts = (h[line] = h[line] || []);
      if (pts.length && pts[pts.length - 1][0] >= t) continue;
      pts.push([t, v]);
      while (pts.length && pts[0][0] < t - horizon) pts.shift();
    }
  }
}

async function fetchDelivered(id) {
  app.deliveryFetched[id] = Date.now();
  try {
    const doc = await getJSON(`/api/delivery?app=${encodeURIComponent(id)}&span=${app.span}&points=300`);
    const a = app.state.apps[id];
    if (!a) return;
    const names = new Map(deliveryLines(a).map(([line, , link]) => [link, line]));
    const h = {};
    for (const s of doc.series) h[names.get(s.link) || "delivered"] = s.points;
    app.delivered[id] = h;
    appendDelivered();
    renderDelivery();
  } catch (e) { /* the next refresh retries */ }
}

function renderDelivery() {
  const box = document.getElementById("delivery");
  const apps = Object.values(app.state.apps || {});
  if (!apps.length) {
    box.innerHTML = `<div class="none">No application gets keys yet: SAEs and a qkd_app on the QKD nodes' KMEs
      (ETSI GS QKD 014) show here, with the key they get against the key their route makes.</div>`;
    return;
  }
  const ms = v => v == null ? "-" : (v * 1000).toFixed(v < 0.01 ? 2 : 1) + " ms";
  const rows = [`<tr class="head"><th>application</th><th>route</th><th class="num">keys/s</th><th class="num">delivered</th>
    <th class="num">key made</th><th class="num">latency</th><th>refused</th></tr>`];
  for (const a of apps) {
    const refused = Object.entries(a.refused).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(", ");
    rows.push(`<tr data-app="${esc(a.app_id)}"><td title="${esc(a.app_id)}"><b>${esc(a.master)}</b> → ${esc(a.slaves.join(", "))}</td>
      <td data-label="route" data-route="${esc(a.route.join(" "))}">${esc(a.route.join(" → ") || "-")}</td>
      <td class="num" data-label="keys/s" data-keys="${a.keys_per_s ?? ""}">${a.keys_per_s == null ? "-" : sig3(a.keys_per_s)}</td>
      <td class="num" data-label="delivered" data-bits="${a.bits_per_s ?? ""}">${si(a.bits_per_s, "b/s")}</td>
      <td class="num" data-label="key made" data-made="${a.key_rate ?? ""}">${si(a.key_rate, "b/s")}</td>
      <td class="num" data-label="latency">${ms(a.latency_s)}</td>
      <td data-label="refused" data-refused="${esc(JSON.stringify(a.refused))}">${esc(refused || "none")}</td></tr>`);
  }
  box.innerHTML = `<div class="scroll"><table id="apps" class="grid">${rows.join("")}</table></div><div class="delivery-plots"></div>`;
  const plots = box.querySelector(".delivery-plots"), charts = [];
  for (const a of apps) {
    const lines = deliveryLines(a).map(([line]) => line);
    const c = document.createElement("div");
    c.className = "chart";
    c.dataset.app = a.app_id;
    c.innerHTML = `<div class="title"><span>${esc(a.master)} → ${esc(a.slaves.join(", "))}: delivered against key made</span>
      <span class="values"><b data-latest>${si(a.bits_per_s, "b/s")}</b>${a.key_rate ? ` of ${si(a.key_rate, "b/s")}
        (${pct(a.bits_per_s / a.key_rate)})` : ""}</span></div>
      <div class="legend">${lines.map((l, i) => `<span data-line="${esc(l)}">${swatch(STYLES[i % STYLES.length])}${esc(l)}</span>`).join("")}</div>`;
    plots.appendChild(c);
    charts.push([c, app.delivered[a.app_id] || {}, lines]);
  }
  if (!app.widths.delivery && charts.length) app.widths.delivery = charts[0][0].clientWidth - 16;
  for (const [c, byLine, lines] of charts) {
    const legend = c.querySelector(".legend");
    chart(c, app.widths.delivery, DELIVERED, byLine, lines, spanMs(app.span));
    c.appendChild(legend);  // under the plot
  }
}

// ------------------------------------------------------------------ header, tables
function renderSummary() {
  const s = app.state;
  const agents = Object.values(s.agents);
  const up = agents.filter(a => a.reachable).length;
  const groups = [...linkGroups().values()];
  const qkd = groups.filter(g => g.kind === "qkd"), qfs = groups.filter(g => g.kind === "qfs");
  const active = gs => gs.filter(g => groupStatus(g) === "ACTIVE").length;
  const totalSkr = qkd.reduce((sum, g) => sum + (g.rows[0].rate || 0), 0);
  document.getElementById("summary").innerHTML = [
    `<span class="pill">agents <b>${up}/${agents.length}</b><span class="wide-only"> up</span></span>`,
    `<span class="pill">QKD<span class="wide-only"> links</span> <b>${active(qkd)}/${qkd.length}</b><span class="wide-only"> active</span></span>`,
    `<span class="pill">entanglement<span class="wide-only"> links</span> <b>${active(qfs)}/${qfs.length}</b><span class="wide-only"> active</span></span>`,
    `<span class="pill"><span class="wide-only">total </span>key rate <b>${si(totalSkr, "b/s")}</b></span>`,
    `<span class="pill">alarms <b style="color:${s.alarms.length ? "var(--bad)" : "var(--ok)"}">${s.alarms.length}</b></span>`,
  ].join("");
  const c = s.collector;
  document.getElementById("footer").textContent =
    `collector ${c.instance}: ${c.ingested.toLocaleString()} updates ingested, ${c.series.toLocaleString()} series; ` +
    Object.entries(c.outputs).map(([n, o]) => `${n} ${o.state}` + (o.dropped ? ` (${o.dropped} dropped)` : "")).join(", ") +
    ` — updated ${hms(s.now_ns / 1e6)}`;
}

function renderLinks() {
  const filter = document.getElementById("filter").value.trim().toLowerCase();
  const rows = [`<tr class="head"><th>kind</th><th>link</th><th>ends</th><th>status</th><th class="num">rate</th>
    <th class="num">effective</th><th class="num">QBER / fidelity</th><th class="num">key available</th><th>updated</th></tr>`];
  let shown = 0;
  for (const g of linkGroups().values()) {
    const ends = g.rows.map(r => r.agent).join(" ⇄ ");
    if (filter && !(g.link_id + " " + ends).toLowerCase().includes(filter)) continue;
    if (++shown > 500) break;
    const r = g.rows[0], st = groupStatus(g), q = g.kind === "qkd";
    rows.push(`<tr data-key="${esc(g.key)}" data-kind="${g.kind}" class="${app.selected.includes(g.key) ? "sel" : ""}">
      <td>${q ? "QKD" : "entanglement"}</td><td title="${esc(g.link_id)}">${esc(short(g.link_id))}</td><td>${esc(ends)}</td>
      <td><span class="badge ${esc(st)}" data-status="${esc(st)}">${esc(st)}</span></td>
      <td class="num" data-label="rate" data-rate="${r.rate ?? ""}">${q ? si(r.rate, "b/s") : si(r.rate, "Hz")}</td>
      <td class="num" data-label="effective">${q ? si(r.effective_rate, "b/s") : ""}</td>
      <td class="num" data-label="${q ? "QBER" : "fidelity"}">${q ? pct(r.qber) : (r.fidelity == null ? "-" : r.fidelity.toFixed(3))}</td>
      <td class="num" data-label="key">${q ? si(r.key_available, "b") : ""}</td>
      <td data-label="updated">${hms(r.updated_ns / 1e6)}</td></tr>`);
  }
  if (shown === 0) rows.push(`<tr><td colspan="9" class="none">no links reported yet</td></tr>`);
  document.getElementById("links").innerHTML = rows.join("");
}

function renderAgents() {
  const agents = Object.values(app.state.agents).sort((a, b) => a.name.localeCompare(b.name));
  const kinds = new Map(app.topology.nodes.map(n => [n.name, n.kind]));
  const up = agents.filter(a => a.reachable).length;
  document.getElementById("agent-count").textContent = `${up} of ${agents.length} reachable`;
  if (!agents.length) {
    document.getElementById("agents").innerHTML = `<div class="none">No agents: this collector has no targets.</div>`;
    return;
  }
  const rows = [`<tr><th>agent</th><th>session</th><th class="num">updates</th><th>last</th><th class="num" title="reconnects">rec.</th></tr>`];
  for (const a of agents) {
    rows.push(`<tr title="${esc(a.reason || "")}"><td>${esc(a.name)} <span class="kind">${esc(kinds.get(a.name) || "")}</span></td>
      <td><span class="badge ${esc(a.state)}" data-agent="${esc(a.name)}">${esc(a.state)}</span></td>
      <td class="num">${(a.updates_received || 0).toLocaleString()}</td><td>${ago(a.last_update_ns)}</td>
      <td class="num">${a.reconnects}</td></tr>`);
  }
  document.getElementById("agents").innerHTML = `<table class="grid">${rows.join("")}</table>`;
}

function renderAlarms() {
  const active = app.state.alarms;
  document.getElementById("alarm-count").textContent = `${active.length} active`;
  const sev = a => String(a.severity).split(":").pop();
  const item = (a, cleared) => `<div class="alarm ${esc(sev(a))} ${cleared ? "cleared" : ""}">
      <div class="head"><b>${esc(sev(a))} ${esc(a.rule || "")} on ${esc(a.source.agent)}</b>
      <span>${hms(Date.parse(a["raised-time"]))}${cleared ? " – " + hms(Date.parse(a["cleared-time"])) : ""}</span></div>
      <div class="text">${esc(a.text)}</div></div>`;
  const ids = new Set(active.map(a => a["alarm-id"]));
  const cleared = app.recentAlarms.filter(a => a.state === "cleared" && !ids.has(a["alarm-id"])).slice(0, 4);
  document.getElementById("alarms").innerHTML =
    (active.length ? active.map(a => item(a, false)).join("") : `<div class="none">No active alarms.</div>`) +
    cleared.map(a => item(a, true)).join("");
}

// ------------------------------------------------------------------ topology
function layout(groups, W) {
  const nodes = app.topology.nodes;
  const switches = nodes.filter(n => n.kind === "switch");
  const side = new Map();   // name -> [column, row]
  const rows = [0, 0];
  const place = (name, col) => { if (!side.has(name)) side.set(name, [col, rows[col]++]); };
  const byKind = [...groups.values()].sort((x, y) => (x.kind === "qkd" ? 0 : 1) - (y.kind === "qkd" ? 0 : 1));
  for (const g of byKind) {
    if (g.rows.length < 2) continue;
    const [a, b] = [g.rows[0].agent, g.rows[1].agent];
    if (side.has(a) || side.has(b)) continue;
    const row = Math.max(rows[0], rows[1]);
    rows[0] = rows[1] = row;
    place(a, 0); place(b, 1);
  }
  for (const n of nodes) if (n.kind !== "switch") place(n.name, rows[0] <= rows[1] ? 0 : 1);
  const nrows = Math.max(rows[0], rows[1], 1);
  const dense = nrows > 8, tiny = nrows > 24;
  const narrow = W < NARROW && !dense;   // labels go under the nodes, the columns move out
  const rowH = tiny ? 26 : dense ? 56 : narrow ? 130 : 118;
  const r = tiny ? 8 : dense ? 14 : narrow ? 20 : 24;   // a node's radius
  const top = dense && !switches.length ? 30 : narrow ? 62 : 70;
  // room for the longest name (as .node-label draws it): under the node on a phone, beside it otherwise
  const label = widest(nodes.map(n => n.name), "600 12px") + 2;
  const margin = narrow ? Math.max(44, W * 0.15, label / 2 + 4)
    : Math.min(W * 0.35, Math.max(60, Math.min(130, W * 0.135), label + r + 12));
  const H = Math.max(narrow ? 280 : 300, top + nrows * rowH + (narrow ? 45 : dense ? 40 : 80));
  const pos = new Map();
  for (const [name, [col, row]] of side) pos.set(name, { x: col === 0 ? margin : W - margin, y: top + row * rowH + rowH / 2 });
  switches.forEach((s, i) => pos.set(s.name, { x: W / 2, y: top + (i + 0.5) * (nrows * rowH) / switches.length }));
  return { pos, W, H, mid: top + nrows * rowH / 2, dense, tiny, narrow, r };
}

function renderTopology() {
  const wrap = document.getElementById("topology");
  if (!app.topology.nodes.length) {
    wrap.innerHTML = `<div class="none">No topology and no agents to draw yet.</div>`;
    return;
  }
  const groups = linkGroups();
  app.widths.topology = app.widths.topology || wrap.clientWidth;
  const { pos, W, H, mid, dense, tiny, narrow, r: radius } = layout(groups, Math.max(280, app.widths.topology || 960));
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "topo");
  const gFibres = el("g", {}, svg), gLinks = el("g", {}, svg), gNodes = el("g", {}, svg);
  const switches = (app.state && app.state.switches) || {};
  const connected = (dev, port) => {
    const p = switches[dev];
    return !!p && (String(port) in p || Object.values(p).includes(port));
  };
  const kinds = new Map(app.topology.nodes.map(n => [n.name, n.kind]));
  // fibres: node <-> switch as lines, spools (switch <-> same switch) as coils under the switch
  const spools = {};
  for (const f of app.topology.fibres) {
    const a = pos.get(f.a.device), b = pos.get(f.b.device);
    if (!a || !b) continue;
    const lit = [f.a, f.b].some(e => kinds.get(e.device) === "switch" && connected(e.device, e.port)) &&
      [f.a, f.b].every(e => kinds.get(e.device) !== "switch" || connected(e.device, e.port));
    if (f.a.device === f.b.device) {
      (spools[f.a.device] = spools[f.a.device] || []).push([f, lit]);
      continue;
    }
    el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, stroke: lit ? "var(--fibre)" : "#3a4656",
      "stroke-width": lit ? 3 : 1.5, "stroke-dasharray": lit ? "" : "4 4", "data-fibre": f.id, "data-lit": lit }, gFibres);
    // on a phone the length goes just outside the node (the switch's cross-connects are written above it)
    const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
    const k = !narrow ? 0.4 : kinds.get(f.a.device) === "switch" ? 1 - 58 / len : 58 / len;
    if (!dense) el("text", { x: a.x * (1 - k) + b.x * k, y: a.y * (1 - k) + b.y * k - 6, class: "fibre-label",
      "text-anchor": "middle" }, gFibres).textContent = `${f.length_km} km`;
  }
  for (const [sw, list] of Object.entries(spools)) {
    const p = pos.get(sw), gap = tiny ? 70 : Math.min(118, W * 0.3);
    list.forEach(([f, lit], i) => {
      const cx = p.x + (i - (list.length - 1) / 2) * gap, cy = p.y + (tiny ? 48 : narrow ? 60 : 74);
      const colour = lit ? "var(--fibre)" : "#3a4656";
      el("path", { d: `M ${p.x + (i - (list.length - 1) / 2) * 30} ${p.y + 22} L ${cx} ${cy - 14}`, stroke: colour,
        "stroke-width": lit ? 3 : 1.5, "stroke-dasharray": lit ? "" : "4 4", fill: "none" }, gFibres);
      for (const r of [14, 9]) el("circle", { cx, cy, r, fill: "none", stroke: colour, "stroke-width": lit ? 2.5 : 1.5,
        "data-fibre": r === 14 ? f.id : null, "data-lit": lit }, gFibres);
      const label = el("text", { x: cx, y: cy + 28, "text-anchor": "middle", class: "fibre-label",
        fill: lit ? "var(--fibre)" : "" }, gFibres);
      if (narrow) {  // two short lines instead of one long one
        label.textContent = f.id;
        el("tspan", { x: cx, dy: 12 }, label).textContent = `${f.length_km} km`;
      } else label.textContent = `${f.id} · ${f.length_km} km`;
    });
  }
  // logical links: arcs between the reporting agents, coloured by status, width by rate
  for (const g of groups.values()) {
    if (g.rows.length < 2) continue;
    const a = pos.get(g.rows[0].agent), b = pos.get(g.rows[1].agent);
    if (!a || !b) continue;
    const st = groupStatus(g), r = g.rows[0];
    const colour = { ACTIVE: "var(--ok)", PENDING: "var(--warn)", DOWN: "var(--bad)" }[st] || "var(--off)";
    const width = g.kind === "qkd" ? 2 + Math.max(0, Math.min(6, Math.log10((r.rate || 0) + 1) - 2)) : 3;
    const up = (a.y + b.y) / 2 <= mid;   // arcs bow away from the switch: upwards in the upper half
    const bow = (up ? -1 : 1) * (dense ? 16 : narrow ? 84 : 64);
    const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2;
    el("path", { d: `M ${a.x} ${a.y} Q ${mx} ${my + 2 * bow} ${b.x} ${b.y}`, stroke: colour, "stroke-width": width,
      fill: "none", opacity: 0.9, "stroke-dasharray": st === "ACTIVE" ? "" : "6 5", "stroke-linecap": "round",
      "data-link": g.link_id, "data-status": st, class: "link" }, gLinks);
    if (!tiny) {
      const label = g.kind === "qkd" ? `${st} · ${si(r.rate, "b/s")} · QBER ${pct(r.qber)}`
        : `${st} · ${si(r.rate, "Hz")} · F ${r.fidelity == null ? "-" : r.fidelity.toFixed(3)}`;
      const t = el("text", { x: mx, y: my + bow + (up ? -8 : 16), "text-anchor": "middle",
        class: "link-label", fill: colour }, gLinks);
      t.textContent = (dense ? "" : (g.kind === "qkd" ? "QKD " : "entanglement ")) + label;
    }
  }
  // nodes
  for (const n of app.topology.nodes) {
    const p = pos.get(n.name);
    if (!p) continue;
    const up = agentUp(n.name);
    const ring = up === null ? "#4a5568" : up ? "var(--ok)" : "var(--bad)";
    const g = el("g", { "data-node": n.name }, gNodes);
    if (n.kind === "switch") {
      el("rect", { x: p.x - 46, y: p.y - 22, width: 92, height: 44, rx: 8, fill: "var(--sw)", stroke: ring, "stroke-width": 2.5 }, g);
      el("text", { x: p.x, y: p.y + 5, "text-anchor": "middle", class: "node-label" }, g).textContent = n.name;
      const pairs = Object.entries(switches[n.name] || {}).map(([i, e]) => `${i}↔${e}`).join("  ");
      el("text", { x: p.x, y: p.y - 30, "text-anchor": "middle", class: "node-sub" }, g).textContent =
        pairs ? (narrow ? "" : "cross-connects ") + pairs : "no cross-connect";
    } else {
      const r = radius;
      el("circle", { cx: p.x, cy: p.y, r, fill: n.kind === "qkd" ? "var(--qkd)" : n.kind === "memory" ? "var(--mem)" : "#4a5568",
        stroke: ring, "stroke-width": tiny ? 2 : 3 }, g);
      if (!tiny) el("text", { x: p.x, y: p.y + 4, "text-anchor": "middle", class: "node-sub", style: "fill:#fff;font-weight:600" }, g).textContent =
        n.kind === "qkd" ? "QKD" : n.kind === "memory" ? "QM" : "";
      const left = p.x < W / 2;
      const sub = [n.location, up === false ? "UNREACHABLE" : ""].filter(Boolean).join(" · ");
      if (narrow) {  // under the node: the side of a phone-wide drawing has no room for a name
        el("text", { x: p.x, y: p.y + r + 15, "text-anchor": "middle", class: "node-label" }, g).textContent = n.name;
        el("text", { x: p.x, y: p.y + r + 28, "text-anchor": "middle", class: "node-sub" }, g).textContent = sub;
        continue;
      }
      el("text", { x: p.x + (left ? -r - 8 : r + 8), y: p.y + (tiny ? 4 : 0), "text-anchor": left ? "end" : "start",
        class: "node-label" }, g).textContent = n.name;
      if (!tiny) el("text", { x: p.x + (left ? -r - 8 : r + 8), y: p.y + 14, "text-anchor": left ? "end" : "start",
        class: "node-sub" }, g).textContent = sub;
    }
  }
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  wrap.replaceChildren(svg);
}

// ------------------------------------------------------------------ plots
function chart(container, width, metric, byAgent, agents, span) {
  const W = Math.max(200, width), H = 150, L = 62, R = 12, T = 10, B = 22;
  const newest = agents.flatMap(a => (byAgent[a] || []).slice(-1).map(p => p[0]));
  const now = Math.max(app.state.now_ns / 1e6, ...newest);
  // the window, or less while the data is younger than it: a network started a minute ago fills
  // the width instead of hugging the right edge of a 15 min axis
  const oldest = Math.min(...agents.flatMap(a => (byAgent[a] || []).filter(p => p[0] >= now - span).slice(0, 1).map(p => p[0])));
  const t0 = now - (isFinite(oldest) ? Math.max(60e3, Math.min(span, now - oldest)) : span);
  let lo = Infinity, hi = -Infinity;
  for (const a of agents) for (const [t, v] of byAgent[a] || []) if (t >= t0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const empty = !isFinite(lo);
  if (empty) { lo = 0; hi = metric.id === "qber" ? 0.05 / 1.15 : 1; }
  if (metric.id === "fidelity") { lo = Math.min(lo, 0.5); hi = Math.max(hi, 1); }
  else if (metric.id === "qber") { lo = 0; hi = Math.max(hi * 1.15, 0.05); }
  else { lo = Math.min(0, lo); hi = hi > 0 ? hi * 1.1 : 1; }
  const x = t => L + (t - t0) / (now - t0) * (W - L - R);
  const y = v => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, yy = y(v);
    el("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "gridline" }, svg);
    el("text", { x: L - 6, y: yy + 3, "text-anchor": "end", class: "axis" }, svg).textContent = metric.fmt(v);
  }
  const ticks = Math.max(1, Math.min(4, Math.floor((W - L - R) / 80)));  // a time label is ~50 px wide
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + (now - t0) * i / ticks;
    el("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle", class: "axis" }, svg)
      .textContent = now - t0 > 36e5 ? hm(t) : hms(t);
  }
  const lines = el("g", {}, svg), marks = el("g", {}, svg);
  agents.forEach((a, i) => {
    const style = STYLES[i % STYLES.length];
    const pts = (byAgent[a] || []).filter(p => p[0] >= t0);
    const d = pts.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    if (i === 0 && pts.length > 1) {
      el("path", { d: `${d}L${x(pts[pts.length - 1][0]).toFixed(1)},${y(lo)}L${x(pts[0][0]).toFixed(1)},${y(lo)}Z`,
        fill: style.colour, opacity: 0.1 }, lines);
    }
    const last = pts.length ? pts[pts.length - 1] : null;
    const path = el("path", { d: d || "M0,0", class: "series", stroke: style.colour, "stroke-width": style.width,
      "stroke-dasharray": style.dash, "data-metric": metric.id, "data-agent": a, "data-points": pts.length,
      "data-last": last ? last[1] : "" }, lines);
    el("title", {}, path).textContent = `${a}: ${last ? metric.fmt(last[1]) + " at " + hms(last[0]) : "no data"}`;
    if (last) {
      const m = marker(marks, style, x(last[0]), y(last[1]), { "data-agent": a });
      el("title", {}, m).textContent = `${a}: ${metric.fmt(last[1])} at ${hms(last[0])}`;
    }
  });
  if (empty) el("text", { x: (L + W - R) / 2, y: H / 2, "text-anchor": "middle", class: "axis" }, svg).textContent = "waiting for data";
  container.appendChild(svg);
}

function renderPlots() {
  const groups = linkGroups();
  const span = spanMs(app.span);
  const out = [], charts = [];
  for (const key of app.selected) {
    const g = groups.get(key);
    if (!g) continue;
    const agents = g.rows.map(r => r.agent);
    const card = document.createElement("section");
    card.className = "card plotcard";
    card.dataset.link = g.link_id;
    const st = groupStatus(g);
    card.innerHTML = `<h3>${g.kind === "qkd" ? "QKD link" : "Entanglement link"} <span title="${esc(g.link_id)}">${esc(short(g.link_id))}</span>
      <span class="ends">${esc(agents.join(" ⇄ "))}</span><span class="badge ${esc(st)}">${esc(st)}</span></h3>
      <div class="charts"></div><div class="legend">${agents.map((a, i) =>
        `<span data-agent="${esc(a)}">${swatch(STYLES[i % STYLES.length])}${esc(a)}</span>`).join("")}</div>`;
    const box = card.querySelector(".charts");
    for (const m of METRICS[g.kind]) {
      const c = document.createElement("div");
      c.className = "chart";
      c.dataset.metric = m.id;
      // the newest value of every end, with the marker its line ends in
      const latest = g.rows.map((r, i) => `<span class="latest">${swatch(STYLES[i % STYLES.length], false)}<b data-latest
        data-agent="${esc(r.agent)}" title="${esc(r.agent)}">${m.fmt(r[m.field])}</b></span>`).join("");
      c.innerHTML = `<div class="title"><span>${m.title}</span><span class="values">${latest}</span></div>`;
      box.appendChild(c);
      charts.push([c, m, (app.history[key] || {})[m.id] || {}, agents]);
    }
    out.push(card);
  }
  if (!out.length) {
    const none = document.createElement("section");
    none.className = "card";
    none.innerHTML = `<h2>Plots</h2><div class="none">${Object.keys((app.state && app.state.links) || {}).length
      ? "No link chosen: click a row of the links table to plot it." : "No links reported yet: plots appear when a link is configured."}</div>`;
    out.push(none);
  }
  document.getElementById("plots").replaceChildren(...out);
  // every chart is as wide as the first (equal grid columns): measured once, not on every update
  if (!app.widths.chart && charts.length) app.widths.chart = charts[0][0].clientWidth - 16;
  for (const [c, m, byAgent, agents] of charts) chart(c, app.widths.chart, m, byAgent, agents, span);
}

// ------------------------------------------------------------------ data
async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

async function fetchHistory(key) {
  const [kind, link] = key.split(/\/(.*)/s);
  app.fetched[key] = Date.now();
  try {
    const doc = await getJSON(`/api/series?kind=${kind}&link=${encodeURIComponent(link)}&span=${app.span}&points=300`);
    const h = {};
    for (const s of doc.series) ((h[s.metric] = h[s.metric] || {})[s.agent] = s.points);
    app.history[key] = h;
    appendLive();
    renderPlots();
  } catch (e) { /* the next refresh retries */ }
}

function chooseDefaults() {
  if (app.userSelected) return;
  const groups = [...linkGroups().values()];
  const want = [...groups.filter(g => g.kind === "qkd").slice(0, 3), ...groups.filter(g => g.kind === "qfs").slice(0, 2)]
    .map(g => g.key);
  if (want.join() !== app.selected.join()) app.selected = want;
}

function refresh() {
  if (!app.state) return;
  chooseDefaults();
  for (const key of app.selected) if (!app.fetched[key] || Date.now() - app.fetched[key] > REFETCH_MS) fetchHistory(key);
  for (const id of Object.keys(app.state.apps || {})) {
    if (!app.deliveryFetched[id] || Date.now() - app.deliveryFetched[id] > REFETCH_MS) fetchDelivered(id);
  }
  appendLive();
  appendDelivered();
  renderSummary();
  renderTopology();
  renderLinks();
  renderAgents();
  renderAlarms();
  renderDelivery();
  renderPairs();
  renderPlots();
}

async function fetchAlarms() {
  try { app.recentAlarms = (await getJSON("/api/alarms?span=1h")).alarms; } catch (e) { return; /* keep the last list */ }
  if (app.state) renderAlarms();
}

function connect() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/events");
  es.addEventListener("snapshot", e => { app.state = JSON.parse(e.data); live.dataset.state = "live"; live.textContent = "live"; refresh(); });
  es.addEventListener("delta", e => { apply(JSON.parse(e.data)); refresh(); });
  es.onerror = () => { live.dataset.state = "down"; live.textContent = "reconnecting"; };
}

function initialState() {
  // what the collector embedded in the page: {state, topology}, or null (a page served elsewhere)
  const e = document.getElementById("initial-state");
  if (!e) return null;
  try { return JSON.parse(e.textContent); } catch (err) { return null; }
}

function showNetwork() {
  document.getElementById("network").textContent = app.topology.name || "telemetry";
}

async function main() {
  document.getElementById("span").addEventListener("change", e => {
    app.span = e.target.value; app.history = {}; app.fetched = {}; app.delivered = {}; app.deliveryFetched = {};
    refresh();
  });
  document.getElementById("filter").addEventListener("input", renderLinks);
  document.getElementById("links").addEventListener("click", e => {
    const tr = e.target.closest("tr[data-key]");
    if (!tr) return;
    const key = tr.dataset.key;
    app.userSelected = true;
    app.selected = app.selected.includes(key) ? app.selected.filter(k => k !== key) : [key, ...app.selected].slice(0, MAX_PLOTTED);
    refresh();
  });
  let redraw = 0;  // the drawings are as wide as their panels: redraw them when the window changes
  window.addEventListener("resize", () => {
    cancelAnimationFrame(redraw);
    redraw = requestAnimationFrame(() => {
      app.widths = { topology: 0, chart: 0, delivery: 0 };
      if (app.state) { renderTopology(); renderDelivery(); renderPlots(); }
    });
  });
  const initial = initialState();
  if (initial) {
    app.topology = initial.topology;
    app.state = initial.state;
  } else {
    try { app.topology = await getJSON("/api/topology"); } catch (e) { /* targets only */ }
    try { app.state = await getJSON("/api/state"); } catch (e) { /* the stream brings it */ }
  }
  showNetwork();
  refresh();
  connect();
  fetchAlarms();
  setInterval(fetchAlarms, 15000);
}

main();
