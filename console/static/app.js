// Recyclops review page: keys send decisions to the server, which journals them at once.
// Actions run one after another (a promise chain), each against the state the previous one
// returned, so fast typing never labels the wrong image.
"use strict";

let state = null;
let chain = Promise.resolve();
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function call(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (method === "POST") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function message(text, isError) {
  const node = $("message");
  node.textContent = text || "";
  node.className = isError ? "error" : "";
}

function enqueue(action) {
  chain = chain.then(action).then(
    (next) => { if (next) render(next); },
    (err) => { message(err.message, true); return refresh(); },
  );
  return chain;
}

function refresh() {
  return call("GET", "/api/state").then(render, (err) => message(err.message, true));
}

function fact(dl, name, value, testid) {
  dl.append(el("dt", name));
  const dd = el("dd", value === null || value === undefined ? "—" : value);
  if (testid) dd.dataset.testid = testid;
  dl.append(dd);
}

function renderItem(item) {
  const img = $("image");
  const facts = $("facts");
  const flags = $("flags");
  facts.replaceChildren();
  flags.replaceChildren();
  const problem = $("image-problem");
  $("done").hidden = !!item;
  problem.hidden = !(item && item.image_problem);
  problem.textContent = item && item.image_problem
    ? `This image cannot be used for training: ${item.image_problem}. Press ${state.keys.invalid} to mark it invalid.`
    : "";
  img.hidden = !item || !!item.image_problem;
  if (!item) { img.removeAttribute("src"); img.dataset.sha = ""; return; }
  if (item.image_problem) {
    flags.append(el("div", `cannot be decoded: ${item.image_problem}`, "flag bad"));
  } else if (img.dataset.sha !== item.sha256) {
    img.src = `/api/image/${item.sha256}`;
    img.dataset.sha = item.sha256;
  }
  fact(facts, "gathered as", item.auto_capture ? `— (captured automatically, model: ${item.gathered_label})` : item.gathered_label, "gathered-label");
  const score = item.score === null ? "" : ` (${Math.round(item.score * 100)}%)`;
  fact(facts, "model says", item.prediction === null ? null : item.prediction + score, "prediction");
  fact(facts, "model", item.model_version);
  fact(facts, "device", item.devices.join(", "));
  fact(facts, "captured", item.captured_at.replace("T", " ").slice(0, 19));
  fact(facts, "image", item.sha256.slice(0, 12) + "…", "sha");
  const severity = {
    import_conflict: "bad", label_disagreement: "bad", near_duplicate_conflict: "bad",
    likely_label_error: "warn", auto_capture: "auto", bin_disagrees: "warn", near_duplicate: "",
  };
  const reasons = el("ul", null, "reasons");
  reasons.dataset.testid = "reasons";
  for (const reason of item.reasons || []) {
    const li = el("li", reason.text, `flag ${severity[reason.kind] || ""}`.trim());
    li.dataset.kind = reason.kind;
    reasons.append(li);
  }
  flags.append(reasons);
  if (item.prior && item.prior.label) {
    const votes = Object.entries(item.prior.votes).map(([s, l]) => `${l} (${s})`).join(", ");
    flags.append(el("div", `already decided: ${item.prior.label}; ${votes}`, item.prior.conflict ? "flag bad" : "flag"));
  }
}

function renderLegend(s) {
  const legend = $("legend");
  legend.replaceChildren();
  const per = s.progress.per_category;
  const entries = s.categories.map((c) => [c.key, c.name, () => decide(c.name)]);
  entries.push([s.keys.invalid, "invalid", () => decide("invalid")]);
  for (const [key, name, act] of entries) {
    const li = el("li");
    li.dataset.label = name;
    li.append(el("kbd", key), el("span", name, "name"));
    const count = el("span", "", "count");
    count.title = "decided in this session · left in the queue (by gathered label)";
    li.append(count);
    li.addEventListener("click", act);
    legend.append(li);
  }
  updateCounts(s);
  for (const [key, name, act] of [[s.keys.skip, "skip", skip], [s.keys.back, "back & withdraw", back]]) {
    const li = el("li");
    li.append(el("kbd", key), el("span", name, "name"));
    li.addEventListener("click", act);
    legend.append(li);
  }
}

function render(s) {
  const firstRender = state === null;
  state = s;
  const p = s.progress;
  $("progress").textContent = `${p.done} done · ${p.left} left` +
    (p.skipped ? ` (${p.skipped} skipped)` : "") +
    (p.flagged ? ` · ${p.flagged} identical images with different labels` : "");
  const saving = $("saving");
  if (s.saving.error) {
    saving.textContent = `NOT SAVED: ${s.saving.error}`;
    saving.className = "error";
  } else if (s.saving.unsaved) {
    saving.textContent = `saving ${s.saving.unsaved}…`;
    saving.className = "unsaved";
  } else {
    saving.textContent = s.saving.decisions ? `all ${s.saving.decisions} saved` : "nothing to save yet";
    saving.className = "saved";
  }
  $("session").textContent = `session ${s.session} → ${s.saving.journal}`;
  if (firstRender || $("legend").children.length === 0) renderLegend(s); else updateCounts(s);
  renderItem(s.current);
  renderFilter(s);
  for (const sha of s.upcoming) new Image().src = `/api/image/${sha}`;
}

function updateCounts(s) {
  for (const li of $("legend").children) {
    const counts = s.progress.per_category[li.dataset.label];
    const span = li.querySelector(".count");
    if (counts && span) span.textContent = `${counts.decided} · ${counts.left}`;
  }
}

function renderFilter(s) {
  for (const [id, values, chosen] of [
    ["filter-label", s.facets.labels, s.filter.labels],
    ["filter-device", s.facets.devices, s.filter.devices],
  ]) {
    const select = $(id);
    if (select.options.length === 1) {
      for (const value of values) select.append(new Option(value, value));
    }
    select.value = chosen.length === 1 ? chosen[0] : "";
  }
  $("filter-decided").checked = s.filter.include_decided;
}

function changeFilter() {
  const one = (id) => ($(id).value ? [$(id).value] : []);
  const body = {
    labels: one("filter-label"),
    devices: one("filter-device"),
    include_decided: $("filter-decided").checked,
  };
  enqueue(() => call("POST", "/api/filter", body));
  document.activeElement.blur();  // keys go back to reviewing
}

function decide(label) {
  return enqueue(() => {
    if (!state || !state.current) return null;
    message(`${state.current.sha256.slice(0, 12)}… → ${label}`);
    return call("POST", "/api/decide", { sha256: state.current.sha256, label });
  });
}

function skip() {
  return enqueue(() => (state && state.current ? call("POST", "/api/skip", { sha256: state.current.sha256 }) : null));
}

function back() {
  return enqueue(() => call("POST", "/api/back", {}).then((s) => { message("back: decide this one again"); return s; }));
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || !state) return;
  if (event.target.closest && event.target.closest("select, input, textarea")) return;
  const key = event.key.toLowerCase();
  if (key === state.keys.skip) { skip(); }
  else if (key === state.keys.back) { back(); }
  else if (key === state.keys.invalid) { decide("invalid"); }
  else {
    const category = state.categories.find((c) => c.key.toLowerCase() === key);
    if (!category) return;
    decide(category.name);
  }
  event.preventDefault();
}

async function showConflicts() {
  const box = $("conflicts");
  const list = $("conflict-list");
  try {
    const data = await call("GET", "/api/conflicts");
    list.replaceChildren();
    for (const c of data.conflicts) {
      let text;
      if (c.kind === "import") {
        const claims = Object.entries(c.labels).map(([l, files]) => `${l} (${files.join(", ")})`).join("; ");
        text = `${c.sha256.slice(0, 12)}… import ${c.session}: ${c.import_kind} conflict — ${claims}` +
          (c.label ? `; now ${c.label}` : "; unlabelled");
      } else {
        const votes = Object.entries(c.votes).map(([s, l]) => `${s}: ${l}`).join("; ");
        text = `${c.sha256.slice(0, 12)}… resolved ${c.label} — ${votes}`;
      }
      const li = el("li", text);
      li.dataset.kind = c.kind;
      list.append(li);
    }
    if (!data.conflicts.length) list.append(el("li", "no conflicts"));
    box.hidden = false;
  } catch (err) { message(err.message, true); }
}

document.addEventListener("keydown", onKey);
document.addEventListener("DOMContentLoaded", () => {
  $("conflicts-button").addEventListener("click", showConflicts);
  for (const id of ["filter-label", "filter-device", "filter-decided"]) {
    $(id).addEventListener("change", changeFilter);
  }
  $("filter").addEventListener("submit", (event) => event.preventDefault());
  refresh();
  setInterval(() => { chain = chain.then(refresh); }, 5000);
});
