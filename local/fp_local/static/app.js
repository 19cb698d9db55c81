// The live page of `fraudpipe up`: figures, a chart and the newest alerts, pushed by the server
// over server-sent events (/api/events). No framework, no external script: the chart is drawn here.
"use strict";

const WINDOW_S = 600;          // the chart shows the last 10 minutes
const MAX_ALERTS = 50;
const state = { series: [], alerts: [], header: {}, checkpoint: {}, lastTick: 0 };

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function fmtRate(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v >= 1000) return (v / 1000).toFixed(1) + "k";
  if (v >= 10) return v.toFixed(0);
  return v.toFixed(1);
}
function fmtAxis(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
  if (v >= 10 || v === 0) return v.toFixed(0);
  return v >= 1 ? v.toFixed(1) : v.toFixed(2);
}
function fmtInt(v) { return v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"); }
function fmtMs(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
}
function fmtAgo(seconds) {
  if (seconds < 1) return "just now";
  if (seconds < 90) return `${seconds.toFixed(0)} s ago`;
  return `${(seconds / 60).toFixed(0)} min ago`;
}
function fmtNum(v) {
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 2 : 4).replace(/0+$/, "").replace(/\.$/, "");
}

// ---------------------------------------------------------------------------------- header, figures

function applyHeader(h) {
  state.header = h;
  $("pipeline").textContent = h.pipeline || "";
  $("model-tag").textContent = h.model_tag || "?";
  $("threshold").textContent = h.threshold == null ? "?" : Number(h.threshold).toFixed(4) +
    (h.threshold_source === "spec" ? " (spec)" : " (model)");
  $("scoring").textContent = h.scoring_mode || "";
  $("cp-interval").textContent = h.checkpoint_interval || "?";
  const links = $("links");
  links.replaceChildren();
  for (const [name, url] of Object.entries(h.links || {})) {
    links.append(el("span", {}, `${name}: `, el("a", { href: url, target: "_blank", rel: "noopener" }, url)));
  }
  document.title = `FraudPipeline ${h.pipeline || ""} · live`;
}

function applyFigures(f, checkpoint, now) {
  if (!f) return;
  $("f-tx").textContent = fmtRate(f.tx_per_s);
  $("f-received").textContent = f.received_per_s == null ? "\u00a0" : `${fmtRate(f.received_per_s)} / s received by the ingest API`;
  $("f-alerts").textContent = fmtRate(f.alerts_per_s);
  $("f-alerts-total").textContent = f.alerts == null ? "\u00a0" : `${fmtInt(f.alerts)} alerts of ${fmtInt(f.scored)} scored since the job started`;
  $("f-p50").textContent = fmtMs(f.latency_p50_ms);
  $("f-p99").textContent = fmtMs(f.latency_p99_ms);
  $("f-dead").textContent = fmtInt(f.dead_letters);
  $("f-refused").textContent = f.refused == null ? "\u00a0" : `${fmtInt(f.refused)} refused (repeated id, far future)`;
  state.checkpoint = checkpoint || state.checkpoint;
  const cp = state.checkpoint || {};
  if (cp.last_completed_at) {
    $("f-cp").textContent = fmtAgo(Math.max(0, now - cp.last_completed_at));
    $("f-cp-hint").textContent = `#${cp.completed} took ${cp.last_duration_ms} ms; alerts are committed on each`;
  }
}

function applyComponents(list) {
  const box = $("components");
  box.replaceChildren();
  for (const c of list || []) {
    const cls = c.state === "ok" || c.state === "done" || c.state === "running" ? "ok" : c.state === "starting" ? "wait" : "down";
    const label = `${c.name}: ${c.state}`;
    box.append(el("span", { class: `pill ${cls}`, "data-component": c.name, title: c.url || "" },
      c.url ? el("a", { href: c.url, target: "_blank", rel: "noopener" }, label) : label));
  }
}

function applyPrometheus(list) {
  const firing = (list || []).filter((a) => a.state === "firing" || a.state === "pending");
  $("prom-panel").hidden = firing.length === 0;
  $("prom-alerts").replaceChildren(...firing.map((a) => el("li", {}, `${a.name} (${a.severity}, ${a.state})`)));
}

// ---------------------------------------------------------------------------------------- alerts

function alertItem(a, fresh) {
  const t = a.transaction || {};
  const head = el("div", { class: "head" },
    el("span", { class: "score", title: `threshold ${a.threshold}` }, Number(a.score).toFixed(3)),
    el("span", { class: "tx" }, `tx ${t.transaction_id}`),
    el("span", {}, `card ${t.customer_id}`),
    el("span", {}, `terminal ${t.terminal_id}`),
    el("span", { class: "amount" }, `amount ${Number(t.amount).toFixed(2)}`),
    el("span", { class: "muted" }, t.timestamp || ""));
  const drivers = el("div", { class: "drivers" }, el("span", { class: "muted" }, "driven by"));
  for (const d of a.drivers || []) {
    drivers.append(el("span", { class: "chip", title: "contribution to the log-odds of fraud" },
      `${d.feature} = ${fmtNum(d.value)}`, el("i", {}, `+${d.contribution.toFixed(2)}`)));
  }
  if (!(a.drivers || []).length) drivers.append(el("span", { class: "muted" }, "(see the features)"));
  const table = el("table");
  for (const [k, v] of Object.entries(a.features || {})) table.append(el("tr", {}, el("td", {}, k), el("td", {}, fmtNum(v))));
  const src = a.source || {};
  const meta = el("div", { class: "muted" },
    `decided ${a.decided_at || "?"} by ${a.model_tag || "?"} · ${src.topic || ""} partition ${src.partition} offset ${src.offset}`);
  return el("li", { class: fresh ? "alert fresh" : "alert", "data-tx": String(t.transaction_id) },
    head, drivers, el("details", {}, el("summary", {}, "all 15 features"), table), meta);
}

function renderAlerts() {
  const list = $("alerts");
  list.replaceChildren(...state.alerts.map((a, i) => alertItem(a, a._fresh && i === 0)));
  $("no-alerts").hidden = state.alerts.length > 0;
  document.body.dataset.alerts = String(state.alerts.length);
}

function addAlert(a) {
  a._fresh = true;
  state.alerts.forEach((x) => { x._fresh = false; });
  state.alerts.unshift(a);
  state.alerts.length = Math.min(state.alerts.length, MAX_ALERTS);
  renderAlerts();
}

// ------------------------------------------------------------------------------------------ chart

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;  // five grid steps of 0.2, 0.4, 1 or 2 x 10^n
  return 10 * p;
}

function drawChart() {
  const canvas = $("chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pad = { l: 52, r: 52, t: 10, b: 24 };
  const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
  const now = state.lastTick || Date.now() / 1000;
  const t0 = now - WINDOW_S;
  const pts = state.series.filter((r) => r[0] >= t0);
  const maxTx = niceMax(Math.max(0, ...pts.map((r) => r[1] || 0)));
  const maxAl = niceMax(Math.max(0, ...pts.map((r) => r[2] || 0)));
  const x = (t) => pad.l + ((t - t0) / WINDOW_S) * pw;
  const y = (v, max) => pad.t + ph - (v / max) * ph;

  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  const steps = 5;
  for (let i = 0; i <= steps; i++) {
    const gy = pad.t + (ph * i) / steps;
    ctx.strokeStyle = "#eaecf0";
    ctx.beginPath(); ctx.moveTo(pad.l, gy); ctx.lineTo(pad.l + pw, gy); ctx.stroke();
    ctx.fillStyle = "#2f6fdf"; ctx.textAlign = "right";
    ctx.fillText(fmtAxis((maxTx * (steps - i)) / steps), pad.l - 6, gy + 4);
    ctx.fillStyle = "#d92d20"; ctx.textAlign = "left";
    ctx.fillText(fmtAxis((maxAl * (steps - i)) / steps), pad.l + pw + 6, gy + 4);
  }
  ctx.fillStyle = "#667085"; ctx.textAlign = "center";
  for (let m = 10; m >= 0; m -= 2) {
    const gx = x(now - m * 60);
    ctx.fillText(m === 0 ? "now" : `-${m} min`, gx, h - 6);
  }

  function line(idx, max, color) {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.lineJoin = "round";
    ctx.beginPath();
    let open = false, prevT = null;
    for (const r of pts) {
      const v = r[idx];
      const gap = prevT !== null && r[0] - prevT > 15;  // a stretch without figures: break the line
      if (v === null || v === undefined || gap) { open = false; }
      if (v === null || v === undefined) { prevT = r[0]; continue; }
      if (!open) { ctx.moveTo(x(r[0]), y(v, max)); open = true; } else { ctx.lineTo(x(r[0]), y(v, max)); }
      prevT = r[0];
    }
    ctx.stroke();
  }
  line(1, maxTx, "#2f6fdf");
  line(2, maxAl, "#d92d20");
  canvas.dataset.points = String(pts.length);
}

// ------------------------------------------------------------------------------------------- wire

function connect() {
  const source = new EventSource("/api/events");
  const conn = $("conn");
  source.addEventListener("open", () => { conn.textContent = "live"; conn.className = "pill ok"; });
  source.addEventListener("error", () => { conn.textContent = "reconnecting…"; conn.className = "pill wait"; });
  source.addEventListener("snapshot", (e) => {
    const s = JSON.parse(e.data);
    applyHeader(s);
    state.series = s.series || [];
    state.lastTick = s.now;
    state.alerts = (s.alerts || []).slice(0, MAX_ALERTS);
    renderAlerts();
    applyFigures(s.figures, s.checkpoint, s.now);
    applyComponents(s.components);
    applyPrometheus(s.prometheus_alerts);
    drawChart();
    document.body.dataset.ready = "1";
  });
  source.addEventListener("tick", (e) => {
    const t = JSON.parse(e.data);
    state.lastTick = t.now;
    state.series.push(t.point);
    while (state.series.length && state.series[0][0] < t.now - WINDOW_S - 5) state.series.shift();
    applyFigures(t.figures, t.checkpoint, t.now);
    applyComponents(t.components);
    applyPrometheus(t.prometheus_alerts);
    drawChart();
    document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
  });
  source.addEventListener("alert", (e) => addAlert(JSON.parse(e.data)));
}

window.addEventListener("resize", drawChart);
connect();
