// The viewer's 我的订单 panel (#my-orders) and the tab that opens it: every order of the
// buyer in this room, newest first, with pay (demo), cancel, the pickup code and QR, kept
// current from welcome.my_orders, `order` pushes and GET /api/me/orders. Owns #my-orders
// and #my-orders-tab; the viewer page feeds it messages and shows one of its orders in
// its own confirmation card. The order data and labels are orders.js's. In a joint room
// (跨店联播) a card also says which member store fulfils the order (joint.js's words).

import { money } from "./format.js";
import { getLang, has, t } from "./i18n.js";
import { routeLine } from "./joint.js";
import {
  CANCELLABLE,
  OrderBook,
  SHOW_CODE,
  dayTime,
  methodOf,
  mmss,
  newRequestId,
  orderFromAck,
  orderTotal,
  pickupCode,
  stateLabel,
} from "./orders.js";
import { $, el, errorText, setText, syncCards, toast } from "./ui.js";

const CANCEL_WAIT_MS = 10_000;
const PAY_WAIT_MS = 10_000;
const ROW_MSG_MS = 6_000;
const REFETCH_MIN_MS = 2_000;

export class MyOrders {
  /**
   * @param {object} o
   * @param {import("./socket.js").RoomSocket} o.socket  for `cancel`
   * @param {() => Promise<{token: string|null}>} o.getToken  the viewer's bearer token
   * @param {string} o.room
   * @param {(sku: string) => string} o.productName
   * @param {() => number} o.serverNow  server epoch ms, for the pay countdown
   * @param {() => void} o.onChange  the book or a button's busy state changed
   * @param {(store: string) => string} [o.storeName]  a joint room's member store by name
   */
  constructor({ socket, getToken, room, productName, serverNow, onChange, storeName }) {
    this.socket = socket;
    this.getToken = getToken;
    this.room = room;
    this.productName = productName;
    this.serverNow = serverNow;
    this.onChange = onChange ?? (() => {});
    this.storeName = storeName ?? ((id) => id);
    this.book = new OrderBook();
    this.confirmId = null; // the order the page shows in its confirmation card
    this.rest = false; // the server sent welcome.my_orders, so it also answers /api/me/orders
    this.seeded = false;
    this.payOff = false; // /api/demo/pay answered 404: demo payments are off
    this.paying = new Map(); // order_id → until (ms): a payment sent, its `order` not yet here
    this.cancels = new Map(); // request_id → {order_id, until}
    this.msgs = new Map(); // order_id → {text, until}: a refusal shown on the order
    this.lastFetch = 0;
    this.isOpen = false;
    $("#my-orders-tab").addEventListener("click", () => this.open(!this.isOpen));
    $("#my-orders-close").addEventListener("click", () => this.open(false));
    setInterval(() => this.tick(), 500);
  }

  // ---- from the socket and the server --------------------------------------------------

  /** Every welcome: merge its my_orders (resumed or not, orders are not in the replay); on a
   * server without them, show the orders this tab remembers from its own order_acks. */
  welcome(msg, remembered) {
    const mine = msg.state?.my_orders;
    if (Array.isArray(mine)) {
      this.rest = true;
      for (const o of mine) this.book.merge(o);
      this.fetchServer();
    } else if (!this.seeded) {
      for (const o of remembered) this.book.merge(orderFromAck(o, o), o.at);
    }
    this.seeded = true;
    this.changed();
  }

  order(msg) {
    const { kind, prev, order } = this.book.merge(msg, this.serverNow());
    if (kind === "older" || kind === "same") return;
    if (order.state !== "awaiting_payment") this.paying.delete(order.order_id);
    if (prev && prev.state !== order.state) this.announce(order);
    this.changed();
  }

  /** An accepted order_ack: the order goes in the book (unless its `order` came first). */
  ack(ack, entry) {
    this.book.merge(orderFromAck(ack, entry), this.serverNow());
    this.changed();
    return this.book.get(ack.order_id);
  }

  cancelAck(msg) {
    const pending = this.cancels.get(msg.request_id);
    this.cancels.delete(msg.request_id);
    const id = msg.order_id ?? pending?.order_id;
    if (msg.status === "cancelled") {
      toast(t("orders.cancel_ok"));
    } else {
      const text = t("orders.cancel_refused", { reason: errorText(msg.reason ?? "illegal_transition") });
      if (id) this.msgs.set(id, { text, until: Date.now() + ROW_MSG_MS });
      toast(text, "error");
    }
    this.changed();
  }

  /** An `error` about one of our cancels (ref = its request_id, or the type). */
  error(msg) {
    const byId = this.cancels.get(msg.ref);
    if (!byId && msg.ref !== "cancel") return false;
    const ids = byId ? [msg.ref] : [...this.cancels.keys()];
    for (const rid of ids) {
      const c = this.cancels.get(rid);
      this.cancels.delete(rid);
      if (c) this.msgs.set(c.order_id, { text: errorText(msg.code, msg.message), until: Date.now() + ROW_MSG_MS });
    }
    this.changed();
    return true;
  }

  /** GET /api/me/orders: what changed while the socket was away (order pushes are not replayed). */
  async fetchServer() {
    if (!this.rest || Date.now() - this.lastFetch < REFETCH_MIN_MS) return;
    this.lastFetch = Date.now();
    try {
      const { token } = await this.getToken();
      if (!token) return;
      const query = new URLSearchParams({ room_id: this.room });
      const res = await fetch(`/api/me/orders?${query}`, {
        cache: "no-store",
        headers: { Authorization: `Bearer ${token}` },
      });
      if (!res.ok) return;
      const body = await res.json();
      let any = false;
      for (const o of body.orders ?? []) {
        const { kind } = this.book.merge(o);
        any ||= kind === "new" || kind === "newer";
      }
      if (any) this.changed();
    } catch {
      // Offline or a server that lacks the route: the socket's pushes still keep us current.
    }
  }

  /** A change the buyer did not just tap themselves: say it, the phone may be in a pocket. */
  announce(order) {
    const why = `orders.now.${order.state}.${order.reason}`; // e.g. a group that did not fill
    const key = has(why) ? why : `orders.now.${order.state}`;
    if (!has(key)) return;
    toast(t(key, { code: pickupCode(order) ?? "" }), order.state === "delivery_failed" ? "error" : "info");
    if (order.state === "ready") navigator.vibrate?.([100, 60, 100]);
  }

  // ---- actions -------------------------------------------------------------------------

  async pay(id) {
    if (this.paying.has(id) || this.payOff) return;
    this.paying.set(id, Date.now() + PAY_WAIT_MS);
    this.changed();
    let res;
    let body = null;
    try {
      const { token } = await this.getToken();
      res = await fetch("/api/demo/pay", {
        method: "POST",
        cache: "no-store",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ order_id: id }),
      });
      body = await res.json().catch(() => null);
    } catch {
      this.paying.delete(id);
      toast(errorText("offline"), "error");
      this.changed();
      return;
    }
    if (res.ok) {
      // The new state comes as an `order`; until then the button says the payment is on its way.
      if (body?.order?.order_id === id) this.order(body.order);
      toast(t("orders.pay_sent"));
      this.changed();
      return;
    }
    this.paying.delete(id);
    if (res.status === 404) {
      this.payOff = true;
      toast(t("orders.pay_off"), "error");
    } else {
      toast(errorText(body?.error?.code ?? "unavailable", body?.error?.message), "error");
    }
    this.changed();
  }

  cancel(id) {
    for (const c of this.cancels.values()) if (c.order_id === id) return;
    const requestId = newRequestId("c");
    if (!this.socket.send({ type: "cancel", request_id: requestId, order_id: id })) {
      toast(errorText("not_ready"), "error");
      return;
    }
    this.cancels.set(requestId, { order_id: id, until: Date.now() + CANCEL_WAIT_MS });
    this.msgs.delete(id);
    this.changed();
  }

  isCancelling(id) {
    for (const c of this.cancels.values()) if (c.order_id === id) return true;
    return false;
  }

  /** The panel is part of the page, not a modal over it: opening scrolls to it, and the
   * products, deals and chat stay usable around it. */
  open(yes) {
    this.isOpen = yes;
    this.render();
    if (yes) $("#my-orders").scrollIntoView({ block: "start", behavior: "smooth" });
  }

  /** Open the panel at one order (from the confirmation card). */
  show(id) {
    this.isOpen = true;
    this.render();
    const node = $(`#my-orders [data-order-id="${CSS.escape(id)}"]`) ?? $("#my-orders");
    node.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  changed() {
    this.render();
    this.onChange();
  }

  /** Countdowns by the server's clock; busy states and refusal lines time out. */
  tick() {
    const now = Date.now();
    let stale = false;
    for (const map of [this.paying, this.cancels, this.msgs]) {
      for (const [key, v] of map) {
        if ((typeof v === "number" ? v : v.until) < now) {
          map.delete(key);
          stale = true;
        }
      }
    }
    if (stale) this.changed();
    const serverNow = this.serverNow();
    for (const node of document.querySelectorAll("[data-pay-by]")) {
      const left = Number(node.dataset.payBy) - serverNow;
      setText(node, left > 0 ? t("orders.pay_in", { time: mmss(left) }) : t("orders.pay_late"));
      node.dataset.late = String(left <= 0);
    }
    for (const btn of document.querySelectorAll("[data-pay-button]")) {
      const o = this.book.get(btn.dataset.payButton);
      if (o && typeof o.pay_by === "number" && o.pay_by <= serverNow) btn.disabled = true;
    }
  }

  // ---- rendering -----------------------------------------------------------------------

  render() {
    const tab = $("#my-orders-tab");
    const count = this.book.size;
    tab.hidden = count === 0 && !this.isOpen;
    tab.setAttribute("aria-expanded", String(this.isOpen));
    const badge = $("#my-orders-count");
    badge.dataset.count = String(count);
    setText(badge, String(count));
    const panel = $("#my-orders");
    panel.hidden = !this.isOpen;
    panel.dataset.open = String(this.isOpen);
    const orders = this.book.sorted();
    // The order in the confirmation card heads the panel in a list of its own, so
    // #my-order-list keeps meaning "the other orders" as it did before the panel.
    const make = (o) => this.card(o);
    const sig = (o) => this.signature(o);
    syncCards($("#my-order-latest"), orders.filter((o) => o.order_id === this.confirmId), make, sig);
    syncCards($("#my-order-list"), orders.filter((o) => o.order_id !== this.confirmId), make, sig);
    $("#my-orders-empty").hidden = count > 0;
    this.tick();
  }

  /** Everything a card shows depends on these; a card is rebuilt only when they change. */
  signature(o) {
    return JSON.stringify([
      o.version, o.state, getLang(), this.payOff, this.paying.has(o.order_id),
      this.isCancelling(o.order_id), this.msgs.get(o.order_id)?.text ?? "", this.productName(o.sku),
      o.fulfilment, o.refund, o.pay_by, o.delivery_status, o.verified_at, o.group_id, o.reason,
      o.store, o.route, o.store ? this.storeName(o.store) : null,
    ]);
  }

  card(o) {
    const id = o.order_id;
    const method = methodOf(o);
    const code = pickupCode(o);
    const total = orderTotal(o);
    const item = t("order.item", { name: this.productName(o.sku), qty: o.qty });
    const lines = [];
    const route = routeLine(o, this.storeName);
    if (route) lines.push(route);
    if (total !== null) lines.push(el("div", { class: "order-total num", text: t("order.total", { amount: money(total) }) }));
    if (o.state === "awaiting_payment" && typeof o.pay_by === "number") {
      lines.push(el("div", { class: "pay-countdown num", dataset: { payBy: String(o.pay_by) } }));
    }
    if (method === "pickup" && SHOW_CODE.has(o.state)) {
      lines.push(el("div", { class: "pickup-label", text: t("order.pickup") }));
      lines.push(el("div", { class: "pickup-code num", text: code ?? "—" }));
      if (o.fulfilment?.qr) {
        lines.push(el("img", {
          class: "pickup-qr",
          src: `/api/qr.svg?data=${encodeURIComponent(o.fulfilment.qr)}`,
          alt: t("orders.qr_alt"),
          width: "168",
          height: "168",
        }));
      }
    }
    const note = this.note(o, method);
    if (note) lines.push(el("div", { class: "order-note", text: note }));
    if (method === "delivery" && o.fulfilment?.address) {
      lines.push(el("div", { class: "order-address", text: t("orders.address", { address: o.fulfilment.address }) }));
    }
    if (method === "delivery" && o.delivery_status) {
      lines.push(el("div", { class: "delivery-status", text: t("orders.delivery_status", { status: o.delivery_status }) }));
    }
    if (o.refund) {
      lines.push(el("div", {
        class: "refund",
        dataset: { refund: o.refund.state },
        text: t("orders.refund", { amount: money(o.refund.amount), state: t(`refund.${o.refund.state}`) }),
      }));
    }
    const msg = this.msgs.get(id);
    return el(
      "li",
      { class: "order-card", dataset: { orderId: id, state: o.state, version: String(o.version ?? "") } },
      el("div", { class: "order-head" },
        el("span", { class: "order-item" },
          o.group_id ? el("span", { class: "order-tag", text: t("orders.group_tag") }) : null,
          item),
        el("span", { class: "order-state", dataset: { state: o.state }, text: stateLabel(o.state) })),
      ...lines,
      this.actions(o),
      msg ? el("div", { class: "row-msg", role: "status", text: msg.text }) : null,
    );
  }

  note(o, method) {
    switch (o.state) {
      case "accepted":
      case "paid":
        return t(method === "delivery" ? "orders.note.preparing_delivery" : "orders.note.preparing_pickup");
      case "ready": {
        const by = o.fulfilment?.pickup_by;
        return typeof by === "number" ? t("orders.pickup_by", { time: dayTime(by) }) : t("orders.note.ready");
      }
      case "picked_up":
        return typeof o.verified_at === "number"
          ? t("orders.picked_up_at", { time: dayTime(o.verified_at) })
          : t("state.picked_up");
      case "cancelled":
        return has(`orders.reason.${o.reason}`) ? t(`orders.reason.${o.reason}`) : t("orders.note.cancelled");
      default:
        return has(`orders.note.${o.state}`) ? t(`orders.note.${o.state}`) : null;
    }
  }

  actions(o) {
    const id = o.order_id;
    const buttons = [];
    if (o.state === "awaiting_payment" && !this.payOff) {
      const busy = this.paying.has(id);
      buttons.push(el("button", {
        type: "button",
        class: "btn pay",
        dataset: { action: "pay", payButton: id },
        disabled: busy,
        "aria-busy": busy ? "true" : null,
        text: t(busy ? "orders.paying" : "orders.pay"),
        onclick: () => this.pay(id),
      }));
    }
    // A joint room's order (fulfilled by a member store) is cancelled from the joint room too.
    if (CANCELLABLE.has(o.state)) {
      const busy = this.isCancelling(id);
      buttons.push(el("button", {
        type: "button",
        class: "btn ghost cancel",
        dataset: { action: "cancel" },
        disabled: busy,
        "aria-busy": busy ? "true" : null,
        text: t(busy ? "orders.cancelling" : "orders.cancel"),
        onclick: () => this.cancel(id),
      }));
    }
    return buttons.length ? el("div", { class: "order-actions" }, ...buttons) : null;
  }
}

