// The dashboard: /dashboard/{room} for a store (its broadcaster, staff or HQ), /dashboard for
// HQ (the chain and every store side by side). Figures, best sellers, customers with their
// tags (tap one for the rule that set it), the next live's suggestions with their reasons
// and forecast range. Owns the dashboard's DOM; reads the insights REST (docs/insights.md).
// No socket: the figures are of ended sessions and change only when one ends.

import { TokenSource } from "./auth.js";
import { count, money, nickname, percent } from "./format.js";
import { getLang, onLangChange } from "./i18n.js";
import { applyInsights, pick, t } from "./i18n-insights.js";
import { $, bindLangToggle, el, roomFromPath, setText } from "./ui.js";

const DAY_MS = 86_400_000;
const PAGE = 20;
const RANGES = ["all", "30", "7"];

const room = roomFromPath(); // "" on /dashboard: the chain
const mode = room ? "room" : "chain";
const tokens = new TokenSource(
  mode === "room" ? { role: "broadcaster", room } : { role: "hq", room: "*" },
);
let token = null;
let range = initialRange();
let offset = 0;
let data = { board: null, customers: null, suggestions: null };
const openRules = new Set(); // "user:code" tags and "sku" forecasts whose rule is shown
let loading = 0; // the latest load's number: an older answer arriving late is dropped

class HttpError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

function initialRange() {
  const days = new URLSearchParams(location.search).get("days");
  return RANGES.includes(days) ? days : "all";
}

function windowQuery() {
  if (range === "all") return "";
  return `since=${Date.now() - Number(range) * DAY_MS}`;
}

async function api(path) {
  const res = await fetch(path, {
    cache: "no-store",
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    throw new HttpError(res.status, body?.error?.code ?? "unavailable", body?.error?.message);
  }
  return body;
}

function fatal(text) {
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
  document.body.dataset.state = "error";
}

// ---- loading ---------------------------------------------------------------------------

async function load({ retried = false } = {}) {
  const mine = ++loading;
  document.body.dataset.state = "loading";
  try {
    const got = await tokens.get();
    token = got.token;
    if (!token) {
      fatal(t(mode === "room" ? "dash.token_required" : "dash.token_required.chain"));
      return;
    }
    const q = windowQuery();
    const base = `/api/rooms/${encodeURIComponent(room)}`;
    const paged = `${q}${q ? "&" : ""}limit=${PAGE}&offset=${offset}`;
    const found =
      mode === "room"
        ? await Promise.all([
            api(`${base}/dashboard?${q}`),
            api(`${base}/customers?${paged}`),
            api(`${base}/suggestions`),
          ])
        : [await api(`/api/dashboard?${q}`), null, null];
    if (mine !== loading) return;
    data = { board: found[0], customers: found[1], suggestions: found[2] };
    render();
    document.body.dataset.state = "ready";
  } catch (err) {
    if (mine !== loading) return;
    if (err.status === 401 && !retried && tokens.from !== "link") {
      tokens.forget(); // a demo token the server no longer takes: fetch a fresh one
      await load({ retried: true });
      return;
    }
    if (err.status === 401) {
      fatal(t(tokens.from === "link" ? "err.token_expired" : "dash.token_required"));
    }
    else if (err.status === 403) fatal(t("dash.forbidden"));
    else fatal(t("dash.failed", { message: err.message || String(err) }));
  }
}

// ---- rendering -------------------------------------------------------------------------

function clock(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** Money for a tile a third of a phone wide: cents below ¥100, whole yuan below ¥10,000,
 * then ¥12.3万 (zh) or ¥123.4k (en); the exact amount is the tile's title. */
function tileMoney(minor) {
  if (Math.abs(minor) < 10_000) return money(minor);
  const yuan = minor / 100;
  if (Math.abs(yuan) < 10_000) return `¥${Math.round(yuan).toLocaleString("en-US")}`;
  return getLang() === "en" ? `¥${(yuan / 1000).toFixed(1)}k` : `¥${(yuan / 10_000).toFixed(1)}万`;
}

function ratioText(value) {
  return value === null || value === undefined ? "—" : percent(value);
}

function render() {
  const board = data.board;
  if (!board) return;
  document.body.dataset.mode = mode;
  setText($("#dash-title"), t(mode === "room" ? "dash.title.room" : "dash.title.chain"));
  document.title = t(mode === "room" ? "dash.title.room" : "dash.title.chain");
  const sub =
    mode === "room"
      ? t("dash.sub.room", { name: board.name || room, n: board.figures.sessions })
      : t("dash.sub.chain", { stores: board.stores.length, n: board.figures.sessions });
  setText($("#dash-sub"), sub);
  for (const btn of document.querySelectorAll(".range-btn")) {
    btn.setAttribute("aria-pressed", String(btn.dataset.range === range));
  }
  for (const node of document.querySelectorAll(".room-only")) node.hidden = mode !== "room";
  for (const node of document.querySelectorAll(".chain-only")) node.hidden = mode !== "chain";
  renderTiles(board.figures);
  const scope = t(mode === "room" ? "dash.scope.room" : "dash.scope.chain");
  setText($("#defs"), t("dash.defs", { scope }));
  renderBest(board.best_sellers);
  if (mode === "chain") renderStores(board.stores);
  if (mode === "room") {
    renderSuggestions(data.suggestions);
    renderCustomers(data.customers);
    renderSessions(board.sessions);
  }
}

function renderTiles(f) {
  const aov = f.buyers ? Math.round(f.gmv / f.buyers) : null; // 客单价: GMV per buyer
  const tiles = [
    ["sessions", count(f.sessions), f.sessions],
    ["viewers", count(f.viewers), f.viewers],
    ["buyers", count(f.buyers), f.buyers],
    ["conversion", ratioText(f.conversion), f.conversion ?? ""],
    ["orders", count(f.orders), f.orders],
    ["units", count(f.units), f.units],
    ["gmv", tileMoney(f.gmv), f.gmv, money(f.gmv)],
    ["aov", aov === null ? "—" : tileMoney(aov), aov ?? "", aov === null ? null : money(aov)],
    ["new", count(f.new_buyers), f.new_buyers],
    ["returning", count(f.returning_buyers), f.returning_buyers],
    ["repeat", count(f.repeat_buyers), f.repeat_buyers],
    ["repurchase", ratioText(f.repurchase_rate), f.repurchase_rate ?? ""],
  ];
  $("#tiles").replaceChildren(
    ...tiles.map(([key, text, raw, exact]) =>
      el(
        "div",
        { class: "tile", id: `stat-${key}`, title: exact ?? null, dataset: { value: String(raw) } },
        el("span", { class: "tile-label" }, t(`fig.${key}`)),
        el("span", { class: "tile-value num" }, text),
      ),
    ),
  );
}

function renderBest(rows) {
  $("#best-empty").hidden = rows.length > 0;
  const top = Math.max(1, ...rows.map((r) => r.units));
  $("#best-list").replaceChildren(
    ...rows.map((r, i) =>
      el(
        "li",
        { dataset: { sku: r.sku } },
        el("span", { class: "rank num" }, String(i + 1)),
        el(
          "div",
          { class: "best-main" },
          el(
            "div",
            { class: "best-name" },
            r.name || r.sku,
            r.name ? el("span", { class: "sku" }, r.sku) : null,
          ),
          el("div", {
            class: "bar",
            style: `--w:${Math.round((100 * r.units) / top)}%`,
            "aria-hidden": "true",
          }),
        ),
        el(
          "div",
          { class: "best-figs num" },
          el("strong", {}, t("dash.units", { n: count(r.units) })),
          el("span", { class: "muted" }, money(r.gmv)),
        ),
      ),
    ),
  );
}

function toggleRule(key, node, button) {
  const open = !openRules.has(key);
  if (open) openRules.add(key);
  else openRules.delete(key);
  node.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
}

function ruleToggle(key, label, ruleText, cls, dataset = {}) {
  const rule = el("p", { class: "rule", hidden: !openRules.has(key) }, ruleText);
  const button = el(
    "button",
    {
      type: "button",
      class: cls,
      title: ruleText,
      "aria-expanded": String(openRules.has(key)),
      dataset,
      onclick: () => toggleRule(key, rule, button),
    },
    label,
  );
  return [button, rule];
}

function renderCustomers(page) {
  const list = $("#cust-list");
  $("#cust-empty").hidden = page.total > 0;
  setText($("#cust-count"), t("dash.customers.count", { n: count(page.total) }));
  list.replaceChildren(
    ...page.customers.map((c) => {
      const chips = [];
      const rules = [];
      for (const tag of c.tags) {
        const [chip, rule] = ruleToggle(
          `${c.user_id}:${tag.code}`,
          pick(tag.label, tag.label_en),
          pick(tag.rule, tag.rule_en),
          "tag-chip",
          { code: tag.code },
        );
        chips.push(chip);
        rules.push(rule);
      }
      return el(
        "li",
        { class: "cust", dataset: { user: c.user_id } },
        el(
          "div",
          { class: "cust-head" },
          el("span", { class: "cust-name", title: c.user_id }, nickname(c.user_id)),
          el(
            "span",
            { class: `badge ${c.returning ? "returning" : "new"}` },
            t(c.returning ? "dash.customer.returning" : "dash.customer.new"),
          ),
          el("strong", { class: "cust-gmv num" }, money(c.gmv)),
        ),
        el(
          "div",
          { class: "muted small num" },
          t("dash.customer.line", { orders: c.orders, units: c.units, sessions: c.sessions }),
        ),
        chips.length ? el("div", { class: "chips" }, ...chips) : null,
        ...rules,
      );
    }),
  );
  const to = Math.min(page.total, page.offset + page.customers.length);
  setText($("#cust-page"), page.total ? t("dash.page", { from: page.offset + 1, to }) : "");
  $("#cust-prev").disabled = page.offset === 0;
  $("#cust-next").disabled = to >= page.total;
}

function renderSuggestions(found) {
  $("#suggest-empty").hidden = found.suggestions.length > 0;
  setText(
    $("#suggest-audience"),
    found.audience
      ? t("dash.suggest.audience", { n: count(found.audience) })
      : t("dash.suggest.no_audience"),
  );
  $("#suggest-list").replaceChildren(
    ...found.suggestions.map((s, i) => {
      const fc = s.forecast;
      const [why, rule] = ruleToggle(
        `fc:${s.sku}`,
        t("dash.forecast.why"),
        pick(fc.rule, fc.rule_en),
        "why-btn",
      );
      const shelf =
        s.listed === null
          ? null
          : el(
              "span",
              { class: `badge ${s.listed ? "listed" : "unlisted"}` },
              t(s.listed ? "dash.listed" : "dash.not_listed"),
            );
      const others = s.reasons.slice(1);
      return el(
        "li",
        { class: "suggest", dataset: { sku: s.sku, basis: fc.basis } },
        el("span", { class: "rank num" }, String(i + 1)),
        el(
          "div",
          { class: "suggest-main" },
          el(
            "div",
            { class: "suggest-name" },
            pick(s.name, s.name_en),
            shelf,
          ),
          el("p", { class: "reason" }, pick(s.reason, s.reason_en)),
          others.length
            ? el(
                "ul",
                { class: "more-reasons" },
                ...others.map((r) =>
                  el("li", { dataset: { code: r.code } }, pick(r.text, r.text_en)),
                ),
              )
            : null,
          rule,
        ),
        el(
          "div",
          { class: "forecast num" },
          el("strong", { class: "expected" }, t("dash.forecast", { expected: fc.expected })),
          el(
            "span",
            { class: "range-text" },
            t("dash.forecast.range", { low: fc.low, high: fc.high }),
          ),
          why,
        ),
      );
    }),
  );
}

function storeLink(id) {
  // The chain page's hq token goes along in the fragment (never to the server's logs).
  const path = `/dashboard/${encodeURIComponent(id)}${location.search}`;
  return `${path}#token=${encodeURIComponent(token)}`;
}

function renderStores(stores) {
  $("#stores-empty").hidden = stores.length > 0;
  const cell = (label, content, cls = "") => el("td", { "data-label": label, class: cls }, content);
  $("#stores-rows").replaceChildren(
    ...stores.map((s) =>
      el(
        "tr",
        { dataset: { room: s.room_id } },
        cell(
          t("col.store"),
          el(
            "a",
            { href: storeLink(s.room_id) },
            s.name || s.room_id,
            s.name ? el("span", { class: "sku" }, s.room_id) : null,
          ),
        ),
        cell(t("col.sessions"), count(s.sessions), "n num"),
        cell(t("col.viewers"), count(s.viewers), "n num"),
        cell(t("col.buyers"), count(s.buyers), "n num"),
        cell(t("col.conversion"), ratioText(s.conversion), "n num"),
        cell(t("col.orders"), count(s.orders), "n num"),
        cell(t("col.gmv"), money(s.gmv), "n num"),
        cell(t("col.repurchase"), ratioText(s.repurchase_rate), "n num"),
      ),
    ),
  );
}

function renderSessions(sessions) {
  $("#sess-empty").hidden = sessions.length > 0;
  const cell = (label, content, cls = "") => el("td", { "data-label": label, class: cls }, content);
  $("#sess-rows").replaceChildren(
    ...sessions.map((s) =>
      el(
        "tr",
        { dataset: { session: s.session_id } },
        cell(t("col.started"), clock(s.started_at), "num"),
        cell(t("col.session"), s.title || s.session_id, "opt"),
        cell(t("col.viewers"), count(s.viewers), "n num"),
        cell(t("col.buyers"), count(s.buyers), "n num"),
        cell(t("col.orders"), count(s.orders), "n num opt"),
        cell(t("col.gmv"), money(s.gmv), "n num"),
      ),
    ),
  );
}

// ---- wiring ----------------------------------------------------------------------------

const relabel = bindLangToggle();
applyInsights();
onLangChange(() => {
  relabel();
  applyInsights();
  render();
});
for (const btn of document.querySelectorAll(".range-btn")) {
  btn.addEventListener("click", () => {
    if (btn.dataset.range === range) return;
    range = btn.dataset.range;
    offset = 0;
    const params = new URLSearchParams(location.search);
    if (range === "all") params.delete("days");
    else params.set("days", range);
    const qs = params.toString();
    history.replaceState(null, "", location.pathname + (qs ? `?${qs}` : "") + location.hash);
    load();
  });
}
$("#cust-prev").addEventListener("click", () => {
  offset = Math.max(0, offset - PAGE);
  load();
});
$("#cust-next").addEventListener("click", () => {
  offset += PAGE;
  load();
});
load();
