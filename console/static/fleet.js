// Recyclops fleet page (read-only): each bin's state, rates over the last 24 h with a 7-day
// trend (inline SVG, drawn here) and its drift alarm, from GET /api/fleet.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function pct(x) {
  return x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`;
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : "—";
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 0) return " (in the future: check the bin's clock)";
  if (seconds < 120) return ` (${Math.round(seconds)} s ago)`;
  if (seconds < 7200) return ` (${Math.round(seconds / 60)} min ago)`;
  if (seconds < 172800) return ` (${Math.round(seconds / 3600)} h ago)`;
  return ` (${Math.round(seconds / 86400)} days ago)`;
}

const SERIES = [
  { key: "correction_rate", cls: "corr", name: "correction rate" },
  { key: "low_confidence_rate", cls: "low", name: "low-confidence rate" },
];

// One point per day (24 h ending at the point), oldest left; a day without data is a gap.
function trendPlot(trend) {
  const w = 300, h = 80, pad = 6;
  const values = trend.flatMap((p) => SERIES.map((s) => p[s.key])).filter((v) => v !== null);
  const top = Math.max(0.05, ...values);
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, trend.length - 1);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  const plot = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: "trend" });
  plot.dataset.testid = "trend";
  plot.append(svg("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, class: "axis" }));
  for (const s of SERIES) {
    let path = "";
    trend.forEach((p, i) => {
      const v = p[s.key];
      if (v === null) return;
      const gap = i === 0 || trend[i - 1][s.key] === null;
      path += `${gap ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      const dot = svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: s.cls });
      dot.dataset.testid = `point-${s.cls}`;
      const title = svg("title");
      title.textContent = `${s.name} ${pct(v)}, 24 h to ${when(p.end)}`;
      dot.append(title);
      plot.append(dot);
    });
    if (path) plot.append(svg("path", { d: path.trim(), class: s.cls }));
  }
  const label = svg("text", { x: pad + 2, y: pad + 8, class: "scale" });
  label.textContent = `max ${pct(top)}`;
  plot.append(label);
  return plot;
}

function renderBin(b) {
  const box = el("article", null, b.alarm ? "bin alarm" : "bin");
  box.dataset.testid = "bin";
  box.dataset.device = b.device;
  const head = el("h3", b.device);
  const state = el("span", b.online ? "online" : "offline", b.online ? "flag" : "flag bad");
  state.dataset.testid = "online";
  head.append(" ", state);
  box.append(head);
  const dl = el("dl");
  const fact = (name, value, testid) => {
    dl.append(el("dt", name));
    const dd = el("dd", value);
    if (testid) dd.dataset.testid = testid;
    dl.append(dd);
  };
  fact("last seen", b.last_seen ? when(b.last_seen) + ago(b.seconds_since) : "not in the last 8 days", "last-seen");
  const gen = b.model_generation === null ? "" : ` (generation ${b.model_generation})`;
  fact("model", (b.model_version || "none") + gen, "model");
  fact("channel", b.channel || "—", "channel");
  const r = b.last_24h;
  fact("corrections, 24 h", `${pct(r.correction_rate)} (${r.corrections} of ${r.predicted_presses} presses)`, "correction-rate");
  fact("low confidence, 24 h", `${pct(r.low_confidence_rate)} (${r.low_confidence} of ${r.frames} frames)`, "low-confidence-rate");
  fact("items, 24 h", r.items, "items");
  if (b.shadow) {
    const sh = b.shadow;
    fact(`shadow ${sh.version || ""}, 24 h`, `agreement ${pct(sh.agreement)} over ${sh.frames} frames, low confidence ${pct(sh.low_confidence_rate)}`, "shadow");
  }
  box.append(dl);
  const figure = el("figure");
  figure.append(trendPlot(b.trend));
  const caption = el("figcaption", null, "hint");
  caption.append(el("span", "■ corrections", "corr"), " ", el("span", "■ low confidence", "low"), " · per day, last 7 days");
  figure.append(caption);
  box.append(figure);
  const alarm = el("p", b.alarm ? "drift alarm" : "no drift alarm", b.alarm ? "flag bad" : "flag");
  alarm.dataset.testid = "alarm";
  box.append(alarm);
  const ul = el("ul", null, "reasons");
  ul.dataset.testid = "drift";
  for (const d of b.drift) {
    const li = el("li", d.text, `drift-${d.state}`);
    li.dataset.state = d.state;
    ul.append(li);
  }
  box.append(ul);
  return box;
}

async function load() {
  const response = await fetch("/api/fleet", { credentials: "same-origin" });
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  $("bins").replaceChildren(...data.bins.map(renderBin));
  if (!data.bins.length) $("bins").append(el("p", "no bin has sent quality telemetry yet", "hint"));
  const r = data.rules;
  $("rules").textContent =
    `Online: the last period ended at most ${r.online_periods} periods ago. Drift: the last ` +
    `${r.recent_hours} h against the ${r.baseline_days} days before, total variation of the ` +
    `class mix or the top-1 histogram ≥ ${r.drift_bound} (at least ${r.min_items} items / ` +
    `${r.min_frames} frames in each window). As of ${when(data.now)}.`;
  $("fleet-status").textContent =
    `${data.bins.length} bins · ${data.online} online · ${data.alarms} drift alarms`;
}

load().catch((err) => {
  $("message").textContent = err.message;
  $("message").className = "error";
});
