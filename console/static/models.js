// Recyclops models page (read-only): every model version with its blessing record, and
// every channel with its generations, from GET /api/models.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function pct(x) {
  return x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`;
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : "—";
}

function row(cells, tag, testid) {
  const tr = el("tr");
  if (testid) tr.dataset.testid = testid;
  for (const cell of cells) tr.append(el(tag || "td", cell));
  return tr;
}

function renderChannel(ch) {
  const box = el("article", null, "channel");
  box.dataset.testid = "channel";
  box.dataset.channel = ch.name;
  const head = el("h3", ch.name);
  if (ch.current) {
    head.append(el("span", ` serves ${ch.current.version} (generation ${ch.current.generation})`, "count"));
  }
  box.append(head);
  if (ch.error) box.append(el("p", ch.error, "flag bad"));
  const table = el("table");
  table.append(row(["generation", "version", "action", "published", "note"], "th"));
  for (const g of ch.history) {
    const tr = row([g.generation, g.version, g.action, when(g.published_at), g.note || ""], "td", "generation");
    tr.dataset.generation = g.generation;
    if (ch.current && g.generation === ch.current.generation) tr.className = "current";
    table.append(tr);
  }
  box.append(table);
  return box;
}

function verdict(m) {
  const b = m.blessing;
  if (!b) return el("span", "no blessing record", "flag warn");
  if (b.blessed) return el("span", "blessed", "flag");
  if (b.forced) return el("span", `not blessed, published anyway: ${b.forced}`, "flag warn");
  return el("span", "not blessed", "flag bad");
}

function renderModel(m) {
  const box = el("article", null, "model");
  box.dataset.testid = "model";
  box.dataset.version = m.version;
  const head = el("h3", m.version);
  for (const ch of m.serving) head.append(el("span", ` serving ${ch}`, "count"));
  box.append(head);
  const v = verdict(m);
  v.dataset.testid = "verdict";
  box.append(v);
  const dl = el("dl");
  const fact = (name, value, testid) => {
    dl.append(el("dt", name));
    const dd = el("dd", value);
    if (testid) dd.dataset.testid = testid;
    dl.append(dd);
  };
  fact("created", when(m.created));
  const iv = m.int8_interval;
  fact(
    "int8 accuracy",
    `${pct(m.int8_accuracy)}` + (iv ? ` (95% interval ${pct(iv[0])}–${pct(iv[1])})` : "") +
      ` on ${m.test_images} test images`,
    "int8-accuracy",
  );
  fact("float accuracy", pct(m.float_accuracy), "float-accuracy");
  const b = m.blessing || {};
  let champ = b.champion_version || "none (first model of its channel)";
  if (m.champion) champ += ` (its own int8 accuracy ${pct(m.champion.int8_accuracy)})`;
  fact("champion", champ, "champion");
  box.append(dl);
  if (b.champion_lines && b.champion_lines.length) {
    const ul = el("ul", null, "reasons");
    ul.dataset.testid = "champion-comparison";
    for (const line of b.champion_lines) ul.append(el("li", line));
    box.append(ul);
  }
  const table = el("table");
  table.dataset.testid = "per-class";
  table.append(row(["class", "test images", "int8", "float"], "th"));
  for (const c of m.per_class) {
    const tr = row([c.name, c.support, pct(c.int8_accuracy), pct(c.float_accuracy)], "td", "class-row");
    tr.dataset.class = c.name;
    table.append(tr);
  }
  box.append(table);
  if (b.summary) {
    const details = el("details");
    details.append(el("summary", "blessing record"));
    const pre = el("pre", b.summary);
    pre.dataset.testid = "summary";
    details.append(pre);
    box.append(details);
  }
  return box;
}

async function load() {
  const response = await fetch("/api/models", { credentials: "same-origin" });
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  $("channels").replaceChildren(...data.channels.map(renderChannel));
  $("models").replaceChildren(...data.models.map(renderModel));
  if (!data.channels.length) $("channels").append(el("p", "no channel yet", "hint"));
  if (!data.models.length) $("models").append(el("p", "no model in the store yet", "hint"));
  for (const p of data.problems) $("models").append(el("p", `${p.version}: ${p.error}`, "flag bad"));
  $("models-status").textContent = `${data.models.length} models · ${data.channels.length} channels`;
}

load().catch((err) => {
  $("message").textContent = err.message;
  $("message").className = "error";
});
