// The broadcaster console (/console/{room_id}): go live, pin, flash deals, restock, and the
// live numbers and coaching hints that tell a store owner what to do next.
// Owns the console's DOM; room state comes from room.js, the connection from socket.js,
// group buying (拼团: the start form and the list of groups) from groupconsole.js, HQ's
// campaign packs from packconsole.js (the picker and preview beside 开播) and prompter.js
// (the teleprompter and the pack's offer schedule), the price bands from bandfield.js,
// moderation (tap a chat line; the blocked words) from modpanel.js, polls from
// pollconsole.js, lucky draws from drawconsole.js and the next live (下次直播) from
// scheduleconsole.js.

import { TokenSource } from "./auth.js";
import { BandFields, bandRefusal } from "./bandfield.js";
import { DrawConsole } from "./drawconsole.js";
import { Series, drawChart } from "./chart.js";
import { restClient } from "./consoleapi.js";
import {
  count,
  countdown,
  money,
  moneyCompact,
  nickname,
  parseCount,
  percent,
  yuanToMinor,
} from "./format.js";
import { GroupPanel } from "./groupconsole.js";
import { getLang, onLangChange, t } from "./i18n.js";
import { ModPanel } from "./modpanel.js";
import { PackPicker } from "./packconsole.js";
import { PollConsole } from "./pollconsole.js";
import { Prompter } from "./prompter.js";
import { ScheduleForm } from "./scheduleconsole.js";
import { apply, emptyState, fromWelcome, keepOnResume, offerLeft, offerStatus, serverNow } from "./room.js";
import { RoomSocket } from "./socket.js";
import {
  $,
  bindLangToggle,
  connectionBanner,
  el,
  errorText,
  productThumb,
  roomFromPath,
  setText,
  toast,
} from "./ui.js";

const CHAT_KEEP = 100;
const HINTS_KEEP = 30;
const END_CONFIRM_MS = 4_000;
const GO_LIVE_WAIT_MS = 8_000;
// "Act now" is about this minute: an older banner is noise even if nothing ended it.
const ACT_NOW_MAX_MS = 60_000;

const room = roomFromPath();
let state = emptyState();
let welcomed = false;
let stats = null; // latest `stats` message of the current session
const series = new Series();
const hints = []; // newest first: {code, text, severity, sku, offer_id, session, at}
let actNow = null; // the act_now hint on the big banner until dismissed or moot
const lastSent = new Map(); // type → the last request of that type, to explain a refusal
const chat = [];
let endArmedUntil = 0;
let goLiveSentAt = 0;

const tokens = new TokenSource({ role: "broadcaster", room });
const banner = connectionBanner();
const socket = new RoomSocket({
  room,
  lang: getLang(),
  getToken: async () => {
    const got = await tokens.get();
    if (!got.token) {
      // Watching is the viewer page's job: without a broadcaster token there is nothing to do.
      queueMicrotask(() => {
        fatal(t(got.from === "expired" ? "err.token_expired" : "token.required"));
        socket.stop("unauthorized");
      });
    }
    return got;
  },
  onStatus: (status, detail) => {
    banner.update(status, detail);
    renderControls();
  },
  onWelcome,
  onMessage,
  onAuthFailure: () => {
    if (tokens.from === "link") {
      fatal(t("err.token_expired"));
      return false;
    }
    tokens.forget();
    return true;
  },
});

const groups = new GroupPanel({
  getState: () => state,
  isReady: () => socket.ready && state.role === "broadcaster",
  send: (msg) => send(msg),
});
const api = restClient(tokens);
const packs = new PackPicker({ room, api, getState: () => state, onChange: () => renderControls() });
const prompter = new Prompter({ room, api, getState: () => state });
const bands = new BandFields({ room, api });
const mod = new ModPanel({ room, send: (msg) => send(msg), api, onChange: () => renderChat() });
const polls = new PollConsole({ send: (msg) => send(msg), serverNow: () => serverNow(state) });
const draws = new DrawConsole({ room, send: (msg) => send(msg), serverNow: () => serverNow(state) });
const schedule = new ScheduleForm({ room, api, serverNow: () => serverNow(state) });

function fatal(text) {
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
  document.body.dataset.fatal = "true";
}

// ---- protocol -------------------------------------------------------------------------

function onWelcome(msg) {
  state = msg.resumed && welcomed ? keepOnResume(state, msg) : fromWelcome(state, msg);
  if (typeof msg.ts === "number") apply(state, { ts: msg.ts }); // the server clock
  welcomed = true;
  polls.cards.welcome(msg);
  draws.cards.welcome(msg);
  schedule.welcome(msg);
  if (state.role !== "broadcaster") fatal(t("role.wrong", { role: state.role }));
  expireActNow(); // the session or the offer may have ended while we were away
  renderAll();
  if (state.role === "broadcaster") {
    // REST after the welcome: the socket's token is stored by then, so both use the same one.
    packs.load();
    bands.load();
    prompter.refresh();
    mod.load();
  }
}

/**
 * A refused request in the owner's language. The server's `message` is English detail for
 * developers; the page knows what it asked for, so it can say why from its own state.
 */
function refusalText(msg) {
  const req = lastSent.get(msg.ref);
  const band = bandRefusal(msg);
  if (band) return band;
  if (msg.code === "bad_message" && req?.type === "offer_start") {
    const p = state.products.get(req.sku);
    if (!state.live) return t("refused.offer_not_live");
    if ([...state.offers.values()].some((o) => o.sku === req.sku && offerStatus(state, o) === "live")) {
      return t("refused.offer_busy");
    }
    if (p && req.qty > p.stock) return t("refused.offer_short", { left: count(p.stock) });
  }
  if (msg.code === "bad_message" && req?.type === "restock") {
    const p = state.products.get(req.sku);
    if (p && p.stock + req.qty < 0) return t("refused.restock_below_zero", { left: count(p.stock) });
  }
  return errorText(msg.code, msg.message, msg.ref);
}

function onMessage(msg) {
  switch (msg.type) {
    case "stats":
      onStats(msg);
      return;
    case "hint":
      onHint(msg);
      return;
    case "chat":
      apply(state, msg); // the server clock
      chat.push({ user: msg.user, text: msg.text, msgId: msg.msg_id, badge: msg.badge });
      if (chat.length > CHAT_KEEP) chat.splice(0, chat.length - CHAT_KEEP);
      renderChat();
      return;
    case "chat_removed": {
      const keep = chat.filter((m) => (msg.msg_id ? m.msgId !== msg.msg_id : m.user !== msg.user));
      chat.splice(0, chat.length, ...keep);
      if (mod.target && !keep.includes(mod.target)) mod.close();
      renderChat();
      return;
    }
    case "mod_ack":
      mod.onAck(msg);
      return;
    case "poll":
      apply(state, msg);
      polls.cards.onPoll(msg);
      return;
    case "draw":
      apply(state, msg);
      draws.cards.onDraw(msg);
      return;
    case "error":
      if (goLiveSentAt) {
        goLiveSentAt = 0; // whatever was refused, do not leave "go live" greyed out
        renderControls();
      }
      bands.refused(lastSent.get(msg.ref), msg); // a band we did not know yet
      if (groups.error(msg)) return; // group_start / group_cancel: shown by the group form
      if (packs.error(msg)) return; // go_live with a pack: shown under the go-live form
      toast(refusalText(msg), "error");
      return;
    default:
      break;
  }
  const changed = apply(state, msg);
  if (changed.has("live")) {
    goLiveSentAt = 0;
    if (state.live && stats?.session_id !== state.session_id) stats = null;
    packs.onLive(state.live);
    schedule.onLive(state.live);
    prompter.refresh();
    renderHeader();
    renderControls();
    renderStats();
  }
  if (changed.has("viewers")) renderStats();
  if (changed.has("products") || changed.has("pinned")) renderProducts();
  if (changed.has("pinned")) renderHints(); // a "pin this" button may be moot now
  if (changed.has("offers")) renderOffers();
  if (msg.type === "group") groups.onGroup(msg);
  if (msg.type === "offer") prompter.offerChanged();
  if (changed.has("groups") || changed.has("products")) groups.render();
  if (changed.size) expireActNow();
}

function onStats(msg) {
  stats = msg;
  series.add(msg.session_id, typeof msg.ts === "number" ? msg.ts : serverNow(state), msg.viewers, msg.orders);
  renderStats();
  renderChart();
  renderTop();
}

function onHint(msg) {
  const hint = {
    code: msg.code,
    text: msg.text,
    severity: msg.severity,
    sku: msg.sku,
    offer_id: msg.offer_id, // not in protocol 1.1; honoured if a server sends it
    session: state.session_id,
    at: Date.now(),
  };
  hints.unshift(hint);
  hints.splice(HINTS_KEEP);
  if (hint.severity === "act_now") {
    actNow = hint;
    navigator.vibrate?.([120, 60, 120]); // the owner may be looking at the shelf, not the screen
  }
  renderHints();
}

// ---- actions --------------------------------------------------------------------------

function send(msg) {
  lastSent.set(msg.type, msg);
  if (socket.send(msg)) return true;
  toast(errorText("not_ready"), "error");
  return false;
}

$("#golive-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const title = $("#golive-title").value.trim();
  const msg = { type: "go_live" };
  if (title) msg.title = title;
  packs.addTo(msg);
  if (send(msg)) {
    goLiveSentAt = Date.now();
    renderControls();
    setTimeout(renderControls, GO_LIVE_WAIT_MS + 50); // no answer → let them try again
  }
});

$("#endlive-btn").addEventListener("click", () => {
  // Two taps, because ending a stream by a stray touch in a busy shop is expensive.
  if (Date.now() > endArmedUntil) {
    endArmedUntil = Date.now() + END_CONFIRM_MS;
    renderControls();
    setTimeout(renderControls, END_CONFIRM_MS + 50);
    return;
  }
  endArmedUntil = 0;
  send({ type: "end_live" });
  renderControls();
});

$("#offer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const errBox = $("#offer-form-error");
  const price = yuanToMinor($("#offer-price").value);
  const qty = parseCount($("#offer-qty").value);
  const duration = parseCount($("#offer-duration").value);
  const limit = parseCount($("#offer-limit").value);
  if (price === null) {
    errBox.textContent = t("offerform.bad_price");
    $("#offer-price").focus();
    return;
  }
  if (qty === null || duration === null || limit === null) {
    errBox.textContent = t("offerform.bad_int");
    return;
  }
  errBox.textContent = "";
  send({
    type: "offer_start",
    sku: $("#offer-sku").value,
    price,
    qty,
    duration_s: duration,
    per_user_limit: limit,
  });
});

$("#offer-sku").addEventListener("change", suggestOfferPrice);

/** Show the product's shelf price in the empty deal-price field, as the reference. */
function suggestOfferPrice() {
  const p = state.products.get($("#offer-sku").value);
  $("#offer-price").placeholder = p ? t("price.was", { amount: money(p.price) }) : "9.90";
}

$("#restock-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const qty = parseCount($("#restock-qty").value, -1e9);
  if (qty === null || qty === 0) {
    $("#restock-error").textContent = t("restock.bad_qty");
    return;
  }
  $("#restock-error").textContent = "";
  if (send({ type: "restock", sku: $("#restock-sku").value, qty })) toast(t("sent"));
});

$("#act-now-dismiss").addEventListener("click", () => {
  actNow = null;
  renderHints();
});

function pin(sku) {
  send({ type: "pin", sku });
}

/** The offer an act_now hint is about, while it still runs (null when it is over). */
function liveOfferOf(hint) {
  for (const o of state.offers.values()) {
    const same = hint.offer_id ? o.offer_id === hint.offer_id : o.sku === hint.sku;
    if (same && offerStatus(state, o) === "live") return o;
  }
  return null;
}

/** True when what the banner urges is over: its offer ended, its session ended, or it is old. */
function actNowMoot(hint) {
  if (Date.now() - hint.at > ACT_NOW_MAX_MS) return true;
  if (!state.live || state.session_id !== hint.session) return true; // ended, or a new session
  // offer_ending is about one running offer; release_offer is moot once any offer runs.
  if (hint.code === "offer_ending" || hint.offer_id) return liveOfferOf(hint) === null;
  if (hint.code === "release_offer") {
    return [...state.offers.values()].some((o) => offerStatus(state, o) === "live");
  }
  return false;
}

function expireActNow() {
  if (actNow && actNowMoot(actNow)) {
    actNow = null;
    renderHints();
  }
}

// ---- rendering ------------------------------------------------------------------------

function renderAll() {
  renderHeader();
  renderControls();
  renderStats();
  renderProducts();
  renderOffers();
  groups.render();
  packs.render();
  prompter.render();
  bands.render();
  mod.render();
  polls.relabel();
  draws.cards.render();
  schedule.render();
  renderChart();
  renderTop();
  renderHints();
  renderChat();
  banner.redraw();
}

function renderHeader() {
  setText($("#store-name"), state.name || t("page.console"));
  setText($("#room-title"), `${t("page.console")} · ${room}`);
  const badge = $("#live-badge");
  badge.dataset.live = String(state.live);
  setText(badge, t(state.live ? "live.on" : "live.off"));
  document.title = `${t("page.console")} · ${state.name || room}`;
}

function renderControls() {
  const ready = socket.ready && state.role === "broadcaster";
  $("#golive-form").hidden = state.live;
  // after end_live: the review (复盘) of the session that just ended
  const ended = !state.live && state.session_id;
  $("#report-link").hidden = !ended;
  if (ended) $("#report-link").href = `/report/${encodeURIComponent(room)}/${encodeURIComponent(state.session_id)}`;
  $("#live-info").hidden = !state.live;
  const waiting = Date.now() - goLiveSentAt < GO_LIVE_WAIT_MS;
  $("#golive-btn").disabled = !ready || waiting || packs.blocking();
  setText($("#golive-btn"), packs.buttonLabel());
  $("#golive-btn").setAttribute("aria-busy", String(waiting));
  setText($("#live-title"), state.title || "—");
  setText($("#live-session"), state.session_id ? t("live.session", { id: state.session_id }) : "");
  const end = $("#endlive-btn");
  const armed = Date.now() < endArmedUntil;
  end.disabled = !ready;
  end.classList.toggle("armed", armed);
  setText(end, t(armed ? "endlive.confirm" : "endlive.button"));
  for (const b of document.querySelectorAll("#offer-start, #restock-btn, .stop-btn")) {
    b.disabled = !ready;
  }
  for (const b of document.querySelectorAll(".pin-btn")) {
    b.disabled = !ready || b.dataset.pinned === "true";
  }
}

function renderStats() {
  // Between stats messages (and when not live) the room's own viewer count still moves.
  const s = stats && stats.session_id === state.session_id ? stats : null;
  const tile = (id, value, text) => {
    const node = $(id);
    node.dataset.value = String(value); // the raw figure, for tests and tools
    setText(node, text);
  };
  const viewers = s?.viewers ?? state.viewers;
  const peak = Math.max(s?.peak ?? 0, state.peak ?? 0);
  tile("#stat-viewers", viewers, count(viewers));
  tile("#stat-peak", peak, count(peak));
  tile("#stat-orders", s?.orders ?? 0, count(s?.orders ?? 0));
  tile("#stat-units", s?.units ?? 0, count(s?.units ?? 0));
  tile("#stat-gmv", s?.gmv ?? 0, moneyCompact(s?.gmv ?? 0));
  tile("#stat-conversion", s?.conversion ?? 0, percent(s?.conversion ?? 0));
  // Units sold but not in the order database for too long: red, for someone to call HQ.
  const alarm = s?.reconcile?.alarm ?? "";
  const unstored = $("#tile-unstored");
  unstored.hidden = !alarm;
  unstored.dataset.alarm = alarm;
  tile("#stat-unstored", s?.reconcile?.delta ?? 0, count(s?.reconcile?.delta ?? 0));
}

function fillSelect(select, products, label) {
  const keep = select.value;
  const want = products.map((p) => `${p.sku}\u0000${label(p)}`).join("\n");
  if (select.dataset.options !== want) {
    select.replaceChildren(...products.map((p) => el("option", { value: p.sku, text: label(p) })));
    select.dataset.options = want;
  }
  if (products.some((p) => p.sku === keep)) select.value = keep;
}

function renderProducts() {
  const products = [...state.products.values()];
  fillSelect($("#offer-sku"), products, (p) => `${p.name ?? p.sku} · ${money(p.price)}`);
  fillSelect($("#restock-sku"), products, (p) => p.name ?? p.sku);
  suggestOfferPrice();
  groups.renderProducts();
  bands.render();
  $("#stock-list").replaceChildren(
    ...products.map((p) => {
      const pinned = state.pinned === p.sku;
      return el(
        "li",
        { class: `stock-row${pinned ? " is-pinned" : ""}`, dataset: { sku: p.sku, stock: p.stock } },
        productThumb(p),
        el(
          "div",
          { class: "stock-info" },
          el("div", { class: "stock-name", text: p.name ?? p.sku }),
          el("div", { class: "stock-meta num", text: `${money(p.price)} · ${t("stock", { n: count(p.stock) })}` }),
        ),
        el("button", {
          type: "button",
          class: `btn pin-btn${pinned ? " ghost" : ""}`,
          dataset: { pinned: String(pinned) },
          text: t(pinned ? "pinned" : "pin"),
          disabled: pinned || !socket.ready,
          onclick: () => pin(p.sku),
        }),
      );
    }),
  );
  renderControls();
}

function renderOffers() {
  const running = [...state.offers.values()]
    .filter((o) => offerStatus(state, o) === "live")
    .sort((a, b) => a.ends_at - b.ends_at);
  const list = $("#offer-list");
  if (!running.length) {
    list.replaceChildren(el("li", { class: "empty", text: t("offers.none") }));
    return;
  }
  list.replaceChildren(
    ...running.map((o) =>
      el(
        "li",
        { class: "offer-row", dataset: { offer: o.offer_id } },
        el(
          "div",
          { class: "offer-row-info" },
          el("div", { class: "offer-row-name", text: state.products.get(o.sku)?.name ?? o.sku }),
          el("div", {
            class: "offer-row-meta num",
            text: t("offers.row", {
              price: money(o.price),
              left: count(offerLeft(state, o)),
              qty: count(o.qty),
              limit: o.per_user_limit,
            }),
          }),
        ),
        el("span", { class: "countdown num", text: countdown(o.ends_at - serverNow(state)) }),
        el("button", {
          type: "button",
          class: "btn secondary stop-btn",
          text: t("offers.stop"),
          disabled: !socket.ready,
          onclick: () => send({ type: "offer_stop", offer_id: o.offer_id }),
        }),
      ),
    ),
  );
}

function renderChart() {
  drawChart($("#chart"), series, {
    viewers: t("chart.viewers"),
    orders: t("chart.orders"),
    empty: t("chart.empty"),
  });
}

function renderTop() {
  const top = stats?.top ?? [];
  const list = $("#top-list");
  if (!top.length) {
    list.replaceChildren(el("li", { class: "empty", text: t("top.empty") }));
    return;
  }
  const most = Math.max(1, ...top.map((r) => r.units));
  list.replaceChildren(
    ...top.slice(0, 5).map((r) =>
      el(
        "li",
        { class: "top-row", dataset: { sku: r.sku } },
        el("span", { class: "top-name", text: state.products.get(r.sku)?.name ?? r.sku }),
        el("span", { class: "top-figures num", text: t("top.row", { units: count(r.units), gmv: money(r.gmv) }) }),
        el("span", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${(100 * r.units) / most}%` })),
      ),
    ),
  );
}

function hintActions(hint) {
  if (!hint.sku || !state.products.has(hint.sku) || state.pinned === hint.sku) return [];
  // The hint names a product: the obvious next step is one tap away.
  return [
    el("button", {
      type: "button",
      class: "btn small",
      text: `${t("pin")} · ${state.products.get(hint.sku).name}`,
      onclick: () => pin(hint.sku),
    }),
  ];
}

function renderHints() {
  const box = $("#act-now");
  box.hidden = !actNow;
  box.dataset.code = actNow?.code ?? ""; // for tests and tools, like data-status on offers
  document.body.classList.toggle("has-act-now", Boolean(actNow));
  if (actNow) {
    setText($("#act-now-text"), actNow.text);
    $("#act-now-actions").replaceChildren(...hintActions(actNow));
  }
  const list = $("#hint-list");
  if (!hints.length) {
    list.replaceChildren(el("li", { class: "empty", text: t("hints.empty") }));
    return;
  }
  list.replaceChildren(
    ...hints.map((h) =>
      el(
        "li",
        { class: `hint ${h.severity}`, dataset: { code: h.code } },
        h.severity === "act_now" ? el("span", { class: "hint-tag", text: t("hint.act_now") }) : null,
        el("span", { class: "hint-text", text: h.text }),
        el("time", { class: "hint-time num", text: new Date(h.at).toTimeString().slice(0, 5) }),
      ),
    ),
  );
}

function renderChat() {
  const list = $("#chat-list");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = chat.map((m) =>
    el(
      "li",
      {
        class: `mod-line${mod.target === m ? " selected" : ""}`,
        dataset: { msgId: m.msgId ?? "", user: m.user },
        tabindex: "0",
        onclick: () => {
          mod.open(m);
          renderChat();
        },
      },
      m.badge ? el("span", { class: `chat-badge ${m.badge}`, text: t(`badge.${m.badge}`) }) : null,
      el("span", { class: "chat-user", text: nickname(m.user) }),
      el("span", { class: "chat-text", text: m.text }),
    ),
  );
  if (!items.length) items.push(el("li", { class: "chat-empty", text: t("chat.empty") }));
  list.replaceChildren(...items);
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

// Offer countdowns tick between messages.
setInterval(() => {
  for (const row of document.querySelectorAll("#offer-list .offer-row")) {
    const o = state.offers.get(row.dataset.offer);
    if (!o || offerStatus(state, o) !== "live") {
      renderOffers();
      return;
    }
    setText(row.querySelector(".countdown"), countdown(o.ends_at - serverNow(state)));
  }
}, 250);
// Poll and draw countdowns too.
setInterval(() => {
  polls.cards.tick();
  draws.cards.tick();
}, 500);
// The banner also goes by the clock: an offer's time running out, or the banner's age.
setInterval(expireActNow, 1_000);
new ResizeObserver(() => renderChart()).observe($("#chart").parentElement);

const relabel = bindLangToggle();
onLangChange((lang) => {
  relabel();
  renderAll();
  socket.setLang(lang); // hints are written by the server in the language of hello
});
renderAll();
socket.start();
