// The viewer page (/rooms/{room_id}): watch, see live stock and flash deals, buy, chat, like.
// Owns the viewer's DOM; room state comes from room.js, the connection from socket.js,
// purchases (request ids, resend) from buy.js, the buyer's orders after the tap from myorders.js,
// the group-buy cards (拼团) from groupcard.js, a joint room's fulfilment card (跨店联播:
// pickup store or delivery, and the route an order took) from joint.js, polls (投票) from
// pollcard.js, lucky draws (福袋) from drawcard.js, the next live and its reservations (预约)
// from schedulecard.js.

import { Purchases } from "./buy.js";
import { TokenSource } from "./auth.js";
import { restClient } from "./consoleapi.js";
import { DrawCards } from "./drawcard.js";
import { count, countdown, money, nickname } from "./format.js";
import { GroupCards } from "./groupcard.js";
import { getLang, onLangChange, t } from "./i18n.js";
import { JointPicker, noStore, routeLine } from "./joint.js";
import { MyOrders } from "./myorders.js";
import { SHOW_CODE, methodOf, orderTotal, pickupCode, stateLabel } from "./orders.js";
import { PollCards } from "./pollcard.js";
import {
  apply,
  emptyState,
  fromWelcome,
  keepOnResume,
  offerLeft,
  offerStatus,
  serverNow,
  visibleOffers,
} from "./room.js";
import { ScheduleCard } from "./schedulecard.js";
import { RoomSocket } from "./socket.js";
import {
  $,
  bindLangToggle,
  connectionBanner,
  el,
  errorText,
  productThumb,
  rejectText,
  roomFromPath,
  setText,
  toast,
} from "./ui.js";

const CHAT_KEEP = 100;
const REJECT_SHOW_MS = 6_000;
const CLOSED = new Set(["cancelled", "expired", "uncollected", "delivery_failed"]);

const room = roomFromPath();
let state = emptyState();
let anonymous = false;
let welcomed = false;
const chat = []; // {user, text}; not part of room state, so it survives a fresh welcome
const likes = new Map(); // sku → taps on this page
const rowMessages = new Map(); // buy target → {text, until} or {key, vars, until} (follows the language)
let confirmOrderId = null; // the order whose pickup code is shown large

const tokens = new TokenSource({ role: "viewer", room });
const banner = connectionBanner();
const socket = new RoomSocket({
  room,
  lang: getLang(),
  getToken: async () => {
    const got = await tokens.get();
    anonymous = !got.token;
    return got;
  },
  onStatus: (status, detail) => {
    banner.update(status, detail);
    renderButtons();
  },
  onWelcome,
  onMessage,
  // A demo token can be replaced; a token from the link cannot, so then we stop and say so.
  onAuthFailure: () => {
    if (tokens.from === "link") return false;
    tokens.forget();
    return true;
  },
});
const joint = new JointPicker({
  room,
  onNames: () => {
    myOrders.render();
    renderConfirm();
  },
});
const purchases = new Purchases({
  socket,
  room,
  onChange: () => {
    renderButtons();
    groupCards.render();
  },
});
const myOrders = new MyOrders({
  socket,
  room,
  getToken: () => tokens.get(),
  productName: (sku) => state.products.get(sku)?.name ?? sku,
  serverNow: () => serverNow(state),
  storeName: (id) => joint.storeName(id),
  onChange: () => {
    renderConfirm();
    groupCards.render(); // "my status" on a group card follows the buyer's orders
  },
});
const groupCards = new GroupCards({
  getState: () => state,
  purchases,
  orders: () => myOrders.book.sorted(),
  isAnonymous: () => anonymous,
  onTap: (target) => {
    rowMessages.delete(target);
    if (!socket.ready) toast(t("conn.reconnecting"));
  },
});

const sendOrSay = (msg) => {
  if (socket.send(msg)) return true;
  toast(errorText("not_ready"), "error");
  return false;
};
const pollCards = new PollCards({
  box: $("#polls"),
  send: sendOrSay,
  serverNow: () => serverNow(state),
  voting: true,
  isAnonymous: () => anonymous,
});
const drawCards = new DrawCards({
  box: $("#draws"),
  room,
  send: sendOrSay,
  serverNow: () => serverNow(state),
  getUser: () => state.user,
  entering: true,
  isAnonymous: () => anonymous,
});
const scheduleCard = new ScheduleCard({
  box: $("#schedule-card"),
  room,
  api: restClient(tokens),
  serverNow: () => serverNow(state),
  isAnonymous: () => anonymous,
});

// ---- protocol -------------------------------------------------------------------------

function onWelcome(msg) {
  state = msg.resumed && welcomed ? keepOnResume(state, msg) : fromWelcome(state, msg);
  if (typeof msg.ts === "number") apply(state, { ts: msg.ts }); // apply() notes the server clock
  welcomed = true;
  if (state.user) purchases.setUser(state.user);
  joint.setRoom(state);
  myOrders.welcome(msg, purchases.orders);
  scheduleCard.welcome(msg);
  if (!msg.resumed) {
    pollCards.welcome(msg);
    drawCards.welcome(msg);
  }
  renderAll();
  purchases.resendAll();
}

function onMessage(msg) {
  // First, for every type: apply() also keeps the server-clock estimate from each `ts`.
  const changed = apply(state, msg);
  switch (msg.type) {
    case "order_ack":
      onOrderAck(msg);
      return;
    case "order":
      myOrders.order(msg);
      return;
    case "cancel_ack":
      myOrders.cancelAck(msg);
      return;
    case "chat":
      chat.push({ user: msg.user, text: msg.text, msgId: msg.msg_id, badge: msg.badge });
      if (chat.length > CHAT_KEEP) chat.splice(0, chat.length - CHAT_KEEP);
      renderChat();
      return;
    case "chat_removed": {
      // one message deleted by a moderator, or every line of a banned user
      const keep = chat.filter((m) => (msg.msg_id ? m.msgId !== msg.msg_id : m.user !== msg.user));
      chat.splice(0, chat.length, ...keep);
      renderChat();
      return;
    }
    case "moderation":
      onModeration(msg);
      return;
    case "poll":
      pollCards.onPoll(msg);
      return;
    case "draw":
      drawCards.onDraw(msg);
      return;
    case "error":
      onError(msg);
      return;
    default:
      break;
  }
  if (changed.has("live")) {
    renderHeader();
    scheduleCard.onLive(state.live);
  }
  if (changed.has("viewers")) renderHeader();
  if (changed.has("products") || changed.has("pinned")) renderProducts();
  if (changed.has("offers")) renderOffers();
  if (changed.has("groups") || changed.has("products") || changed.has("live")) groupCards.render();
}

function onOrderAck(ack) {
  const settled = purchases.settle(ack);
  if (!settled) return;
  const target = settled.entry.target;
  if (ack.status === "accepted") {
    confirmOrderId = ack.order_id;
    myOrders.confirmId = confirmOrderId;
    rowMessages.delete(target);
    myOrders.ack(ack, settled.entry); // renders the panel and, through onChange, the card
    $("#order-confirm").scrollIntoView({ block: "nearest", behavior: "smooth" });
  } else {
    const why = ack.reason === "no_store" ? noStore(settled.entry, (id) => joint.storeName(id)) : null;
    const text = why ? t(why.key, why.vars) : rejectText(ack.reason);
    if (why && joint.active) joint.say(why);
    const until = Date.now() + REJECT_SHOW_MS;
    rowMessages.set(target, why ? { ...why, until } : { text, until });
    // The whole sentence is under the button and in the card; the toast only says it happened.
    toast(why && joint.active ? t("joint.no_store.short") : text, "error");
  }
  renderButtons();
}

function onModeration(msg) {
  const until = msg.until ? new Date(msg.until).toLocaleString() : "";
  const why = msg.reason ? ` (${msg.reason})` : "";
  const text = {
    mute: `${t("mod.muted")} ${until}${why}`,
    unmute: t("mod.unmuted"),
    kick: `${t("mod.kicked")} ${until}${why}`,
    ban: `${t("mod.banned")}${why}`,
    appoint: t("mod.appointed"),
  }[msg.action];
  if (text) toast(text, msg.action === "unmute" || msg.action === "appoint" ? "info" : "error");
}

function onError(msg) {
  if (pollCards.error(msg) || drawCards.error(msg)) return; // shown on the card
  if (msg.ref && myOrders.error(msg)) return; // a refused cancel: shown on its order
  const entry = msg.ref ? purchases.fail(msg.ref) : null;
  const text = errorText(msg.code, msg.message, msg.ref);
  if (entry) rowMessages.set(entry.target, { text, until: Date.now() + REJECT_SHOW_MS });
  // A refused group_join may name the request type instead of its id: it ends every join.
  for (const join of entry ? [] : purchases.failType(msg.ref)) {
    rowMessages.set(join.target, { text, until: Date.now() + REJECT_SHOW_MS });
  }
  toast(text, "error");
  renderButtons();
}

// ---- actions --------------------------------------------------------------------------

function tapBuy(sku, offerId = null) {
  const target = Purchases.target(sku, offerId);
  let fulfilment = null;
  let qty = 1;
  if (joint.active) {
    // A joint room routes each buy by its fulfilment: none chosen yet, nothing is sent.
    const f = joint.fulfilment();
    if (!f.ok) {
      rowMessages.set(target, { key: f.why, until: Date.now() + REJECT_SHOW_MS });
      joint.ask(f.why);
      renderButtons();
      return;
    }
    fulfilment = f.value;
    qty = offerId ? 1 : joint.qty; // a deal's per-person limit is counted in single units
  }
  if (!purchases.buy({ sku, qty, offerId, fulfilment })) return; // already a buy in flight
  rowMessages.delete(target);
  joint.sent();
  if (!socket.ready) toast(t("conn.reconnecting"));
}

let lastLike = 0;
function tapLike(sku) {
  const now = Date.now();
  if (now - lastLike < 150) return; // a finger resting on the button is not forty likes
  lastLike = now;
  if (!socket.send({ type: "like", sku })) return toast(errorText("not_ready"));
  likes.set(sku, (likes.get(sku) ?? 0) + 1);
  for (const b of document.querySelectorAll(`.like[data-sku="${CSS.escape(sku)}"]`)) {
    b.classList.remove("pop");
    void b.offsetWidth; // restart the animation
    b.classList.add("pop");
    setText(b.querySelector(".like-count"), count(likes.get(sku)));
  }
}

$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#chat-input");
  const text = input.value.trim();
  if (!text) return;
  if (!socket.send({ type: "chat", text: text.slice(0, 200) })) {
    toast(errorText("not_ready"), "error");
    return;
  }
  input.value = ""; // the server echoes it to everyone, us included
});

// ---- rendering ------------------------------------------------------------------------

function renderAll() {
  renderHeader();
  renderVideo();
  renderOffers();
  renderProducts();
  groupCards.render();
  pollCards.render();
  drawCards.render();
  scheduleCard.render();
  renderConfirm();
  myOrders.render();
  joint.render();
  renderChat();
  banner.redraw();
}

function renderHeader() {
  setText($("#store-name"), state.name || t("store.default"));
  setText($("#room-title"), state.title || "");
  const badge = $("#live-badge");
  badge.dataset.live = String(state.live);
  setText(badge, t(state.live ? "live.on" : "live.off"));
  setText($("#viewer-count"), t("viewers", { n: count(state.viewers) }));
  document.title = `${state.name || t("page.viewer")}${state.live ? ` · ${t("live.on")}` : ""}`;
  $("#anon-note").hidden = !(welcomed && anonymous);
}

function renderVideo() {
  const video = $("#video");
  const url = state.stream_url;
  // Safari and most in-app browsers on phones play HLS natively; plain MP4 plays anywhere.
  const playable =
    url && (!/\.m3u8(\?|$)/i.test(url) || video.canPlayType("application/vnd.apple.mpegurl"));
  video.hidden = !playable;
  $("#video-placeholder").hidden = Boolean(playable);
  const note = $("#video-note");
  note.dataset.i18n = url && !playable ? "video.unsupported" : "video.none";
  setText(note, t(note.dataset.i18n));
  if (playable && video.getAttribute("src") !== url) {
    video.src = url;
    video.play().catch(() => {}); // autoplay may be refused; the controls stay
  } else if (!playable && video.getAttribute("src")) {
    video.removeAttribute("src");
    video.load();
  }
}

/** Label and enabled state of a buy button, from everything that can stop a purchase. */
function buyButtonState(target, available) {
  if (anonymous) return { label: t("buy.signin"), disabled: true };
  if (purchases.isPending(target)) return { label: t("buy.pending"), disabled: true, busy: true };
  if (!state.live) return { label: t("buy.notlive"), disabled: true };
  if (available <= 0) return { label: t("buy.soldout"), disabled: true };
  return { label: null, disabled: false };
}

function productRow(p, featured) {
  const target = `sku:${p.sku}`;
  const row = el(
    "li",
    { class: `product${featured ? " featured" : ""}`, dataset: { sku: p.sku, target } },
    productThumb(p, featured ? "big" : ""),
    el(
      "div",
      { class: "product-info" },
      el("div", { class: "product-name", text: p.name ?? p.sku }),
      // Price and buttons share a line that wraps (buttons go below) rather than overlap.
      el(
        "div",
        { class: "product-line" },
        el(
          "div",
          { class: "product-meta" },
          el("span", { class: "price num" }),
          el("span", { class: "stock num" }),
        ),
        el(
          "div",
          { class: "product-actions" },
          el(
            "button",
            { type: "button", class: "like", dataset: { sku: p.sku }, onclick: () => tapLike(p.sku) },
            el("span", { class: "heart", "aria-hidden": "true", text: "♥" }),
            el("span", { class: "like-count num" }),
          ),
          el("button", {
            type: "button",
            class: "btn buy",
            dataset: { target, sku: p.sku },
            onclick: () => tapBuy(p.sku),
          }),
        ),
      ),
      el("div", { class: "row-msg", role: "status" }),
    ),
  );
  return row;
}

function updateProductRow(row, p) {
  row.dataset.stock = String(p.stock); // machine-readable twin of the text, for tests and tools
  setText(row.querySelector(".price"), money(p.price));
  const stock = row.querySelector(".stock");
  setText(stock, p.stock > 0 ? t("stock", { n: count(p.stock) }) : t("stock.none"));
  stock.classList.toggle("low", p.stock > 0 && p.stock <= 10);
  row.classList.toggle("pinned-row", state.pinned === p.sku);
  const likeBtn = row.querySelector(".like");
  likeBtn.disabled = anonymous;
  likeBtn.setAttribute("aria-label", t("like"));
  setText(row.querySelector(".like-count"), likes.get(p.sku) ? count(likes.get(p.sku)) : "");
}

function syncList(list, items, keyOf, make, update) {
  // Keyed update: existing rows are updated in place so nothing jumps while stock ticks down.
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

function renderProducts() {
  const products = [...state.products.values()];
  syncList($("#product-list"), products, (p) => p.sku, (p) => productRow(p, false), updateProductRow);
  const pinned = state.pinned ? state.products.get(state.pinned) : null;
  $("#pinned").hidden = !pinned;
  const body = $("#pinned-body");
  syncList(
    body,
    pinned ? [pinned] : [],
    (p) => `pin:${p.sku}`,
    (p) => el("ul", { class: "product-list" }, productRow(p, true)),
    (node, p) => updateProductRow(node.firstChild, p),
  );
  renderButtons();
}

function offerBanner(o) {
  const p = state.products.get(o.sku);
  return el(
    "section",
    { class: "offer", dataset: { offer: o.offer_id, sku: o.sku } },
    el(
      "div",
      { class: "offer-head" },
      el("span", { class: "offer-label" }),
      el("span", { class: "offer-name", text: p?.name ?? o.sku }),
      el(
        "span",
        { class: "offer-clock" },
        el("span", { class: "offer-ends-label" }),
        el("span", { class: "countdown num" }),
      ),
    ),
    el(
      "div",
      { class: "offer-body" },
      el(
        "div",
        { class: "offer-prices" },
        el("span", { class: "offer-price num" }),
        el("s", { class: "offer-was num" }),
      ),
      el("button", {
        type: "button",
        class: "btn buy offer-buy",
        dataset: { target: `offer:${o.offer_id}`, sku: o.sku },
        onclick: () => tapBuy(o.sku, o.offer_id),
      }),
    ),
    el(
      "div",
      { class: "offer-foot" },
      el("div", { class: "meter", "aria-hidden": "true" }, el("span", { class: "meter-fill" })),
      el("span", { class: "offer-left num" }),
      el("span", { class: "offer-limit" }),
    ),
    el("div", { class: "row-msg", role: "status" }),
  );
}

function updateOfferBanner(node, o) {
  const p = state.products.get(o.sku);
  const status = offerStatus(state, o);
  const left = Math.max(0, offerLeft(state, o));
  node.dataset.status = status;
  node.dataset.left = String(left);
  setText(node.querySelector(".offer-label"), t("offer.label"));
  setText(node.querySelector(".offer-price"), money(o.price));
  setText(node.querySelector(".offer-was"), p && p.price > o.price ? money(p.price) : "");
  setText(node.querySelector(".offer-left"), t("offer.left", { n: count(left) }));
  setText(node.querySelector(".offer-limit"), t("offer.limit", { n: o.per_user_limit }));
  node.querySelector(".meter-fill").style.width = `${o.qty ? (100 * left) / o.qty : 0}%`;
  updateCountdown(node, o, status);
}

function updateCountdown(node, o, status) {
  const label = node.querySelector(".offer-ends-label");
  const clock = node.querySelector(".countdown");
  if (status === "live") {
    setText(label, t("offer.ends_in"));
    setText(clock, countdown(o.ends_at - serverNow(state)));
  } else {
    setText(label, "");
    setText(clock, t(status === "sold_out" ? "offer.soldout" : "offer.ended"));
  }
}

function renderOffers() {
  const offers = visibleOffers(state).sort((a, b) => a.ends_at - b.ends_at);
  syncList($("#offers"), offers, (o) => o.offer_id, offerBanner, updateOfferBanner);
  renderButtons();
}

/** Every buy button on the page, from one rule, so the pinned card and list agree. */
function renderButtons() {
  const now = Date.now();
  for (const btn of document.querySelectorAll("button.buy")) {
    const target = btn.dataset.target;
    let available;
    let fallback = t("buy");
    if (target.startsWith("offer:")) {
      const o = state.offers.get(target.slice(6));
      const status = o ? offerStatus(state, o) : "ended";
      available = status === "live" ? offerLeft(state, o) : 0;
      fallback = t("offer.buy");
      if (status !== "live" && !purchases.isPending(target)) {
        btn.disabled = true;
        setText(btn, t(status === "sold_out" ? "offer.soldout" : "offer.ended"));
        btn.removeAttribute("aria-busy");
        continue;
      }
    } else {
      available = state.products.get(btn.dataset.sku)?.stock ?? 0;
    }
    const s = buyButtonState(target, available);
    btn.disabled = s.disabled;
    setText(btn, s.label ?? fallback);
    if (s.busy) btn.setAttribute("aria-busy", "true");
    else btn.removeAttribute("aria-busy");
  }
  for (const holder of document.querySelectorAll("[data-target], [data-offer]")) {
    const msgBox = holder.querySelector(":scope > .row-msg, :scope > .product-info > .row-msg");
    if (!msgBox) continue;
    const target = holder.dataset.target ?? `offer:${holder.dataset.offer}`;
    const m = rowMessages.get(target);
    setText(msgBox, m && m.until > now ? (m.key ? t(m.key, m.vars) : m.text) : "");
  }
}

/** The big card right after a buy: what to do next with the order just placed (pay, or
 * show the code), kept current by the order's pushes. The panel has the same order with its
 * buttons; this card carries data-order (not data-order-id) so each order has one such node. */
function confirmCard(order) {
  const p = state.products.get(order.sku);
  const total = orderTotal(order);
  const code = pickupCode(order);
  const unpaid = order.state === "awaiting_payment";
  const showCode = methodOf(order) === "pickup" && SHOW_CODE.has(order.state);
  // An order that closed while its card is up (cancelled, expired…) says so instead of "ok".
  const closed = CLOSED.has(order.state);
  return el(
    "div",
    { class: "confirm card", dataset: { order: order.order_id, state: order.state, closed: String(closed) } },
    closed
      ? el("div", { class: "confirm-closed", text: t(`orders.note.${order.state}`) })
      : el("div", { class: "confirm-ok", text: `✓ ${t(order.group_id ? "group.join_ok" : "order.ok")}` }),
    routeLine(order, (id) => joint.storeName(id)),
    el("span", { class: "order-state", dataset: { state: order.state }, text: stateLabel(order.state) }),
    unpaid && typeof order.pay_by === "number"
      ? el("div", { class: "pay-countdown num", dataset: { payBy: String(order.pay_by) } })
      : null,
    showCode ? el("div", { class: "pickup-label", text: t("order.pickup") }) : null,
    showCode ? el("div", { class: "pickup-code num", text: code ?? "—" }) : null,
    el("div", {
      class: "order-item",
      text: [t("order.item", { name: p?.name ?? order.sku, qty: order.qty }),
        total !== null ? t("order.total", { amount: money(total) }) : null]
        .filter(Boolean)
        .join(" · "),
    }),
    showCode ? el("div", { class: "pickup-hint", text: t("order.show") }) : null,
    order.state === "pending_group"
      ? el("div", { class: "pickup-hint", text: t("orders.note.pending_group") })
      : null,
    el(
      "div",
      { class: "confirm-actions" },
      unpaid && !myOrders.payOff
        ? el("button", {
            type: "button",
            class: "btn pay",
            dataset: { confirmAction: "pay", payButton: order.order_id },
            disabled: myOrders.paying.has(order.order_id),
            text: t(myOrders.paying.has(order.order_id) ? "orders.paying" : "orders.pay"),
            onclick: () => myOrders.pay(order.order_id),
          })
        : null,
      el("button", {
        type: "button",
        class: "btn ghost",
        dataset: { confirmAction: "view" },
        text: t("orders.view"),
        onclick: () => myOrders.show(order.order_id),
      }),
      el("button", {
        type: "button",
        class: "btn ghost",
        dataset: { confirmAction: "hide" },
        text: t("order.hide"),
        onclick: () => {
          confirmOrderId = null;
          myOrders.confirmId = null;
          myOrders.render();
          renderConfirm();
        },
      }),
    ),
  );
}

function renderConfirm() {
  const box = $("#order-confirm");
  const order = confirmOrderId ? myOrders.book.get(confirmOrderId) : null;
  box.replaceChildren(...(order ? [confirmCard(order)] : []));
  myOrders.tick(); // fill its countdown now rather than at the next tick
}

function renderChat() {
  const list = $("#chat-list");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = chat.map((m) => {
    const mine = state.user && m.user === state.user;
    return el(
      "li",
      { class: mine ? "mine" : "", dataset: { msgId: m.msgId ?? "" } },
      m.badge ? el("span", { class: `chat-badge ${m.badge}`, text: t(`badge.${m.badge}`) }) : null,
      el("span", { class: "chat-user", text: mine ? t("chat.me") : nickname(m.user) }),
      el("span", { class: "chat-text", text: m.text }),
    );
  });
  if (!items.length) items.push(el("li", { class: "chat-empty", text: t("chat.empty") }));
  list.replaceChildren(...items);
  if (nearBottom) list.scrollTop = list.scrollHeight;
  const input = $("#chat-input");
  input.disabled = anonymous;
  $("#chat-send").disabled = anonymous;
  input.placeholder = t(anonymous ? "chat.signin" : "chat.placeholder");
}

// Countdowns tick locally between messages; offers whose time ran out drop off by themselves.
setInterval(() => {
  let reshape = false;
  const visible = new Set(visibleOffers(state).map((o) => o.offer_id));
  for (const node of document.querySelectorAll("#offers .offer")) {
    const o = state.offers.get(node.dataset.offer);
    if (!o || !visible.has(o.offer_id)) {
      reshape = true;
      continue;
    }
    const status = offerStatus(state, o);
    if (status !== node.dataset.status) reshape = true;
    else updateCountdown(node, o, status);
  }
  if (reshape || visible.size !== document.querySelectorAll("#offers .offer").length) {
    renderOffers();
  }
}, 250);
// Poll, draw and next-live countdowns.
setInterval(() => {
  pollCards.tick();
  drawCards.tick();
  scheduleCard.tick();
}, 500);
// Row messages expire.
setInterval(renderButtons, 1_000);

const relabel = bindLangToggle();
onLangChange((lang) => {
  relabel();
  renderAll();
  socket.setLang(lang); // lang travels in hello: reconnect (with resume) to switch it
});
renderAll();
socket.start();
