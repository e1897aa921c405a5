// The console's runs, loads, landing, DLQ and chart views (served as /runs.js; the page's CSP
// allows scripts from 'self'). Each list is paged by key: "older" asks for the page before the
// last key shown, "newest" starts again; the first page refreshes itself.
(() => {
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (t) => t ? new Date(t).toLocaleString() : "";
const num = (n) => n == null ? "" : Number(n).toLocaleString();
const pill = (ok, yes, no) => `<span class="pill ${ok ? "ok" : "bad"}">${ok ? yes : no}</span>`;
// cutLag is how far gold's consistent cut was behind the source when a build started.
const cutLag = (c) => c && c.lag_seconds != null ? c.lag_seconds.toFixed(1) : "";
async function getJSON(url) {
  const r = await fetch(url, {credentials: "same-origin"});
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

// pager draws one list into view-<name>: rows from row(item), a data-key on each.
function pager(name, url, cursor, row, onPick) {
  const view = $("view-" + name), body = view.querySelector("tbody"), more = view.querySelector(".more"),
    first = view.querySelector(".first"), err = view.querySelector(".err");
  let stack = [""], next = "";
  async function show() {
    const at = stack[stack.length - 1];
    try {
      const page = await getJSON(`${url}?limit=20${at ? `&${cursor}=${encodeURIComponent(at)}` : ""}`);
      body.innerHTML = page.items.map((it) => `<tr data-key="${esc(it.id ?? it.key)}">${row(it)}</tr>`).join("") ||
        '<tr><td class="muted">none</td></tr>';
      next = page.next || "";
      more.disabled = !next;
      first.disabled = stack.length === 1;
      view.dataset.page = String(stack.length);
      err.textContent = "";
    } catch (e) { err.textContent = e.message; }
  }
  more.addEventListener("click", () => { if (next) { stack.push(next); show(); } });
  first.addEventListener("click", () => { stack = [""]; show(); });
  if (onPick) body.addEventListener("click", (e) => { const tr = e.target.closest("tr[data-key]"); if (tr) onPick(tr.dataset.key, tr); });
  show();
  setInterval(() => { if (stack.length === 1) show(); }, 5000);
}

const pick = (tr) => { tr.parentElement.querySelectorAll("tr.picked").forEach((r) => r.classList.remove("picked")); tr.classList.add("picked"); };

async function showRun(key, tr) {
  pick(tr);
  const box = $("run-detail");
  try {
    const r = await getJSON(`/api/runs/${encodeURIComponent(key)}`), d = r.detail;
    box.dataset.key = key;
    box.innerHTML = `<h3>run ${esc(key)} · ${esc(r.trigger)}${r.selector ? " · " + esc(r.selector) : ""} · ${pill(r.ok, "passed", "failed")}</h3>
      <div class="muted">${when(r.started)} to ${when(r.ended)} · ${r.seconds.toFixed(1)} s${r.rows_affected != null ? ` · ${num(r.rows_affected)} rows affected` : ""}
        ${r.gold_lag_seconds != null ? ` · gold ${r.gold_lag_seconds.toFixed(1)} s behind commit when published` : ""}
        ${r.cut ? ` · gold's cut at lsn ${r.cut.lsn}${r.cut.commit_ts ? `, committed ${when(r.cut.commit_ts)}, ${r.cut.lag_seconds.toFixed(1)} s before the build started` : " (no whole transaction yet)"}` : ""}</div>
      ${r.error ? `<pre class="log bad-text">${esc(r.error)}</pre>` : ""}
      ${d.expired ? '<div class="muted">this run\'s nodes and log are no longer kept (the console keeps the last 20,000 runs\' detail)</div>' : ""}
      <table><thead><tr><th>node</th><th>status</th><th class="num">s</th><th class="num">rows affected</th><th>finished</th><th>message</th></tr></thead><tbody>
      ${d.nodes.map((n) => `<tr data-key="${esc(n.id)}" data-status="${esc(n.status)}"><td class="key">${esc(n.id)}</td>
        <td>${pill(["success", "pass"].includes(n.status), esc(n.status), esc(n.status))}</td><td class="num">${n.seconds.toFixed(2)}</td>
        <td class="num">${num(n.rows_affected)}${n.failures ? ` (${num(n.failures)} failing)` : ""}</td><td>${n.completed ? new Date(n.completed).toLocaleTimeString() : ""}</td>
        <td class="muted">${esc(n.message)}</td></tr>`).join("")}</tbody></table>
      <h3>log${d.log_cut ? " (start and end)" : ""}</h3><pre class="log">${esc(d.log) || "(no output kept)"}</pre>`;
  } catch (e) { box.textContent = e.message; }
}

// hex shows bytes as a hex dump, 16 a line.
const hex = (bytes) => Array.from({length: Math.ceil(bytes.length / 16)}, (_, i) => bytes.slice(i * 16, i * 16 + 16))
  .map((l, i) => (i * 16).toString(16).padStart(6, "0") + "  " + Array.from(l, (b) => b.toString(16).padStart(2, "0")).join(" ")).join("\n");
const decode = (b64) => { const s = atob(b64 || ""); return Uint8Array.from(s, (c) => c.charCodeAt(0)); };

async function showDLQ(key, tr) {
  pick(tr);
  const box = $("dlq-detail");
  try {
    const e = await getJSON(`/api/dlq/entry?key=${encodeURIComponent(key)}`);
    const k = decode(e.key_base64), v = decode(e.value_base64), text = new TextDecoder("utf-8", {fatal: false});
    box.dataset.key = key;
    box.innerHTML = `<h3 class="key">${esc(key)}</h3><div>${esc(e.topic)} partition ${e.partition} offset ${e.offset}
      · ${e.timestamp_ms ? new Date(e.timestamp_ms).toLocaleString() : ""}</div><div class="bad-text">${esc(e.reason)}</div>
      <h3>key (${k.length} bytes)</h3><pre class="log">${esc(text.decode(k))}</pre>
      <h3>value (${v.length} bytes) as text</h3><pre class="log">${esc(text.decode(v))}</pre>
      <h3>value bytes</h3><pre class="log">${esc(hex(v))}</pre>`;
  } catch (err) { box.textContent = err.message; }
}

pager("runs", "/api/runs", "before", (r) => `<td class="num">${esc(r.id)}</td><td>${when(r.started)}</td><td>${esc(r.trigger)}</td>
  <td>${pill(r.ok, "passed", "failed")}</td><td class="num">${r.models}</td><td class="num">${r.tests_passed}</td><td class="num">${r.tests_failed}</td>
  <td class="num">${num(r.rows_affected)}</td><td class="num">${r.seconds.toFixed(1)}</td><td class="num">${r.cut ? r.cut.lsn : ""}</td><td class="num">${cutLag(r.cut)}</td>`, showRun);
pager("loads", "/api/loads", "before", (l) => `<td>${when(l.loaded_at)}</td><td>${esc(l.table)}</td><td class="num">${num(l.rows)}</td>
  <td>${esc(l.topic)}</td><td class="num">${l.partition}</td><td class="num">${l.first_offset}–${l.last_offset}</td><td class="key">${esc(l.key)}${l.replaced ? " (replaced)" : ""}</td>`);
pager("batches", "/api/batches", "before", (b) => `<td>${when(b.at)}</td><td>${esc(b.topic)}</td><td class="num">${b.partition}</td>
  <td class="num">${b.first_offset}–${b.last_offset}</td><td class="num">${num(b.bytes)}</td><td class="key">${esc(b.object)}</td>`);
pager("dlq", "/api/dlq", "after", (d) => `<td>${esc(d.topic)}</td><td class="num">${d.partition}</td><td class="num">${d.offset}</td>
  <td class="bad-text">${esc(d.reason)}</td><td class="num">${num(d.bytes)}</td>`, showDLQ);

// Charts: the last hour, on one time axis; each series a polyline.
const colours = ["#0969da", "#bf8700", "#1a7f37", "#8250df", "#cf222e"];
function lines(svg, series, unit) {
  const W = 600, H = 180, now = Date.now();
  const pts = series.flatMap((s) => s.points);
  if (!pts.length) { svg.innerHTML = '<text x="10" y="90" fill="#656d76">no data in the last hour yet</text>'; return; }
  // The axis spans the last hour, or less while the stack has run for less.
  const from = Math.max(now - 3600e3, Math.min(...pts.map((p) => p[0]))), span = Math.max(60e3, now - from);
  const max = Math.max(1e-9, ...pts.map((p) => p[1])) * 1.1;
  const x = (t) => 40 + ((t - from) / span) * (W - 50), y = (v) => H - 20 - (v / max) * (H - 35);
  svg.innerHTML = `<line x1="40" y1="${H - 20}" x2="${W - 10}" y2="${H - 20}" stroke="#d0d7de"/>
    <text x="2" y="14" fill="#656d76" font-size="10">${max.toPrecision(3)} ${unit}</text>
    <text x="40" y="${H - 6}" fill="#656d76" font-size="10">${new Date(from).toLocaleTimeString()}</text>
    <text x="${W - 60}" y="${H - 6}" fill="#656d76" font-size="10">now</text>` +
    series.map((s, i) => s.points.length ? `<polyline class="series" data-key="${esc(s.name)}" fill="none" stroke="${colours[i]}" stroke-width="1.5"
      points="${s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ")}"/>` +
      (s.points.length < 30 ? s.points.map((p) => `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="2.5" fill="${colours[i]}"/>`).join("") : "") : "").join("");
  svg.nextElementSibling.innerHTML = series.map((s, i) => `<span style="color:${colours[i]}">■</span> ${esc(s.name)}`).join(" &nbsp; ");
}

function rates(samples, field) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i], dt = (Date.parse(b.at) - Date.parse(a.at)) / 1000;
    if (dt > 0 && b[field] >= a[field]) out.push([Date.parse(b.at), (b[field] - a[field]) / dt]);
  }
  return out;
}

async function refreshCharts() {
  try {
    const c = await getJSON("/api/charts"), s = c.samples, t = (p) => Date.parse(p.at);
    lines($("chart-freshness"), [
      {name: "commit → Kafka (slot lag)", points: s.map((p) => [t(p), p.lag_seconds])},
      {name: "commit → RAW p50", points: c.raw_freshness.map((p) => [Date.parse(p.minute), p.p50_seconds])},
      {name: "commit → RAW p95", points: c.raw_freshness.map((p) => [Date.parse(p.minute), p.p95_seconds])},
      {name: "commit → gold (each build)", points: c.gold.map((g) => [t(g), g.lag_seconds])}], "s");
    lines($("chart-throughput"), [
      {name: "captured", points: rates(s, "captured")}, {name: "landed", points: rates(s, "landed")},
      {name: "loaded into RAW", points: rates(s, "loaded")}, {name: "published to gold", points: rates(s, "published")}], "rows/s");
    lines($("chart-lag"), [{name: "slot lag, bytes", points: s.map((p) => [t(p), p.lag_bytes])}], "bytes");
    $("view-charts").dataset.samples = String(s.length);
    $("charts-err").textContent = "";
  } catch (e) { $("charts-err").textContent = e.message; }
}
refreshCharts();
setInterval(refreshCharts, 5000);
})();
