// Small DOM helpers shared by both pages: element building, the toast, the connection
// banner, the language button, and the plain-words text for server codes.
// Nothing here knows about the protocol beyond code → text.

import { applyI18n, getLang, has, setLang, t } from "./i18n.js";

/** el("button", {class: "x", onclick}, "text", child) — small enough to keep pages readable. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Set text only when it changed, so steady numbers do not repaint. */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

let toastTimer = null;
/** A short message at the bottom of the screen; `kind` "error" stays longer. */
export function toast(text, kind = "info") {
  const box = $("#toast");
  if (!box) return;
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, kind === "error" ? 5_000 : 2_500);
}

/**
 * An `error` code or `bye` reason in plain words, in the page's language. The server's
 * `message` is English detail for developers: it is shown only for a code this page does
 * not know yet. `bad_message` means different things per request, so its `ref` (the
 * refused message's type) picks the sentence when there is one for it.
 */
export function errorText(code, message, ref) {
  if (code === "bad_message" && ref && has(`refused.${ref}`)) return t(`refused.${ref}`);
  const key = `err.${code}`;
  return has(key) ? t(key) : t("err.other", { message: message || code });
}

/** A rejected order's `reason` in plain words. */
export function rejectText(reason) {
  const key = `reject.${reason}`;
  return has(key) ? t(key) : t("reject.other", { reason: reason ?? "?" });
}

/**
 * The "reconnecting…" strip. Shown only if we stay away for a moment, so a language switch
 * (which reconnects on purpose) does not flash it.
 */
export function connectionBanner() {
  const bar = $("#conn-banner");
  let timer = null;
  let last = "connecting";
  let closedReason = null;
  const draw = () => {
    if (last === "closed") bar.textContent = t("conn.closed", { reason: errorText(closedReason) });
    else bar.textContent = t(last === "connecting" ? "conn.connecting" : "conn.reconnecting");
    bar.dataset.state = last;
  };
  return {
    update(status, detail) {
      last = status;
      if (status === "closed") closedReason = detail;
      clearTimeout(timer);
      document.body.dataset.conn = status;
      if (status === "open") {
        bar.hidden = true;
        return;
      }
      draw();
      if (status === "closed") bar.hidden = false;
      else timer = setTimeout(() => (bar.hidden = false), 400);
    },
    redraw: draw,
  };
}

/** The 中文 / English button. Re-applies static text; pages re-render their dynamic parts. */
export function bindLangToggle() {
  const btn = $("#lang-toggle");
  const label = () => {
    btn.textContent = t("lang.switch");
    btn.setAttribute("aria-label", t("lang.switch_label"));
  };
  btn.addEventListener("click", () => {
    setLang(getLang() === "zh-CN" ? "en" : "zh-CN");
  });
  applyI18n();
  label();
  return () => {
    applyI18n();
    label();
  };
}

/** Room id from /rooms/{id} or /console/{id}. */
export function roomFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[1] ?? "");
}

/** A product's picture, or a tile with its first character when it has none. */
export function productThumb(p, size = "") {
  if (p.image) {
    return el("img", { class: `thumb ${size}`, src: p.image, alt: "", loading: "lazy" });
  }
  // A stable hue per sku keeps each product recognisable without an image.
  let h = 0;
  for (const ch of p.sku) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return el(
    "span",
    { class: `thumb ${size}`, style: `--hue:${h}`, "aria-hidden": "true" },
    [...(p.name ?? p.sku)][0],
  );
}

/**
 * Keyed update of a list: nodes are made once per key (`make`), updated in place
 * (`update`), put in order and the stale ones removed, so a live number ticking never swaps
 * a button out from under a finger.
 */
const cardSigs = new WeakMap(); // order card node → the signature it was built from

/** Keyed update of a list of order cards (`data-order-id`): a card is rebuilt only when
 * its order's signature changed, so a push or a poll never swaps a button out from under
 * a finger on another card. */
export function syncCards(list, orders, make, signature) {
  const existing = new Map([...list.children].map((n) => [n.dataset.orderId, n]));
  let prev = null;
  for (const o of orders) {
    let node = existing.get(o.order_id);
    const sig = signature(o);
    if (!node || cardSigs.get(node) !== sig) {
      const fresh = make(o);
      cardSigs.set(fresh, sig);
      if (node) node.replaceWith(fresh);
      node = fresh;
    }
    existing.delete(o.order_id);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (node !== want) list.insertBefore(node, want);
    prev = node;
  }
  for (const stale of existing.values()) stale.remove();
}

export function syncKeyed(list, items, keyOf, make, update) {
  const existing = new Map([...list.children].map((n) => [n.dataset.key, n]));
  let prev = null;
  for (const item of items) {
    const key = keyOf(item);
    let node = existing.get(key);
    if (!node) {
      node = make(item);
      node.dataset.key = key;
    }
    existing.delete(key);
    update(node, item);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (node !== want) list.insertBefore(node, want);
    prev = node;
  }
  for (const stale of existing.values()) stale.remove();
}
