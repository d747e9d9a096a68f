// Stellwerk dashboard: plain JavaScript, no dependencies, talks only to this gateway.
"use strict";

const $ = (sel) => document.querySelector(sel);
const FEED_ROWS = 200;
const state = { health: null, stats: null, refreshTimer: null, key: sessionStorage.getItem("stellwerk-key") };
// With server.master_key, the admin routes need a key: a browser cannot send a header on its own, so the page
// asks for one (the master key or an admin key), keeps it in sessionStorage (gone with the tab; no cookie) and
// sends it as a bearer token, on the live feed too (a fetch stream: EventSource cannot send headers).

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : child === null || child === undefined ? "" : String(child));
  }
  return node;
}

function authorized(options) {
  const headers = { ...((options || {}).headers || {}) };
  if (state.key) headers.authorization = `Bearer ${state.key}`;
  return { credentials: "omit", ...(options || {}), headers };
}

async function getJSON(path, options) {
  const response = await fetch(path, authorized(options));
  if (response.status === 401 || response.status === 403) {
    askForKey(response.status === 403 ? "This key has no admin scope." : state.key ? "The key was refused." : "");
    throw new Error(`${path}: HTTP ${response.status}`);
  }
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(`${path}: ${message}`);
  }
  return response.json();
}

function postJSON(path, body) {
  return getJSON(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

// Runs `work` and shows the text it returns, or its error, in the element `target`.
async function report(target, work) {
  let text;
  try { text = await work(); } catch (err) { text = String(err.message || err); }
  if (text !== undefined) $(target).textContent = text;
}

// -- login ----------------------------------------------------------------------------------------------------------
function askForKey(why) {
  $("#login").classList.add("active");
  $("#login-why").textContent = why || "This gateway needs a key: the master key or a key with the admin scope.";
  $("#status").textContent = "locked"; $("#status").className = "status";
}

function logIn(event) {
  event.preventDefault();
  state.key = $("#login-key").value.trim();
  $("#login-key").value = "";
  sessionStorage.setItem("stellwerk-key", state.key);
  $("#login").classList.remove("active");
  start();
}

// -- views ---------------------------------------------------------------------------------------------------------
function show() {
  const name = (location.hash || "#overview").slice(1);
  for (const view of document.querySelectorAll(".view")) view.classList.toggle("active", view.id === name);
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === name);
  if (name === "overview") refreshOverview();
  if (name === "deployments") refreshDeployments();
  if (name === "experiments") refreshExperiments();
  if (name === "keys") refreshKeys();
  if (name === "configuration") refreshConfiguration();
  if (name === "cache") refreshCache();
}

// -- overview: tiles and charts -----------------------------------------------------------------------------------
function drawChart(canvas, series, colors, format, floor) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 34;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  const values = series.flatMap((s) => s.map((p) => p[1]).filter((v) => v !== null));
  const max = Math.max(floor || 1e-9, ...values) * 1.1;
  const xs = series.flatMap((s) => s.map((p) => p[0]));
  const now = Date.now() / 1000, x0 = now - 900;
  ctx.strokeStyle = "#2a3440"; ctx.fillStyle = "#8a96a3";
  for (let i = 0; i <= 4; i++) {
    const y = h - pad / 2 - (h - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(format(max * i / 4), 0, y + 4);
  }
  ctx.fillText("-15 min", pad, h - 2); ctx.fillText("now", w - 24, h - 2);
  series.forEach((points, i) => {
    ctx.strokeStyle = colors[i]; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    for (const [t, v] of points) {
      if (v === null) continue;
      const x = pad + (w - pad) * (t - x0) / 900, y = h - pad / 2 - (h - pad) * v / max;
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      if (points.length === 1) ctx.arc(x, y, 2, 0, 2 * Math.PI);
    }
    ctx.stroke();
  });
  return xs.length;
}

async function refreshOverview() {
  const [timeline, stats] = await Promise.all([getJSON("/admin/timeline"), getJSON("/admin/stats")]);
  state.stats = stats;
  $("#t-requests").textContent = stats.requests;
  $("#t-errors").textContent = stats.errors;
  $("#t-failovers").textContent = stats.failovers;
  $("#t-cost").textContent = stats.cost_usd.toFixed(6);
  const pts = timeline.points, mid = (p) => p.start + timeline.bucket_s / 2;
  const num = (d) => (v) => v.toFixed(d);
  drawChart($("#c-rps"), [pts.map((p) => [mid(p), p.rps])], ["#58a6ff"], num(2));
  drawChart($("#c-errors"), [pts.map((p) => [mid(p), p.error_rate])], ["#f85149"], (v) => `${(v * 100).toFixed(1)}%`, 0.05);
  drawChart($("#c-latency"), [pts.map((p) => [mid(p), p.p50]), pts.map((p) => [mid(p), p.p99])],
            ["#3fb950", "#d29922"], num(3));
  drawChart($("#c-cost"), [pts.map((p) => [mid(p), p.cost])], ["#bc8cff"], (v) => v.toExponential(1));
}

// -- deployments --------------------------------------------------------------------------------------------------
async function refreshDeployments() {
  const [health, stats] = await Promise.all([getJSON("/admin/health"), getJSON("/admin/stats")]);
  state.health = health;
  $("#version").textContent = `config v${health.version}`;
  const body = $("#deployment-table tbody");
  body.replaceChildren();
  const served = stats.deployments || {};
  const total = Object.values(served).reduce((sum, d) => sum + d.requests, 0);
  const models = [];
  for (const [model, info] of Object.entries(health.models)) {
    models.push(model);
    for (const [id, d] of Object.entries(info.deployments)) {
      const s = served[id] || { requests: 0, last_error: null };
      const breaker = d.breaker.state;
      body.append(el("tr", { "data-deployment": id, "data-breaker": breaker },
        el("td", {}, id), el("td", {}, model), el("td", {}, d.provider),
        el("td", { class: d.available ? "up" : "down" }, d.available ? "up" : "down"),
        el("td", { class: breaker === "closed" ? "up" : breaker === "open" ? "down" : "half_open" }, breaker),
        el("td", {}, d.in_flight),
        el("td", {}, d.latency_ewma_ms === null ? "–" : d.latency_ewma_ms.toFixed(1)),
        el("td", {}, total ? `${(100 * s.requests / total).toFixed(0)}%` : "–"),
        el("td", { class: "err", title: d.last_error || s.last_error || "" }, d.last_error || s.last_error || "")));
    }
  }
  const select = $("#dry-model");
  if (!select.options.length) for (const m of models) select.append(el("option", { value: m }, m));
}

function refreshSoon() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    const view = (location.hash || "#overview").slice(1);
    if (view === "deployments") refreshDeployments();
    if (view === "overview") refreshOverview();
    if (view === "experiments") refreshExperiments();
    if (view === "keys") refreshKeys();
    if (view === "configuration") refreshConfiguration();
    if (view === "cache") refreshCache();
  }, 500);
}

// -- routing: live feed and dry run -------------------------------------------------------------------------------
function addFeedRow(event) {
  const body = $("#feed tbody");
  const time = new Date(event.time * 1000).toLocaleTimeString();
  let row;
  if (event.type === "request") {
    const failover = event.failed.length > 0 && event.deployment !== null;
    row = el("tr", { class: event.deployment === null ? "failed" : failover ? "failover" : "",
                     "data-request": event.request_id, "data-deployment": event.deployment || "" },
      el("td", {}, time), el("td", {}, event.request_id.slice(0, 12)), el("td", {}, event.model),
      el("td", { class: "dep" }, event.deployment || "none"), el("td", {}, event.status),
      el("td", {}, event.attempts), el("td", {}, (event.latency * 1000).toFixed(1)),
      el("td", {}, event.cost.toFixed(6)),
      el("td", { class: "why" }, event.route || (event.failed.length ? `failed: ${event.failed.join(", ")}` : "")));
  } else if (event.type === "breaker") {
    row = el("tr", { class: event.new === "open" ? "failed" : "", "data-breaker-change": event.deployment },
      el("td", {}, time), el("td", {}, "breaker"), el("td", {}, ""), el("td", { class: "dep" }, event.deployment),
      el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""),
      el("td", { class: "why" }, `breaker ${event.old} → ${event.new}`));
  } else if (event.type === "config") {
    row = el("tr", {}, el("td", {}, time), el("td", {}, "config"), el("td", {}, ""), el("td", {}, ""),
      el("td", {}, ""), el("td", {}, ""), el("td", {}, ""), el("td", {}, ""),
      el("td", { class: "why" }, `routing table version ${event.version}`));
    $("#version").textContent = `config v${event.version}`;
  } else return;
  body.prepend(row);
  while (body.children.length > FEED_ROWS) body.lastChild.remove();
}

async function dryRun(event) {
  event.preventDefault();
  const model = $("#dry-model").value, prompt = $("#dry-prompt").value;
  const query = new URLSearchParams({ model, prompt });  // a GET: no state changes, no cross-site questions
  await report("#dry-result", async () => JSON.stringify(await getJSON(`/admin/route?${query}`), null, 2));
}

// -- experiments --------------------------------------------------------------------------------------------------
function wilson(errors, n) {
  if (!n) return [0, 0];
  const z = 1.96, p = errors / n, d = 1 + z * z / n;
  const centre = (p + z * z / (2 * n)) / d, half = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

async function refreshExperiments() {
  const experiments = await getJSON("/admin/experiments");
  const list = $("#experiment-list");
  list.replaceChildren();
  const names = Object.keys(experiments);
  if (!names.length) list.append(el("p", { class: "note" }, "No model runs an A/B test (strategy: ab)."));
  for (const name of names) {
    const table = el("table", { "data-experiment": name });
    table.append(el("thead", {}, el("tr", {}, ...["Variant", "Share", "Requests", "Errors", "Error rate (95 % CI)",
      "Mean latency (ms)", "Cost (USD)", "Cost / request"].map((h) => el("th", {}, h)))));
    const tbody = el("tbody");
    const shares = Object.fromEntries((experiments[name].assignment.variants || []).map((v) => [v.name, v.percent]));
    for (const [variant, v] of Object.entries(experiments[name].variants)) {
      const [lo, hi] = wilson(v.errors, v.requests);
      tbody.append(el("tr", { "data-variant": variant }, el("td", {}, variant),
        el("td", {}, shares[variant] === undefined ? "–" : `${shares[variant]}%`), el("td", {}, v.requests),
        el("td", {}, v.errors),
        el("td", {}, `${(100 * v.error_rate).toFixed(1)}% (${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)}%)`),
        el("td", {}, v.latency_mean === null ? "–" : (v.latency_mean * 1000).toFixed(1)),
        el("td", {}, v.cost_total.toFixed(6)), el("td", {}, v.cost_mean.toExponential(2))));
    }
    table.append(tbody);
    list.append(el("div", { class: "experiment" }, el("h2", {}, name)), table);
  }
}

// -- keys -----------------------------------------------------------------------------------------------------------
async function refreshKeys() {
  const body = $("#key-table tbody");
  let keys;
  try {
    keys = (await getJSON("/admin/keys")).data;
  } catch (err) {
    $("#key-note").textContent = String(err.message).includes("404")
      ? "Keys need server.master_key (and a store for keys made here)." : String(err.message);
    return;
  }
  $("#key-note").textContent = "";
  body.replaceChildren();
  for (const k of keys) {
    const revoke = el("button", { type: "button", class: "revoke", "data-revoke": k.id }, "Revoke");
    if (k.revoked || k.source !== "api") revoke.disabled = true;
    revoke.addEventListener("click", () => revokeKey(k.id));
    body.append(el("tr", { "data-key": k.id, "data-revoked": String(k.revoked) },
      el("td", {}, k.id), el("td", {}, k.name), el("td", {}, k.team || ""), el("td", {}, k.requests),
      el("td", {}, k.spend.toFixed(6)), el("td", {}, k.budget ? `$${k.budget.usd} / ${k.budget.period}` : ""),
      el("td", { class: k.revoked ? "down" : "up" }, k.revoked ? "revoked" : "active"), el("td", {}, revoke)));
  }
  for (const [group, table] of [["team", "#spend-team"], ["model", "#spend-model"]]) {
    const rows = (await getJSON(`/admin/spend?group_by=${group}`)).rows;
    const tbody = $(`${table} tbody`);
    tbody.replaceChildren();
    for (const r of rows) {
      tbody.append(el("tr", { [`data-${group}`]: r[group] || "" }, el("td", {}, r[group] || "(none)"),
        el("td", {}, r.requests), el("td", {}, r.prompt_tokens + r.completion_tokens), el("td", {}, r.cost.toFixed(6))));
    }
  }
}

async function createKey(event) {
  event.preventDefault();
  const name = $("#key-name").value.trim();
  await report("#key-secret", async () => {
    const made = await postJSON("/admin/keys", { name });
    return `${made.id}: ${made.key} (shown once: copy it now)`;
  });
  refreshKeys();
}

async function revokeKey(id) {
  await report("#key-note", async () => {
    await getJSON(`/admin/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
    return "";
  });
  refreshKeys();
}

// -- configuration: versions, diff against the current one, rollback ---------------------------------------------
async function refreshConfiguration() {
  let versions;
  try {
    versions = (await getJSON("/admin/config/versions")).versions;
  } catch (err) {
    $("#config-note").textContent = String(err.message);
    return;
  }
  const current = versions.length ? versions[versions.length - 1].version : null;
  $("#config-note").textContent = current === null ? "" : `Serving version ${current}.`;
  const body = $("#config-table tbody");
  body.replaceChildren();
  for (const v of [...versions].reverse()) {
    const diff = el("button", { type: "button", "data-diff": v.version }, "Diff to current");
    diff.addEventListener("click", () => showDiff(v.version));
    const back = el("button", { type: "button", "data-rollback": v.version }, "Roll back to this");
    if (v.version === current) { diff.disabled = true; back.disabled = true; }
    back.addEventListener("click", () => rollBack(v.version));
    body.append(el("tr", { "data-version": v.version, class: v.version === current ? "current" : "" },
      el("td", {}, v.version), el("td", {}, v.source), el("td", {}, v.author || ""),
      el("td", {}, new Date(v.applied_at * 1000).toLocaleString()), el("td", {}, v.edits), el("td", {}, diff, " ", back)));
  }
}

function showDiff(version) {
  return report("#config-diff", async () =>
    JSON.stringify(await getJSON(`/admin/config/diff?from=${version}`), null, 2));
}

async function rollBack(version) {
  await report("#config-diff", async () =>
    `Rolled back: now serving version ${(await postJSON("/admin/config/rollback", { version })).version}.`);
  refreshConfiguration();
}

// -- cache: hit rate and money saved, per model --------------------------------------------------------------------
async function refreshCache() {
  let cache;
  try {
    cache = await getJSON("/admin/cache");
  } catch (err) {
    $("#cache-note").textContent = String(err.message).includes("404")
      ? "No model has a response cache (models[].cache.mode)." : String(err.message);
    return;
  }
  const lookups = cache.hits + cache.semantic_hits + cache.misses;
  $("#cache-note").textContent = `${cache.available ? "" : "The cache backend cannot be reached. "}` +
    `Hit rate ${lookups ? (100 * (cache.hits + cache.semantic_hits) / lookups).toFixed(1) : "0.0"} %, ` +
    `saved $${cache.saved_cost.toFixed(6)}, ${cache.entries} entries.`;
  const body = $("#cache-table tbody");
  body.replaceChildren();
  for (const [model, m] of Object.entries(cache.models)) {
    const n = m.hits + m.semantic_hits + m.misses;
    body.append(el("tr", { "data-cache-model": model }, el("td", {}, model), el("td", {}, m.hits),
      el("td", {}, m.semantic_hits), el("td", {}, m.misses),
      el("td", {}, n ? `${(100 * (m.hits + m.semantic_hits) / n).toFixed(1)}%` : "–"),
      el("td", { class: "saved" }, m.saved_cost.toFixed(6)), el("td", {}, m.entries), el("td", {}, m.bytes)));
  }
}

// -- live events: server-sent events read from a fetch stream (it can carry the key) ------------------------------
function handleEvent(type, data) {
  if (type === "hello") {
    const hello = JSON.parse(data);
    $("#version").textContent = `config v${hello.version}`;
    $("#feed tbody").replaceChildren();
    for (const event of hello.recent) addFeedRow(event);
  } else if (type === "request" || type === "breaker" || type === "config") {
    addFeedRow(JSON.parse(data));
    refreshSoon();
  }
}

async function connect() {
  const generation = state.generation = (state.generation || 0) + 1;
  while (generation === state.generation) {
    try {
      const response = await fetch("/admin/events", authorized({ headers: { accept: "text/event-stream" } }));
      if (response.status === 401 || response.status === 403) { askForKey("The key was refused."); return; }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      $("#status").textContent = "live"; $("#status").className = "status live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || generation !== state.generation) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) handleEvent(type, data.join("\n"));
        }
      }
    } catch (_) { /* the gateway went away: try again */ }
    $("#status").textContent = "reconnecting…"; $("#status").className = "status";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function start() {
  connect();
  refreshDeployments().then(show).catch(() => {});
}

window.addEventListener("hashchange", show);
document.addEventListener("DOMContentLoaded", () => {
  $("#dry-run").addEventListener("submit", dryRun);
  $("#login-form").addEventListener("submit", logIn);
  $("#key-form").addEventListener("submit", createKey);
  start();
  setInterval(() => { if ((location.hash || "#overview") === "#overview") refreshOverview().catch(() => {}); }, 5000);
});
