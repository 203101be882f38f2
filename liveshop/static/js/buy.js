// Purchases from the viewer page: one request_id per tap, resent unchanged until answered.
// Owns the pending-buy table (kept in sessionStorage, so a reload mid-purchase asks again with
// the same id and gets the first answer) and the buyer's own confirmed orders.
// `buy` is idempotent per (user, request_id) on the server, so resending can never buy twice.
// A group join (`group_join`, 拼团) is the same kind of request and goes through the same table.
// In a joint room a buy names its `fulfilment` (pickup store or delivery); it is part of the
// pending entry, so a resend asks for exactly what the first send asked for.

const RESEND_AFTER_MS = 6_000;

function newRequestId() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http LAN hosts too.
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `r-${Date.now().toString(36)}-${hex}`;
}

function load(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function save(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // No storage: pending buys then live only as long as the page.
  }
}

export class Purchases {
  /**
   * @param {object} o
   * @param {import("./socket.js").RoomSocket} o.socket
   * @param {string} o.room
   * @param {() => void} o.onChange  pending set or order list changed
   */
  constructor({ socket, room, onChange }) {
    this.socket = socket;
    this.onChange = onChange;
    this.pendingKey = `liveshop:pending:${room}`;
    this.ordersKey = `liveshop:orders:${room}`;
    this.pending = new Map(Object.entries(load(this.pendingKey) ?? {}));
    this.orders = load(this.ordersKey) ?? [];
    this.user = null;
    setInterval(() => this.resendStale(), 2_000);
  }

  /** Orders and pending buys belong to one user; a different token starts clean. */
  setUser(user) {
    if (this.user === user) return;
    const owner = load(`${this.ordersKey}:user`);
    if (owner && owner !== user) {
      this.pending.clear();
      this.orders = [];
      this.persist();
    }
    save(`${this.ordersKey}:user`, user);
    this.user = user;
  }

  /** The button key of what a buy targets: the offer if any, else the product. */
  static target(sku, offerId) {
    return offerId ? `offer:${offerId}` : `sku:${sku}`;
  }

  /** The button key of a group's 参团 button. */
  static groupTarget(groupId) {
    return `group:${groupId}`;
  }

  isPending(target) {
    for (const p of this.pending.values()) if (p.target === target) return true;
    return false;
  }

  /** One tap. Returns false (and sends nothing) if that button already has a buy in flight.
   * `fulfilment`: a joint room's `{method: "pickup", store}` or `{method: "delivery", …}`. */
  buy({ sku, qty = 1, offerId = null, fulfilment = null }) {
    const target = Purchases.target(sku, offerId);
    if (this.isPending(target)) return false;
    const id = newRequestId();
    const entry = { sku, qty, offer_id: offerId, target, sentAt: 0 };
    if (fulfilment) entry.fulfilment = fulfilment;
    this.pending.set(id, entry);
    this.persist();
    this.send(id);
    this.onChange();
    return true;
  }

  /** One tap on 参团. `sku` and `price` are the group's, kept for the order until the
   * server's own `order` arrives. False if that group already has a join in flight. */
  join({ groupId, sku, price, qty = 1 }) {
    const target = Purchases.groupTarget(groupId);
    if (this.isPending(target)) return false;
    const id = newRequestId();
    this.pending.set(id, { sku, qty, group_id: groupId, unit_price: price, target, sentAt: 0 });
    this.persist();
    this.send(id);
    this.onChange();
    return true;
  }

  send(id) {
    const p = this.pending.get(id);
    if (!p) return;
    const msg = p.group_id
      ? { type: "group_join", request_id: id, group_id: p.group_id, qty: p.qty }
      : { type: "buy", request_id: id, sku: p.sku, qty: p.qty };
    if (p.offer_id) msg.offer_id = p.offer_id;
    if (p.fulfilment) msg.fulfilment = p.fulfilment;
    // Not connected: stays pending, and goes out after the next welcome.
    if (this.socket.send(msg)) p.sentAt = Date.now();
  }

  /** After every welcome: whatever was in flight when the line dropped goes again, same id. */
  resendAll() {
    for (const id of this.pending.keys()) this.send(id);
  }

  resendStale() {
    const now = Date.now();
    for (const [id, p] of this.pending) if (now - p.sentAt > RESEND_AFTER_MS) this.send(id);
  }

  /** Settle a pending buy from its order_ack. Returns {entry, ack} or null if not ours. */
  settle(ack) {
    const entry = this.pending.get(ack.request_id);
    if (!entry) return null; // an answer to a resend we already settled
    this.pending.delete(ack.request_id);
    if (ack.status === "accepted") {
      this.orders.unshift({
        order_id: ack.order_id,
        pickup_code: ack.pickup_code,
        sku: ack.sku ?? entry.sku,
        qty: ack.qty ?? entry.qty,
        unit_price: ack.unit_price ?? entry.unit_price,
        group_id: ack.group_id ?? entry.group_id,
        state: ack.state,
        pay_by: ack.pay_by,
        at: Date.now(),
      });
      if (ack.store) {
        // A joint room's order: the store and route from the ack; the method and address
        // from the buy (the coordinates are not worth keeping).
        const f = entry.fulfilment;
        Object.assign(this.orders[0], {
          store: ack.store,
          route: ack.route,
          fulfilment: f?.method === "delivery" ? { method: "delivery", address: f.address } : { method: "pickup" },
        });
      }
      this.orders = this.orders.slice(0, 50);
    }
    this.persist();
    this.onChange();
    return { entry, ack };
  }

  /** An `error` whose `ref` names a pending buy ends that buy (e.g. unauthorized). */
  fail(ref) {
    const entry = this.pending.get(ref);
    if (!entry) return null;
    this.pending.delete(ref);
    this.persist();
    this.onChange();
    return entry;
  }

  /** An `error` whose `ref` is the request type ("group_join") rather than an id ends every
   * join in flight: there is no telling which one it was about. */
  failType(type) {
    if (type !== "group_join") return [];
    const ended = [];
    for (const [id, p] of this.pending) {
      if (!p.group_id) continue;
      this.pending.delete(id);
      ended.push(p);
    }
    if (ended.length) {
      this.persist();
      this.onChange();
    }
    return ended;
  }

  persist() {
    save(this.pendingKey, Object.fromEntries(this.pending));
    save(this.ordersKey, this.orders);
  }
}
