// Recyclops models page: every model version with its blessing record, and every channel
// with its generations (GET /api/models); per channel, promote another channel's model to it
// or roll it back, each after a confirmation that shows what will happen (the plan from
// GET /api/models/promote|rollback), then POST what was confirmed.
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
  if (ch.current) box.append(renderActions(ch));
  return box;
}

// -- actions -------------------------------------------------------------------------------
let channelsNow = [];

async function call(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (method === "POST") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  return { ok: response.ok, data };
}

function list(items, testid) {
  const ul = el("ul", null, "reasons");
  ul.dataset.testid = testid;
  for (const item of items) ul.append(el("li", item));
  return ul;
}

function button(text, testid, onclick) {
  const b = el("button", text);
  b.type = "button";
  b.dataset.testid = testid;
  b.addEventListener("click", onclick);
  return b;
}

// The confirmation panel under a channel: the plan, then Confirm (when it may go ahead) or
// only Cancel; after the act, its result or exactly why it was refused.
function showPanel(panel, parts) {
  panel.replaceChildren(...parts);
  panel.hidden = false;
}

// A success reloads the page's data: the outcome is shown again in the re-drawn channel.
let lastOutcome = null;

function showOutcome(panel, ok, data, channel) {
  const parts = [];
  if (ok) {
    const p = el("p", data.message, "flag");
    p.dataset.testid = "result";
    parts.push(p, el("p", data.notice, "hint"));
  } else {
    const p = el("p", data.error, "flag bad");
    p.dataset.testid = "refusal";
    parts.push(p);
    if (data.missing && data.missing.length) parts.push(list(data.missing, "missing"));
  }
  parts.push(button("Close", "close", () => { panel.hidden = true; }));
  showPanel(panel, parts);
  if (ok && channel) {
    lastOutcome = { channel, data };
    load().catch(showError);
  }
}

async function planPromote(ch, source, panel) {
  const q = new URLSearchParams({ from: source, to: ch.name });
  const { ok, data } = await call("GET", `/api/models/promote?${q}`);
  if (!ok) return showOutcome(panel, false, data);
  const head = el("p", data.headline, data.sufficient ? "flag" : "flag bad");
  head.dataset.testid = "headline";
  const parts = [head];
  if (data.missing.length && !data.already) parts.push(list(data.missing, "missing"));
  parts.push(el("p", "the evidence (the fleet's telemetry over the rollout window):", "hint"));
  parts.push(list(data.lines, "evidence"));
  if (data.sufficient) {
    const plan = el("p", data.plan);
    plan.dataset.testid = "plan";
    parts.push(plan);
    parts.push(button(`Confirm: promote ${data.canary.version} to ${ch.name}`, "confirm", async () => {
      const body = { from: source, to: ch.name, version: data.canary.version, generation: data.target.generation };
      const answer = await call("POST", "/api/models/promote", body);
      showOutcome(panel, answer.ok, answer.data, ch.name);
    }));
  }
  parts.push(button("Cancel", "cancel", () => { panel.hidden = true; }));
  showPanel(panel, parts);
}

async function planRollback(ch, to, panel) {
  const { ok, data } = await call("GET", `/api/models/rollback?${new URLSearchParams({ channel: ch.name })}`);
  if (!ok) return showOutcome(panel, false, data);
  const plan = el("p", data.plan.replace("the chosen version", to));
  plan.dataset.testid = "plan";
  const note = el("input");
  note.placeholder = "why (kept in the channel's history)";
  note.dataset.testid = "rollback-note";
  note.maxLength = 500;
  const confirm = button(`Confirm: roll ${ch.name} back to ${to}`, "confirm", async () => {
    const body = { channel: ch.name, to, generation: data.current.generation, note: note.value };
    const answer = await call("POST", "/api/models/rollback", body);
    showOutcome(panel, answer.ok, answer.data, ch.name);
  });
  showPanel(panel, [plan, note, confirm, button("Cancel", "cancel", () => { panel.hidden = true; })]);
}

function select(options, testid) {
  const s = el("select");
  s.dataset.testid = testid;
  for (const o of options) s.append(el("option", o));
  return s;
}

function renderActions(ch) {
  const bar = el("div", null, "actions");
  const panel = el("div", null, "confirm");
  panel.dataset.testid = "action-panel";
  panel.hidden = true;
  const sources = channelsNow.filter((c) => c.current && c.name !== ch.name).map((c) => c.name);
  if (sources.length) {
    if (sources.includes("canary")) sources.unshift(...sources.splice(sources.indexOf("canary"), 1));
    const from = select(sources, "promote-from");
    const go = button("", "promote", () => planPromote(ch, from.value, panel).catch(showError));
    const label = () => { go.textContent = `Promote ${from.value} → ${ch.name}`; };
    from.addEventListener("change", label);
    label();
    bar.append(from, go);
  }
  const earlier = [];
  for (const g of ch.history) {
    if (g.version !== ch.current.version && !earlier.includes(g.version)) earlier.push(g.version);
  }
  if (earlier.length) {
    const to = select(earlier, "rollback-to");
    bar.append(to, button("Roll back", "rollback", () => planRollback(ch, to.value, panel).catch(showError)));
  }
  if (lastOutcome && lastOutcome.channel === ch.name) {
    showOutcome(panel, true, lastOutcome.data);
    lastOutcome = null;
  }
  const box = el("div");
  box.append(bar, panel);
  return box;
}

function showError(err) {
  $("message").textContent = err.message;
  $("message").className = "error";
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
  channelsNow = data.channels;
  $("channels").replaceChildren(...data.channels.map(renderChannel));
  $("models").replaceChildren(...data.models.map(renderModel));
  if (!data.channels.length) $("channels").append(el("p", "no channel yet", "hint"));
  if (!data.models.length) $("models").append(el("p", "no model in the store yet", "hint"));
  for (const p of data.problems) $("models").append(el("p", `${p.version}: ${p.error}`, "flag bad"));
  $("models-status").textContent = `${data.models.length} models · ${data.channels.length} channels`;
}

load().catch(showError);
