// The store page (/store/{room_id}) for staff at the counter: the pickup counter on top
// (counter.js), then the order board, refreshed every 2 s, whose cards move orders on (备好,
// 出发配送, 已送达 …), and the refunds. Owns the page shell, the staff token and REST calls,
// the board and the refunds list; no socket. Order labels and times come from orders.js,
// the 拼团 section (group-buy orders by group and outcome) from storegroups.js.

import { TokenSource } from "./auth.js";
import { Counter } from "./counter.js";
import { money, nickname } from "./format.js";
import { onLangChange, t } from "./i18n.js";
import { dayTime, hhmm, methodOf, orderTotal, pickupCode, stateLabel } from "./orders.js";
import { groupChip, renderGroupOrders } from "./storegroups.js";
import {
  $,
  bindLangToggle,
  connectionBanner,
  el,
  errorText,
  roomFromPath,
  setText,
  syncCards,
  toast,
} from "./ui.js";

const REFRESH_MS = 2_000;
const BOARD_LIMIT = 200;
const CAPPED_SHOW = 30; // finished and other orders: the latest few, the rest counted

// The board's groups, in the brief's order. `states: null` takes every state not listed.
const GROUPS = [
  { id: "prep", states: ["accepted", "paid"], oldestFirst: true },
  { id: "unpaid", states: ["awaiting_payment"], oldestFirst: true },
  { id: "ready", states: ["ready"], oldestFirst: true },
  { id: "delivering", states: ["out_for_delivery"], oldestFirst: true },
  { id: "done", states: ["picked_up", "delivered"], capped: true },
  { id: "other", states: null, capped: true },
];
const LISTED = new Set(GROUPS.flatMap((g) => g.states ?? []));

const room = roomFromPath();
const r = encodeURIComponent(room);
const tokens = new TokenSource({ role: "staff", room });
const banner = connectionBanner();
let token = null;
let stopped = false;
let timer = null;
let refreshing = null; // the refresh in flight, so taps and the timer do not overlap
let again = false;
let orders = new Map(); // order_id → order, from the last board refresh (and action answers)
let refunds = null; // null: the refunds call failed, section hidden
let names = new Map(); // sku → product name, from GET /api/rooms/{room}
let storeName = null;
let updatedAt = 0;
const busy = new Set(); // order ids with an action in flight

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function api(path, { method = "GET", body, retried = false } = {}) {
  if (!token && !(await getToken())) throw new ApiError(401, "unauthorized", "");
  const used = token;
  const res = await fetch(path, {
    method,
    cache: "no-store",
    headers: { Authorization: `Bearer ${used}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (res.ok) return data;
  const { code = "unavailable", message = "", ...details } = data?.error ?? {};
  if (res.status === 401 && !retried && tokens.from !== "link" && (await renewToken(used))) {
    return api(path, { method, body, retried: true }); // a demo token ran out: once more
  }
  throw new ApiError(res.status, code, message, details);
}

let renewing = null;
/** One new demo token for every call that was refused with the old one, not one each. */
function renewToken(refused) {
  if (token !== refused) return Promise.resolve(Boolean(token));
  if (!renewing) {
    tokens.forget();
    token = null;
    renewing = getToken().finally(() => {
      renewing = null;
    });
  }
  return renewing;
}

async function getToken() {
  try {
    const got = await tokens.get();
    if (!got.token) {
      fatal(t(got.from === "expired" ? "err.token_expired" : "store.token_required"));
      return false;
    }
    token = got.token;
    return true;
  } catch (err) {
    if (err.status >= 400 && err.status < 500) fatal(t("store.token_required"));
    return false; // network: the next tick tries again
  }
}

function fatal(text) {
  stopped = true;
  clearTimeout(timer);
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
  document.body.dataset.fatal = "true";
}

// ---- the board -----------------------------------------------------------------------

/** Keep the newer of two copies of an order (an action's answer may beat the next poll). */
function keep(order) {
  const prev = orders.get(order.order_id);
  if (!prev || (order.version ?? -1) >= (prev.version ?? -1)) orders.set(order.order_id, order);
}

function actionsFor(o) {
  switch (o.state) {
    case "accepted":
    case "paid":
      return [methodOf(o) === "delivery" ? "out_for_delivery" : "ready", "cancelled"];
    case "awaiting_payment":
      return ["cancelled"];
    case "out_for_delivery":
      return ["delivered", "delivery_failed"];
    default:
      return [];
  }
}

function itemText(o) {
  const name = names.get(o.sku) ?? o.sku;
  const total = orderTotal(o);
  return [t("order.item", { name, qty: o.qty }), total !== null ? money(total) : null]
    .filter(Boolean)
    .join(" · ");
}

async function act(o, to) {
  const id = o.order_id;
  if (busy.has(id)) return;
  if (to === "cancelled" && !(await confirmed(t("act.confirm_cancel", { item: itemText(o) })))) return;
  busy.add(id);
  renderBoard();
  try {
    const data = await api(`/api/orders/${encodeURIComponent(id)}/state`, { method: "POST", body: { state: to } });
    if (data?.order) keep(data.order);
    toast(t("act.done", { state: stateLabel(to) }));
  } catch (err) {
    if (err.code === "illegal_transition") {
      toast(t("act.illegal", { message: err.message || errorText(err.code) }), "error");
    } else {
      toast(errorText(err.code ?? "offline", err.message), "error");
    }
  } finally {
    busy.delete(id);
    renderBoard();
    tick();
  }
}

/** The in-page confirmation, as on the admin page (a stray tap on 取消 costs a customer). */
function confirmed(text) {
  const dialog = $("#confirm");
  setText($("#confirm-text"), text);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// ---- data ----------------------------------------------------------------------------

async function refresh() {
  const [board, refundList] = await Promise.all([
    api(`/api/rooms/${r}/orders?limit=${BOARD_LIMIT}`),
    api(`/api/rooms/${r}/refunds`).catch(() => null), // failed or absent: the section hides
    names.size ? null : loadRoom(),
  ]);
  const next = new Map();
  for (const o of board?.orders ?? []) next.set(o.order_id, o);
  // A poll that left before an action's answer may carry the older copy: keep the newer.
  for (const [id, o] of next) {
    const mine = orders.get(id);
    if (mine && (mine.version ?? -1) > (o.version ?? -1)) next.set(id, mine);
  }
  orders = next;
  refunds = refundList ? (refundList.refunds ?? []) : null;
  updatedAt = Date.now();
  renderAll();
}

async function loadRoom() {
  try {
    const res = await fetch(`/api/rooms/${r}`, { cache: "no-store" });
    if (!res.ok) return;
    const body = await res.json();
    storeName = body.name ?? null;
    names = new Map((body.products ?? []).map((p) => [p.sku, p.name ?? p.sku]));
    renderHeader();
  } catch {
    // Names are a nicety; skus are shown until the next try.
  }
}

async function tick() {
  clearTimeout(timer);
  if (stopped) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = refresh()
    .then(() => banner.update("open"))
    .catch((err) => {
      if (err instanceof ApiError && err.status === 401 && tokens.from === "link") {
        fatal(t("err.token_expired"));
      } else if (err instanceof ApiError && err.status === 403) {
        fatal(t("store.role_wrong"));
      } else if (!stopped) {
        banner.update("reconnecting");
      }
    });
  await refreshing;
  refreshing = null;
  if (stopped) return;
  if (again) {
    again = false;
    tick();
    return;
  }
  timer = setTimeout(tick, REFRESH_MS);
}

// ---- rendering -----------------------------------------------------------------------

function renderAll() {
  renderHeader();
  counter.render();
  renderBoard();
  renderGroupOrders($("#group-orders"), orders, names);
  renderRefunds();
}

function renderHeader() {
  setText($("#store-name"), storeName ? t("store.title", { name: storeName }) : t("page.store"));
  document.title = storeName ? t("store.title", { name: storeName }) : t("page.store");
  setText($("#board-sub"), updatedAt ? t("board.updated", { n: orders.size, time: hhmm(updatedAt) }) : room);
}

function groupOf(o) {
  for (const g of GROUPS) if (g.states?.includes(o.state)) return g.id;
  return "other";
}

function sortKey(o) {
  return o.created_at ?? o.updated_at ?? 0;
}

function renderBoard() {
  const byGroup = new Map(GROUPS.map((g) => [g.id, []]));
  for (const o of orders.values()) byGroup.get(LISTED.has(o.state) ? groupOf(o) : "other").push(o);
  const nav = [];
  const sections = [];
  for (const g of GROUPS) {
    const list = byGroup.get(g.id);
    // Work waiting is served first come, first served; finished orders show the latest.
    list.sort((a, b) => (g.oldestFirst ? sortKey(a) - sortKey(b) : (b.updated_at ?? 0) - (a.updated_at ?? 0)));
    const shown = g.capped ? list.slice(0, CAPPED_SHOW) : list;
    nav.push(el(
      "a",
      { class: "board-chip", href: `#group-${g.id}`, dataset: { group: g.id, count: String(list.length) } },
      el("span", { text: t(`board.${g.id}`) }),
      el("span", { class: "chip-count num", text: String(list.length) }),
    ));
    sections.push({ g, list, shown });
  }
  nav.push(groupChip([...orders.values()]));
  $("#board-nav").replaceChildren(...nav);
  const holder = $("#board-groups");
  for (const { g, list, shown } of sections) {
    let section = holder.querySelector(`:scope > [data-group="${g.id}"]`);
    if (!section) {
      section = el(
        "section",
        { class: "group", id: `group-${g.id}`, dataset: { group: g.id } },
        el("h3", {}, el("span", { class: "group-name" }), el("span", { class: "group-count num" })),
        el("ul", { class: "cards" }),
        el("p", { class: "muted group-empty" }),
        el("p", { class: "muted group-more" }),
      );
      holder.append(section);
    }
    section.dataset.count = String(list.length);
    setText(section.querySelector(".group-name"), t(`board.${g.id}`));
    setText(section.querySelector(".group-count"), String(list.length));
    const empty = section.querySelector(".group-empty");
    empty.hidden = list.length > 0;
    setText(empty, t("board.empty"));
    const more = section.querySelector(".group-more");
    more.hidden = shown.length === list.length;
    setText(more, t("board.more", { n: list.length - shown.length }));
    syncCards(section.querySelector(".cards"), shown, card, cardSignature);
  }
  renderHeader();
}

function cardSignature(o) {
  return JSON.stringify([o.version, o.state, busy.has(o.order_id), names.get(o.sku), document.documentElement.lang,
    o.fulfilment, o.refund, o.pay_by, o.updated_at]);
}

function card(o) {
  const method = methodOf(o);
  const code = pickupCode(o);
  const meta = [];
  if (o.user_id) meta.push(t("card.user", { user: nickname(o.user_id) }));
  if (o.state === "awaiting_payment" && typeof o.pay_by === "number") {
    meta.push(t("card.pay_by", { time: dayTime(o.pay_by) }));
  }
  if (o.state === "ready" && typeof o.fulfilment?.pickup_by === "number") {
    meta.push(t("card.pickup_by", { time: dayTime(o.fulfilment.pickup_by) }));
  }
  if (typeof o.updated_at === "number") meta.push(t("card.updated", { time: hhmm(o.updated_at) }));
  const isBusy = busy.has(o.order_id);
  const buttons = actionsFor(o).map((to) =>
    el("button", {
      type: "button",
      class: `btn ${to === "cancelled" || to === "delivery_failed" ? "ghost" : ""} act`,
      dataset: { action: to },
      disabled: isBusy,
      "aria-busy": isBusy ? "true" : null,
      text: t(`act.${to}`),
      onclick: () => act(o, to),
    }),
  );
  return el(
    "li",
    { class: "order-card", dataset: { orderId: o.order_id, state: o.state, version: String(o.version ?? "") } },
    el(
      "div",
      { class: "card-top" },
      method === "delivery"
        ? el("span", { class: "card-method", text: t("card.delivery", { address: o.fulfilment?.address ?? "—" }) })
        : el("span", { class: "card-code num", text: code ?? "—" }),
      el("span", { class: "order-state", dataset: { state: o.state }, text: stateLabel(o.state) }),
    ),
    el("div", { class: "card-item", text: itemText(o) }),
    meta.length ? el("div", { class: "card-meta", text: meta.join(" · ") }) : null,
    o.refund
      ? el("div", {
          class: "card-refund",
          dataset: { refund: o.refund.state },
          text: t("orders.refund", { amount: money(o.refund.amount), state: t(`refund.${o.refund.state}`) }),
        })
      : null,
    buttons.length ? el("div", { class: "card-actions" }, ...buttons) : null,
  );
}

function renderRefunds() {
  const section = $("#refunds");
  section.hidden = refunds === null;
  if (refunds === null) return;
  const rows = [...refunds]
    .sort((a, b) => (b.updated_at ?? 0) - (a.updated_at ?? 0))
    .map((f) =>
      el(
        "li",
        { class: "refund-row", dataset: { refundOrder: f.order_id, state: f.state } },
        el(
          "div",
          { class: "refund-top" },
          el("span", { class: "refund-amount num", text: money(f.amount) }),
          el("span", { class: "refund-state", dataset: { state: f.state }, text: t(`refund.${f.state}`) }),
        ),
        el("div", {
          class: "refund-meta",
          text: [
            f.reason ? t("refunds.reason", { reason: stateLabel(f.reason) }) : null,
            typeof f.attempts === "number" && f.attempts > 1 ? t("refunds.attempts", { n: f.attempts }) : null,
            typeof f.updated_at === "number" ? dayTime(f.updated_at) : null,
          ].filter(Boolean).join(" · "),
        }),
        el("div", { class: "refund-order mono", text: f.order_id }),
      ),
    );
  $("#refund-list").replaceChildren(...rows);
  $("#refunds-empty").hidden = rows.length > 0;
}

// ---- start ---------------------------------------------------------------------------

const counter = new Counter({
  room,
  api,
  describe: itemText,
  onAnswer: (order) => {
    if (order) keep(order);
    tick();
  },
});
const relabel = bindLangToggle();
onLangChange(() => {
  relabel();
  renderAll();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") tick();
});
renderAll();
counter.focus();
await getToken(); // on a network failure the first tick asks again
tick();
