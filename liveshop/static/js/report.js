// The post-live review page (/report/{room}/{session}): one GET of the session's report
// (docs/protocol.md, "The post-live review"), rendered as a header, the KPI cards against
// the store's and the chain's medians, the per-minute chart, the funnel and four tables,
// printable on A4. Owns the page's token, the fetch and the DOM; the charts' drawing is
// svgcharts.js, strings are i18n-report.js. No socket: a review does not change.

import { TokenSource } from "./auth.js";
import { count, money, percent } from "./format.js";
import { getLang, has, onLangChange, t } from "./i18n.js";
import { hhmm } from "./orders.js";
import { drawFunnel, drawMinutes, elapsedLabel } from "./svgcharts.js";
import { $, bindLangToggle, el, setText } from "./ui.js";

// A chart's box on paper: A4 less 12 mm margins is 186 mm (703 CSS px), less the card's
// padding. Charts drawn for print before the browser lays the page out for paper
// (beforeprint) use this width; once it has (the print media query), the box's own.
const PRINT_WIDTH = 670;
const ROLES = new Set(["broadcaster", "staff", "hq"]);

const parts = location.pathname.split("/").filter(Boolean);
const room = decodeURIComponent(parts[1] ?? "");
const sessionId = decodeURIComponent(parts[2] ?? "");
// Any role that may read the review works from a link; without one, a demo server is asked
// for `?role=` (the broadcaster's by default: the person who just went off air).
const asked = new URLSearchParams(location.search).get("role");
const tokens = new TokenSource({ role: ROLES.has(asked) ? asked : "broadcaster", room });
const printMedia = matchMedia("print");

let report = null;
const names = new Map(); // sku → product name (the room's, then the report's top products)
let storeName = null;
let roomStatus = 0; // what GET /api/rooms/{room} answered (404: no such store at all)
let failure = null; // {status, code, message} of the last failed load
let printing = false; // between beforeprint and afterprint

class LoadError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- data --------------------------------------------------------------------------

async function fetchReport(retried = false) {
  const got = await tokens.get().catch(() => {
    throw new LoadError(0, "offline", "");
  });
  if (!got.token) {
    throw new LoadError(401, got.from === "expired" ? "token_expired" : "unauthorized", "");
  }
  const url = `/api/rooms/${encodeURIComponent(room)}/sessions/${encodeURIComponent(sessionId)}/report`;
  let res;
  try {
    res = await fetch(url, { cache: "no-store", headers: { Authorization: `Bearer ${got.token}` } });
  } catch {
    throw new LoadError(0, "offline", "");
  }
  const body = await res.json().catch(() => null);
  if (res.ok && body?.report) return body.report;
  if (res.status === 401 && !retried && tokens.from === "demo") {
    tokens.forget(); // a demo token that ran out: fetch a fresh one, once
    return fetchReport(true);
  }
  const { code = "unavailable", message = "" } = body?.error ?? {};
  throw new LoadError(res.status, code, message);
}

/** The store's name and its products' names: public, and a nicety (skus otherwise). */
async function fetchRoom() {
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}`, { cache: "no-store" });
    roomStatus = res.status;
    if (!res.ok) return;
    const body = await res.json();
    storeName = body.name ?? null;
    for (const p of body.products ?? []) names.set(p.sku, p.name ?? p.sku);
  } catch {
    // names stay skus
  }
}

async function load() {
  document.body.dataset.state = "loading";
  $("#fatal").hidden = true;
  $("#loading").hidden = false;
  const [got] = await Promise.allSettled([fetchReport(), names.size ? null : fetchRoom()]);
  if (got.status === "fulfilled") {
    report = got.value;
    failure = null;
    for (const p of report.products) if (!names.has(p.sku)) names.set(p.sku, p.name);
  } else {
    report = null;
    const err = got.reason;
    failure = err instanceof LoadError ? err : new LoadError(0, "offline", String(err));
    // A store that does not exist gets no demo token either: say what is wrong, not "sign in".
    if (roomStatus === 404) failure = new LoadError(404, "no_room", "");
  }
  $("#loading").hidden = true;
  render();
}

// ---- formatting --------------------------------------------------------------------

function dateText(ts) {
  const d = new Date(ts);
  if (getLang() === "en") {
    return d.toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric" });
  }
  const week = "日一二三四五六"[d.getDay()];
  return `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日 周${week}`;
}

function durationText(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s >= 3600) return t("report.dur.h", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  if (s >= 60) return t("report.dur.m", { m: Math.floor(s / 60), s: s % 60 });
  return t("report.dur.s", { s });
}

/** A median may be fractional (the median of 1 and 2 is 1.5): one decimal, not rounded
 * to a whole number that no session had. */
function medianCount(n) {
  return Number.isInteger(n) ? count(n) : n.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

const KPIS = [
  { key: "viewers", show: count, median: medianCount },
  { key: "buyers", show: count, median: medianCount },
  { key: "conversion", show: percent, median: percent },
  { key: "orders", show: count, median: medianCount },
  { key: "units", show: count, median: medianCount },
  { key: "gmv", show: money, median: money },
  { key: "peak", show: count, median: medianCount },
];

/**
 * This session against a median: ▲/▼ and the relative change in %, except conversion,
 * which is itself a percentage and moves in percentage points (8% → 10% is "▲ 2.0 pts",
 * not "▲ 25%"). {dir: "up" | "down" | "same", text}.
 */
function delta(key, now, base) {
  if (key === "conversion") {
    const pts = (now - base) * 100;
    if (Math.abs(pts) < 0.05) return { dir: "same", text: t("report.cmp.same") };
    return { dir: pts > 0 ? "up" : "down", text: `${pts > 0 ? "▲" : "▼"} ${t("report.cmp.pp", { n: Math.abs(pts).toFixed(1) })}` };
  }
  if (base === 0) {
    return now === 0 ? { dir: "same", text: t("report.cmp.same") } : { dir: "up", text: `▲ ${t("report.cmp.from_zero")}` };
  }
  const change = ((now - base) / base) * 100;
  if (Math.abs(change) < 0.05) return { dir: "same", text: t("report.cmp.same") };
  return { dir: change > 0 ? "up" : "down", text: `${change > 0 ? "▲" : "▼"} ${Math.abs(change).toFixed(1)}%` };
}

// ---- rendering ---------------------------------------------------------------------

function render() {
  document.documentElement.lang = getLang();
  if (failure) {
    renderError();
    return;
  }
  if (!report) return;
  document.body.dataset.state = "ready";
  $("#report").hidden = false;
  renderHeader();
  renderKpis();
  renderLegend();
  renderHintList();
  renderTables();
  drawCharts();
}

function renderError() {
  document.body.dataset.state = "error";
  $("#report").hidden = true;
  const box = $("#fatal");
  const { status, code, message } = failure;
  box.dataset.status = String(status);
  box.dataset.code = code;
  const key = has(`report.err.${code}`) ? `report.err.${code}` : "report.err.other";
  setText($("#fatal-title"), t("report.err.title"));
  setText($("#fatal-text"), t(key, { status: status || "—", room }));
  const detail = $("#fatal-detail");
  detail.hidden = !message;
  setText(detail, message ? t("report.err.detail", { code, message }) : "");
  // Trying again helps when the network or the server failed, not when access did.
  $("#retry-btn").hidden = ![0, 500, 502, 503, 504].includes(status);
  box.hidden = false;
  setText($("#store-name"), t("page.report"));
  setText($("#page-sub"), `${room} · ${sessionId}`);
  document.title = t("page.report");
}

function renderHeader() {
  const r = report;
  const title = r.title || t("report.untitled");
  setText($("#store-name"), t("page.report"));
  setText($("#page-sub"), storeName ? t("report.store_room", { name: storeName, room: r.room }) : r.room);
  document.title = `${t("page.report")} · ${title}`;
  setText($("#session-title"), title);
  setText($("#session-date"), dateText(r.started_at));
  const end = r.ended_at === null ? t("report.not_ended") : hhmm(r.ended_at);
  setText($("#session-time"), `${hhmm(r.started_at)} – ${end}`);
  setText($("#session-duration"), r.ended_at === null ? "—" : durationText(r.ended_at - r.started_at));
  setText($("#session-id"), r.session_id);
  $("#not-ended").hidden = r.ended_at !== null;
}

function comparisonLine(kind, k, now, cmp) {
  const base = cmp[kind];
  const n = cmp[`${kind}_sessions`];
  const line = el("p", { class: "kpi-cmp", dataset: { cmp: kind } });
  if (base === null) {
    line.dataset.dir = "none";
    line.append(el("span", { class: "cmp-none", text: t(kind === "previous" ? "report.cmp.no_previous" : "report.cmp.no_chain") }));
    return line;
  }
  const d = delta(k.key, now, base[k.key]);
  line.dataset.dir = d.dir;
  line.append(
    el("span", { class: "cmp-base", text: t(`report.cmp.${kind}`, { n, value: k.median(base[k.key]) }) }),
    el("span", { class: "delta", dataset: { dir: d.dir }, text: d.text }),
  );
  return line;
}

function renderKpis() {
  const cmp = report.comparison;
  const cards = KPIS.map((k) => {
    const now = cmp.this[k.key];
    return el(
      "li",
      { class: "kpi", id: `kpi-${k.key}`, dataset: { value: String(now) } },
      el("span", { class: "kpi-label", text: t(`report.kpi.${k.key}`) }),
      el("span", { class: "kpi-value num", text: k.show(now) }),
      comparisonLine("previous", k, now, cmp),
      comparisonLine("chain", k, now, cmp),
    );
  });
  $("#kpi-list").replaceChildren(...cards);
}

function renderLegend() {
  const keys = [
    el("li", { class: "key viewers" }, el("span", { class: "swatch", "aria-hidden": "true" }), t("report.chart.viewers")),
    el("li", { class: "key orders" }, el("span", { class: "swatch", "aria-hidden": "true" }), t("report.chart.orders")),
  ];
  if (report.hints.length) {
    keys.push(el("li", { class: "key hint" }, el("span", { class: "swatch", "aria-hidden": "true", text: "1" }), t("report.chart.hint")));
  }
  $("#chart-legend").replaceChildren(...keys);
}

function hintText(h) {
  return getLang() === "en" ? h.text_en || h.text : h.text || h.text_en;
}

function hintElapsed(h) {
  return elapsedLabel(h.minute); // the API's minute of the session (clamped into it)
}

/** The hints under the chart, numbered like its badges, so the print needs no tooltip. */
function renderHintList() {
  const list = $("#hint-legend");
  list.hidden = report.hints.length === 0;
  list.toggleAttribute("data-many", report.hints.length > 4); // then two columns, when wide
  list.replaceChildren(
    ...report.hints.map((h, i) =>
      el(
        "li",
        { dataset: { n: String(i + 1) } },
        el("span", { class: "hint-no", text: String(i + 1) }),
        el("span", { class: "hint-when num", text: `${hintElapsed(h)} · ${hhmm(h.at)}` }),
        el("span", { class: "hint-text", text: hintText(h) }),
      ),
    ),
  );
}

function chartWidth(holder) {
  if (printing && !printMedia.matches) return PRINT_WIDTH;
  return Math.max(240, Math.round(holder.clientWidth));
}

let drawnAt = null; // "chart width/funnel width/lang" last drawn: a resize redraws only on a change

function drawCharts(force = true) {
  if (!report) return;
  const chartBox = $("#minute-chart").parentElement;
  const funnelBox = $("#funnel-chart").parentElement;
  const cw = chartWidth(chartBox);
  const fw = chartWidth(funnelBox);
  const key = `${cw}/${fw}/${getLang()}`;
  if (!force && key === drawnAt) return;
  drawnAt = key;
  const r = report;
  const minutes = r.minutes;
  drawMinutes($("#minute-chart"), {
    minutes,
    width: cw,
    height: cw < 500 ? 220 : 280,
    hints: r.hints.map((h, i) => ({
      pos: (h.at - r.started_at) / 60_000,
      label: i + 1,
      tip: `${i + 1}. ${hintElapsed(h)} ${hintText(h)}`,
    })),
    text: {
      aria: t("report.chart.aria", {
        n: minutes.length,
        viewers: Math.max(0, ...minutes.map((m) => m.viewers)),
        orders: Math.max(0, ...minutes.map((m) => m.orders)),
      }),
      minuteTip: (m) =>
        t("report.chart.tip", {
          elapsed: elapsedLabel(m.minute),
          time: hhmm(r.started_at + m.minute * 60_000),
          viewers: count(m.viewers),
          orders: count(m.orders),
          gmv: money(m.gmv),
        }),
    },
  });
  const f = r.funnel;
  const ratio = (a, b) => (b ? percent(a / b) : "—");
  const people = (n) => `${count(n)} ${t("report.funnel.unit.people")}`.trim();
  const units = (n) => `${count(n)} ${t("report.funnel.unit.units")}`.trim();
  drawFunnel($("#funnel-chart"), {
    width: fw,
    steps: [
      { key: "viewers", label: t("report.funnel.viewers"), value: f.viewers, shown: people(f.viewers) },
      {
        key: "buyers",
        label: t("report.funnel.buyers"),
        value: f.buyers,
        shown: people(f.buyers),
        rate: t("report.funnel.rate.buyers", { rate: ratio(f.buyers, f.viewers) }),
      },
      {
        key: "units",
        label: t("report.funnel.units"),
        value: f.units,
        shown: units(f.units),
        rate: t("report.funnel.rate.units", { n: f.buyers ? (f.units / f.buyers).toFixed(1) : "—" }),
      },
      {
        key: "picked_up",
        label: t("report.funnel.picked_up"),
        value: f.picked_up,
        shown: units(f.picked_up),
        rate: t("report.funnel.rate.picked_up", { rate: ratio(f.picked_up, f.units) }),
      },
    ],
  });
}

// ---- tables ------------------------------------------------------------------------

/**
 * A table of `rows` with `cols` [{key, num?, cell(row, i) → text | Node}]; each cell
 * carries its column's name in data-label, which a phone shows in front of the value
 * (the table becomes one card per row there).
 */
function table(name, cols, rows, rowData) {
  const head = el("tr", {}, ...cols.map((c) => el("th", { scope: "col", class: c.num ? "num" : null, text: t(`report.col.${c.key}`) })));
  const body = rows.map((row, i) =>
    el(
      "tr",
      { dataset: rowData(row, i) },
      ...cols.map((c) => {
        const v = c.cell(row, i);
        return el("td", { class: c.num ? "num" : null, dataset: { col: c.key, label: t(`report.col.${c.key}`) } }, v);
      }),
    ),
  );
  return el("table", { class: `table ${name}` }, el("thead", {}, head), el("tbody", {}, ...body));
}

function fillTable(section, name, cols, rows, rowData) {
  const holder = $(`#${section} .table-holder`);
  const empty = $(`#${section} .empty`);
  setText(empty, t(`report.empty.${section}`));
  empty.hidden = rows.length > 0;
  holder.replaceChildren(rows.length ? table(name, cols, rows, rowData) : "");
}

function productCell(sku) {
  const name = names.get(sku) ?? sku;
  return el("span", { class: "product" }, el("span", { class: "product-name", text: name }), name !== sku ? el("span", { class: "sku", text: sku }) : null);
}

function status(kind, value) {
  const key = `report.${kind}.status.${value}`;
  return el("span", { class: "status", dataset: { status: value }, text: has(key) ? t(key) : value });
}

function sellThrough(o) {
  const pct = Math.round(Math.min(1, o.sell_through) * 1000) / 10;
  return el(
    "span",
    { class: "through" },
    el("span", { class: "through-bar", "aria-hidden": "true" }, el("span", { style: `width:${pct}%` })),
    el("span", { class: "through-pct num", text: percent(o.sell_through) }),
  );
}

function arrow(a, b) {
  const dir = b > a ? "up" : b < a ? "down" : "same";
  return el(
    "span",
    { class: "pair num", dataset: { dir } },
    el("span", { text: count(a) }),
    el("span", { class: "pair-arrow", text: " → " }),
    el("span", { class: "pair-to", text: count(b) }),
  );
}

function renderTables() {
  const r = report;
  fillTable(
    "products",
    "products-table",
    [
      { key: "rank", num: true, cell: (_, i) => String(i + 1) },
      { key: "product", cell: (p) => productCell(p.sku) },
      { key: "orders", num: true, cell: (p) => count(p.orders) },
      { key: "units", num: true, cell: (p) => count(p.units) },
      { key: "gmv", num: true, cell: (p) => money(p.gmv) },
    ],
    r.products,
    (p) => ({ sku: p.sku }),
  );
  fillTable(
    "offers",
    "offers-table",
    [
      { key: "product", cell: (o) => productCell(o.sku) },
      { key: "time", cell: (o) => `${hhmm(o.starts_at)}–${hhmm(o.ends_at)}` },
      { key: "price", num: true, cell: (o) => money(o.price) },
      { key: "qty", num: true, cell: (o) => count(o.qty) },
      { key: "sold", num: true, cell: (o) => count(o.units) },
      { key: "buyers", num: true, cell: (o) => count(o.buyers) },
      { key: "sell_through", cell: sellThrough },
      { key: "status", cell: (o) => status("offer", o.status) },
    ],
    r.offers,
    (o) => ({ offerId: o.offer_id, status: o.status }),
  );
  fillTable(
    "groups",
    "groups-table",
    [
      { key: "product", cell: (g) => productCell(g.sku) },
      { key: "price", num: true, cell: (g) => money(g.price) },
      { key: "threshold", num: true, cell: (g) => t(`report.threshold.${g.metric}`, { n: count(g.threshold) }) },
      { key: "value", num: true, cell: (g) => `${count(g.value)} / ${count(g.threshold)}` },
      { key: "status", cell: (g) => status("group", g.status) },
      { key: "members", num: true, cell: (g) => count(g.members) },
      { key: "units", num: true, cell: (g) => count(g.units) },
    ],
    r.groups,
    (g) => ({ groupId: g.group_id, status: g.status }),
  );
  fillTable(
    "hints",
    "hints-table",
    [
      { key: "rank", num: true, cell: (_, i) => el("span", { class: "hint-no", text: String(i + 1) }) },
      { key: "minute", cell: (h) => `${hintElapsed(h)} · ${hhmm(h.at)}` },
      { key: "hint", cell: (h) => hintText(h) },
      { key: "orders_5", num: true, cell: (h) => arrow(h.orders_before, h.orders_after) },
      { key: "viewers_5", num: true, cell: (h) => arrow(h.viewers_at, h.viewers_after) },
    ],
    r.hints,
    (h) => ({ code: h.code }),
  );
}

// ---- start -------------------------------------------------------------------------

const relabel = bindLangToggle();
onLangChange(() => {
  relabel();
  render();
});
$("#print-btn").addEventListener("click", () => window.print());
$("#retry-btn").addEventListener("click", () => load());

// Charts follow their box: a window resize, a phone turned, or the print layout.
let pending = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(pending);
  pending = requestAnimationFrame(() => drawCharts(false));
}).observe($("#report"));
printMedia.addEventListener("change", () => drawCharts(false));
addEventListener("beforeprint", () => {
  printing = true;
  drawCharts(false);
});
addEventListener("afterprint", () => {
  printing = false;
  drawCharts(false);
});

load();
