// The viewer's fulfilment card in a joint room (跨店联播, welcome.state.kind "network"): how
// the buyer gets what they buy — pick up at a member store chosen by name (kept in
// localStorage per joint room), or delivery to an address at the phone's location — how
// many, and the words for the route an order took and for `no_store`. Owns #fulfil and the
// member stores' names (GET /api/rooms/{store}); knows nothing of the socket or of buys in
// flight: the page asks it for a buy's `fulfilment` and quantity. A store room never sees it.

import { t } from "./i18n.js";
import { methodOf } from "./orders.js";
import { $, el, setText } from "./ui.js";

export const QTY_MAX = 99;
const ATTENTION_MS = 1_600;

// ---- words (pure) ---------------------------------------------------------------------

/** 850 → "850 米", 2_800 → "2.8 公里" (en: "850 m", "2.8 km"). */
export function distanceText(m) {
  const metres = Math.max(0, Number(m) || 0);
  if (metres < 1_000) return t("joint.m", { n: Math.round(metres / 10) * 10 });
  const km = metres / 1_000;
  return t("joint.km", { n: km < 100 ? km.toFixed(1) : String(Math.round(km)) });
}

/** The parts of an order's route: ["由 望京店 发货", "距您 2.8 公里", "最近有货"] or
 * ["到 望京店 自提"]; empty for an order of a store room (no `store`). */
export function routeParts(order, nameOf) {
  if (!order?.store) return [];
  const store = nameOf(order.store);
  if (methodOf(order) !== "delivery") return [t("joint.route.pickup", { store })];
  const parts = [
    t("joint.route.delivery", { store }),
    t("joint.route.distance", { distance: distanceText(order.route?.distance_m) }),
  ];
  if (order.route?.rule === "nearest_in_stock") parts.push(t("joint.route.nearest"));
  return parts;
}

/** Which store fulfils an order and why, as one line ("由 望京店 发货 · 距您 2.8 公里 ·
 * 最近有货", "到 望京店 自提") that wraps between its parts; null without a `store`. */
export function routeLine(order, nameOf) {
  const parts = routeParts(order, nameOf);
  if (!parts.length) return null;
  const children = parts.flatMap((text, i) => [i ? " · " : null, el("span", { text })]);
  return el("div", { class: "order-route" }, ...children);
}

/** `rejected` with `no_store`, for the buy it answers (its fulfilment and quantity), as
 * {key, vars} so it can be said again in the other language. */
export function noStore(entry, nameOf) {
  const f = entry?.fulfilment;
  if (f?.method === "delivery") return { key: "joint.no_store.delivery", vars: { qty: entry.qty } };
  if (f?.method === "pickup" && f.store) {
    return { key: "joint.no_store.pickup", vars: { store: nameOf(f.store), qty: entry.qty } };
  }
  return { key: "reject.no_store" };
}

// ---- the card -------------------------------------------------------------------------

function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") ?? {};
  } catch {
    return {};
  }
}

export class JointPicker {
  /**
   * @param {object} o
   * @param {string} o.room  the joint room
   * @param {() => void} o.onNames  a member store's name arrived (cards that show it redraw)
   */
  constructor({ room, onNames }) {
    this.key = `liveshop:fulfil:${room}`;
    this.onNames = onNames;
    this.active = false;
    this.stores = [];
    this.names = new Map(); // store id → name, once GET /api/rooms/{store} answered
    this.asked = new Set(); // store ids whose name was asked for (once per page)
    const saved = load(this.key);
    this.method = saved.method === "pickup" || saved.method === "delivery" ? saved.method : null;
    this.store = typeof saved.store === "string" ? saved.store : "";
    this.where = null; // {lat, lng, accuracy}: never stored, asked for again on each visit
    this.locating = false;
    this.msg = null; // {key, vars}: the card's own line
    this.restored = false;
    this.bind(typeof saved.address === "string" ? saved.address : "");
  }

  bind(address) {
    for (const radio of document.querySelectorAll("input[name=fulfil-method]")) {
      radio.addEventListener("change", () => this.choose(radio.value));
    }
    $("#fulfil-store").addEventListener("change", (ev) => {
      this.store = ev.target.value;
      this.msg = null;
      this.save();
      this.render();
    });
    const addr = $("#fulfil-address");
    addr.value = address;
    addr.addEventListener("input", () => {
      this.msg = null;
      this.save();
      this.render();
    });
    $("#fulfil-locate").addEventListener("click", () => this.locate());
    $("#fulfil-less").addEventListener("click", () => this.step(-1));
    $("#fulfil-more").addEventListener("click", () => this.step(1));
    $("#fulfil-qty").addEventListener("change", () => this.step(0));
  }

  /** From every welcome: a joint room shows the card, a store room keeps it hidden. */
  setRoom(state) {
    this.active = state.kind === "network";
    this.stores = this.active ? [...(state.stores ?? [])] : [];
    if (this.store && !this.stores.includes(this.store)) this.store = "";
    if (this.active && !this.store && this.stores.length === 1) this.store = this.stores[0];
    for (const id of this.stores) this.askName(id);
    if (this.active && !this.restored) this.restore();
    this.render();
  }

  /** A remembered delivery takes the location again only where the browser already allows
   * it: a page that prompts before the buyer touched anything looks like it wants too much. */
  restore() {
    this.restored = true;
    if (this.method !== "delivery" || !navigator.permissions?.query) return;
    navigator.permissions
      .query({ name: "geolocation" })
      .then((status) => {
        if (status.state === "granted" && !this.where) this.locate();
      })
      .catch(() => {});
  }

  async askName(id) {
    if (this.asked.has(id)) return;
    this.asked.add(id);
    try {
      const res = await fetch(`/api/rooms/${encodeURIComponent(id)}`, { cache: "no-store" });
      if (!res.ok) return;
      const body = await res.json();
      if (typeof body.name !== "string" || !body.name) return;
      this.names.set(id, body.name);
      this.render();
      this.onNames();
    } catch {
      // Offline: the store's id stands in for its name.
    }
  }

  storeName(id) {
    return this.names.get(id) ?? id;
  }

  choose(method) {
    this.method = method;
    this.msg = null;
    this.save();
    this.render();
  }

  save() {
    const address = $("#fulfil-address").value.trim();
    try {
      localStorage.setItem(this.key, JSON.stringify({ method: this.method, store: this.store, address }));
    } catch {
      // No storage: the choice lasts as long as the page.
    }
  }

  locate() {
    if (this.locating) return;
    if (!window.isSecureContext || !navigator.geolocation) {
      this.noLocation("joint.geo.unavailable");
      return;
    }
    this.locating = true;
    this.msg = null;
    this.render();
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        this.locating = false;
        const { latitude, longitude, accuracy } = pos.coords;
        this.where = { lat: latitude, lng: longitude, accuracy };
        this.method = "delivery";
        this.save();
        this.render();
      },
      (err) => {
        this.locating = false;
        this.noLocation(err.code === err.PERMISSION_DENIED ? "joint.geo.denied" : "joint.geo.failed");
      },
      { enableHighAccuracy: false, timeout: 15_000, maximumAge: 300_000 },
    );
  }

  /** No location, no delivery: say why plainly and go back to pickup. */
  noLocation(key) {
    this.where = null;
    this.method = "pickup";
    this.msg = { key };
    this.save();
    this.render();
  }

  step(by) {
    const input = $("#fulfil-qty");
    input.value = String(Math.min(QTY_MAX, Math.max(1, (Number.parseInt(input.value, 10) || 1) + by)));
    this.msg = null;
    this.render();
  }

  get qty() {
    return Math.min(QTY_MAX, Math.max(1, Number.parseInt($("#fulfil-qty").value, 10) || 1));
  }

  /** The `fulfilment` of the next buy: {ok: true, value} or {ok: false, why} (a string key). */
  fulfilment() {
    if (this.method === "pickup") {
      return this.store ? { ok: true, value: { method: "pickup", store: this.store } } : { ok: false, why: "joint.ask.store" };
    }
    if (this.method === "delivery") {
      if (!this.where) return { ok: false, why: "joint.ask.location" };
      const address = $("#fulfil-address").value.trim().slice(0, 200);
      if (!address) return { ok: false, why: "joint.ask.address" };
      const round = (x) => Math.round(x * 1e6) / 1e6;
      return {
        ok: true,
        value: { method: "delivery", address, lat: round(this.where.lat), lng: round(this.where.lng) },
      };
    }
    return { ok: false, why: "joint.ask.method" };
  }

  /** A buy tapped before the choice is complete: point at what is missing. */
  ask(why) {
    this.msg = { key: why };
    this.render();
    const card = $("#fulfil");
    card.dataset.attention = "true";
    card.scrollIntoView({ block: "center", behavior: "smooth" });
    const focus = { "joint.ask.store": "#fulfil-store", "joint.ask.address": "#fulfil-address" }[why];
    if (focus) $(focus).focus({ preventScroll: true });
    clearTimeout(this.attention);
    this.attention = setTimeout(() => delete card.dataset.attention, ATTENTION_MS);
  }

  /** A line in the card of the page's own making: {key, vars} (e.g. the no_store refusal). */
  say(msg) {
    this.msg = msg;
    this.render();
  }

  /** A buy went out: whatever the card asked for is settled. */
  sent() {
    if (this.msg?.key?.startsWith("joint.ask.")) this.say(null);
  }

  render() {
    const card = $("#fulfil");
    card.hidden = !this.active;
    if (!this.active) return;
    const ready = this.fulfilment().ok;
    card.dataset.method = this.method ?? "";
    card.dataset.ready = String(ready);
    if (ready) delete card.dataset.attention;
    setText($("#fulfil-stores"), t("joint.stores", { n: this.stores.length }));
    $("#fulfil-choose").hidden = Boolean(this.method);
    for (const radio of document.querySelectorAll("input[name=fulfil-method]")) {
      radio.checked = radio.value === this.method;
    }
    $("#fulfil-pickup").hidden = this.method !== "pickup";
    $("#fulfil-delivery").hidden = this.method !== "delivery";
    this.renderStores();
    const locate = $("#fulfil-locate");
    locate.disabled = this.locating;
    if (this.locating) locate.setAttribute("aria-busy", "true");
    else locate.removeAttribute("aria-busy");
    setText(locate, t(this.locating ? "joint.locating" : "joint.locate"));
    const where = $("#fulfil-where");
    where.dataset.located = String(Boolean(this.where));
    setText(where, this.whereText());
    const msg = this.msg ? t(this.msg.key, this.msg.vars) : "";
    setText($("#fulfil-msg"), msg);
    $("#fulfil-less").disabled = this.qty <= 1;
    $("#fulfil-more").disabled = this.qty >= QTY_MAX;
  }

  whereText() {
    if (this.locating) return "";
    if (!this.where) return t("joint.need_location");
    const m = Math.round(this.where.accuracy ?? 0);
    return m > 0 && m < 5_000 ? t("joint.located.accuracy", { m }) : t("joint.located");
  }

  renderStores() {
    const select = $("#fulfil-store");
    const want = [["", t("joint.store.pick")], ...this.stores.map((id) => [id, this.storeName(id)])];
    const have = [...select.options].map((o) => [o.value, o.textContent]);
    if (JSON.stringify(want) !== JSON.stringify(have)) {
      select.replaceChildren(...want.map(([value, text]) => el("option", { value, text })));
      select.options[0].disabled = true;
    }
    select.value = this.store;
  }
}
