// Orders after the tap (protocol 1.1), as data: the order book, where each order_id keeps
// only its highest `version`, and the labels and times both the viewer's 我的订单 panel and
// the store page show. Pure: no DOM, no socket, no fetch.

import { getLang, has, t } from "./i18n.js";

/** States in which the buyer may still cancel. */
export const CANCELLABLE = new Set(["awaiting_payment", "accepted", "paid"]);
/** States in which the pickup code (and QR) are what the buyer needs at the counter. */
export const SHOW_CODE = new Set(["accepted", "paid", "ready"]);

// ---- labels and times ------------------------------------------------------------------

export function stateLabel(state) {
  return has(`state.${state}`) ? t(`state.${state}`) : String(state);
}

const two = (n) => String(n).padStart(2, "0");

/** Epoch ms → "14:05", local time. */
export function hhmm(ts) {
  const d = new Date(ts);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** Epoch ms → "14:05" today, else "1月9日 14:05" / "Jan 9, 14:05". */
export function dayTime(ts) {
  const d = new Date(ts);
  if (d.toDateString() === new Date().toDateString()) return hhmm(ts);
  const date =
    getLang() === "en"
      ? d.toLocaleDateString("en-US", { month: "short", day: "numeric" })
      : `${d.getMonth() + 1}月${d.getDate()}日`;
  return t("time.day", { date, time: hhmm(ts) });
}

/** Remaining ms → "mm:ss" (never negative): the pay-by countdown. */
export function mmss(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}

export function pickupCode(order) {
  return order.fulfilment?.pickup_code ?? order.pickup_code ?? null;
}

export function methodOf(order) {
  return order.fulfilment?.method ?? "pickup";
}

export function orderTotal(order) {
  return typeof order.unit_price === "number" ? order.unit_price * order.qty : null;
}

export function newRequestId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return `${prefix}-${Date.now().toString(36)}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// ---- the book --------------------------------------------------------------------------

const versionOf = (o) => (typeof o?.version === "number" ? o.version : -1);

/** One entry per order_id. Messages may arrive late, twice or out of order (an order_ack
 * after the order's first `order`, a REST answer older than a push): the higher version
 * wins, an equal one only fills fields the entry lacks. Entries from an order_ack carry no
 * version, so anything from the server replaces them. */
export class OrderBook {
  constructor() {
    this.byId = new Map();
    this.seen = new Map(); // order_id → {n, at}: first sight, for "newest first" without created_at
    this.n = 0;
  }

  get size() {
    return this.byId.size;
  }

  get(id) {
    return this.byId.get(id) ?? null;
  }

  /** Returns {kind: "new"|"newer"|"same"|"older", prev, order}. */
  merge(raw, now = Date.now()) {
    if (!raw || typeof raw.order_id !== "string") return { kind: "older", prev: null, order: null };
    const order = { ...raw };
    delete order.type;
    delete order.seq;
    delete order.ts;
    const prev = this.byId.get(order.order_id) ?? null;
    if (!prev) {
      this.byId.set(order.order_id, order);
      this.seen.set(order.order_id, { n: ++this.n, at: order.created_at ?? order.updated_at ?? now });
      return { kind: "new", prev, order };
    }
    if (versionOf(order) > versionOf(prev)) {
      this.byId.set(order.order_id, order);
      return { kind: "newer", prev, order };
    }
    if (versionOf(order) === versionOf(prev)) {
      const filled = { ...order, ...prev };
      this.byId.set(order.order_id, filled);
      return { kind: "same", prev, order: filled };
    }
    return { kind: "older", prev, order: prev };
  }

  delete(id) {
    this.byId.delete(id);
    this.seen.delete(id);
  }

  /** Newest first: created_at when the server gives it, else when we first saw the order. */
  sorted() {
    const key = (o) => o.created_at ?? this.seen.get(o.order_id)?.at ?? 0;
    const n = (o) => this.seen.get(o.order_id)?.n ?? 0;
    return [...this.byId.values()].sort((a, b) => key(b) - key(a) || n(b) - n(a));
  }
}

/** What an accepted order_ack tells about its order, as an unversioned order object.
 * A joint room's ack adds `store` and `route`; the method and address are the buy's own. */
export function orderFromAck(ack, entry) {
  const asked = entry?.fulfilment;
  const fulfilment = { method: asked?.method === "delivery" ? "delivery" : "pickup" };
  if (asked?.method === "delivery" && asked.address) fulfilment.address = asked.address;
  const group = ack.group_id ?? entry?.group_id; // a 拼团 join: created pending_group
  if (ack.pickup_code && fulfilment.method === "pickup") fulfilment.pickup_code = ack.pickup_code;
  const order = {
    order_id: ack.order_id,
    state: ack.state ?? (group ? "pending_group" : "accepted"),
    version: null,
    sku: ack.sku ?? entry?.sku,
    qty: ack.qty ?? entry?.qty,
    unit_price: ack.unit_price ?? entry?.unit_price,
    fulfilment,
  };
  if (typeof ack.pay_by === "number") order.pay_by = ack.pay_by;
  if (group) order.group_id = group;
  if (ack.store) {
    order.store = ack.store;
    if (ack.route) order.route = ack.route;
  }
  return order;
}
