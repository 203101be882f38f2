// The console's group buying (拼团): the start form (#group-form: price typed in yuan, sent
// in fen; duration in minutes, sent in seconds) and the live list of the room's groups
// (#group-list) with progress, countdown, status and 取消拼团 (two taps). Owns those two
// elements; the console page feeds it the room state and the refusals meant for it.

import { bandRefusal } from "./bandfield.js";
import { count, money, parseCount, yuanToMinor } from "./format.js";
import { has, t } from "./i18n.js";
import {
  groupClock,
  groupLeft,
  groupOrder,
  groupPercent,
  groupPhase,
  isClosed,
  phaseLabel,
  progressText,
  visibleGroups,
} from "./groups.js";
import { serverNow } from "./room.js";
import { $, el, errorText, setText, syncKeyed, toast } from "./ui.js";

const TICK_MS = 500;
const START_WAIT_MS = 8_000; // no group and no error by then: let the owner try again
const CANCEL_CONFIRM_MS = 4_000;
const CANCEL_WAIT_MS = 8_000;
const THRESHOLD_MAX = 10_000;
const MINUTES_MIN = 10; // duration_s 600..259200
const MINUTES_MAX = 4_320;

export class GroupPanel {
  /**
   * @param {object} o
   * @param {() => object} o.getState  the room state (room.js)
   * @param {() => boolean} o.isReady  connected, with a broadcaster token
   * @param {(msg: object) => boolean} o.send  the console's send (says so when offline)
   */
  constructor({ getState, isReady, send }) {
    this.getState = getState;
    this.isReady = isReady;
    this.send = send;
    this.starting = null; // {req, known: Set of group ids, until}: a group_start in flight
    this.lastStart = null;
    this.armed = new Map(); // group_id → until: first tap on 取消拼团
    this.cancelling = new Map(); // group_id → until: group_cancel sent
    $("#group-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    $("#group-sku").addEventListener("change", () => this.suggestPrice());
    setInterval(() => this.render(), TICK_MS);
  }

  // ---- the form ------------------------------------------------------------------------

  fail(text, field) {
    setText($("#group-form-error"), text);
    if (field) $(field).focus();
  }

  submit() {
    const state = this.getState();
    const sku = $("#group-sku").value;
    const price = yuanToMinor($("#group-price").value);
    const threshold = parseCount($("#group-threshold").value, 2);
    const minutes = parseCount($("#group-duration").value, MINUTES_MIN);
    const cap = parseCount($("#group-cap").value);
    const limit = parseCount($("#group-limit").value);
    const metric = $("#group-metric").value === "units" ? "units" : "buyers";
    if (price === null) return this.fail(t("groupform.bad_price"), "#group-price");
    if (threshold === null || threshold > THRESHOLD_MAX) {
      return this.fail(t("groupform.bad_threshold"), "#group-threshold");
    }
    if (minutes === null || minutes > MINUTES_MAX) {
      return this.fail(t("groupform.bad_duration"), "#group-duration");
    }
    if (cap === null) return this.fail(t("groupform.bad_int"), "#group-cap");
    if (limit === null) return this.fail(t("groupform.bad_int"), "#group-limit");
    if (metric === "units" && cap < threshold) return this.fail(t("groupform.cap_below"), "#group-cap");
    const p = state.products.get(sku);
    if (p && typeof p.stock === "number" && cap > p.stock) {
      return this.fail(t("groupform.cap_short", { left: count(p.stock) }), "#group-cap");
    }
    setText($("#group-form-error"), "");
    const req = {
      type: "group_start",
      sku,
      price,
      threshold,
      metric,
      duration_s: minutes * 60,
      cap,
      per_user_limit: limit,
    };
    this.lastStart = req;
    if (!this.send(req)) return;
    this.starting = { req, known: new Set(state.groups.keys()), until: Date.now() + START_WAIT_MS };
    this.render();
  }

  /** The product's shelf price in the empty group-price field, as the reference. */
  suggestPrice() {
    const p = this.getState().products.get($("#group-sku").value);
    $("#group-price").placeholder = p ? t("price.was", { amount: money(p.price) }) : "14.90";
  }

  renderProducts() {
    const select = $("#group-sku");
    const products = [...this.getState().products.values()];
    const keep = select.value;
    const want = products.map((p) => `${p.sku}\u0000${p.name}\u0000${p.price}`).join("\n");
    if (select.dataset.options !== want) {
      select.replaceChildren(
        ...products.map((p) =>
          el("option", { value: p.sku, text: `${p.name ?? p.sku} · ${money(p.price)}` }),
        ),
      );
      select.dataset.options = want;
    }
    if (products.some((p) => p.sku === keep)) select.value = keep;
    this.suggestPrice();
  }

  /** An `error` about a group request: shown by the form (start) or as a toast (cancel).
   * Returns false when it is about something else. */
  error(msg) {
    if (msg.ref === "group_start") {
      this.starting = null;
      setText($("#group-form-error"), this.startRefusal(msg));
      this.render();
      return true;
    }
    if (msg.ref === "group_cancel") {
      this.cancelling.clear();
      const known = msg.code !== "bad_message" && has(`err.${msg.code}`);
      toast(known ? errorText(msg.code) : t("refused.group_cancel"), "error");
      this.render();
      return true;
    }
    return false;
  }

  /** Why a start was refused, in the owner's words: from the page's own state where it can
   * tell (the shelf is short), else the server's detail beside a plain sentence. */
  startRefusal(msg) {
    const req = this.lastStart;
    const p = req ? this.getState().products.get(req.sku) : null;
    if (p && typeof p.stock === "number" && req.cap > p.stock) {
      return t("groupform.cap_short", { left: count(p.stock) });
    }
    if (msg.code === "not_live") return t("groupform.not_live");
    if (bandRefusal(msg)) return bandRefusal(msg);
    if (msg.code !== "bad_message" && has(`err.${msg.code}`)) return errorText(msg.code);
    const base = t("refused.group_start");
    return msg.message ? `${base} (${msg.message})` : base;
  }

  // ---- the list ------------------------------------------------------------------------

  tapCancel(id) {
    const now = Date.now();
    if ((this.armed.get(id) ?? 0) < now) {
      this.armed.set(id, now + CANCEL_CONFIRM_MS); // two taps: members lose their orders
      this.render();
      return;
    }
    this.armed.delete(id);
    if (this.send({ type: "group_cancel", group_id: id })) this.cancelling.set(id, now + CANCEL_WAIT_MS);
    this.render();
  }

  /** Called with every group message: notices the group we started, and a cancel landing. */
  onGroup(msg) {
    const s = this.starting;
    if (s && msg.sku === s.req.sku && !s.known.has(msg.group_id)) {
      this.starting = null;
      setText($("#group-form-error"), "");
      toast(t("groupform.started"));
    }
    if (msg.status === "cancelled" && this.cancelling.delete(msg.group_id)) toast(t("groups.cancelled"));
  }

  render() {
    const now = Date.now();
    for (const map of [this.armed, this.cancelling]) {
      for (const [k, until] of map) if (until < now) map.delete(k);
    }
    if (this.starting && this.starting.until < now) this.starting = null;
    const ready = this.isReady();
    const btn = $("#group-start");
    btn.disabled = !ready || Boolean(this.starting);
    btn.setAttribute("aria-busy", String(Boolean(this.starting)));
    setText(btn, t(this.starting ? "groupform.sending" : "groupform.start"));

    const state = this.getState();
    const at = serverNow(state);
    const groups = visibleGroups(state.groups, at, state.clockOffset).sort(groupOrder(at));
    const list = $("#group-list");
    const rows = groups.length ? groups : [null];
    syncKeyed(
      list,
      rows,
      (g) => g?.group_id ?? "-none-",
      (g) => (g ? this.row(g) : el("li", { class: "empty" })),
      (node, g) => (g ? this.update(node, g, at, ready) : setText(node, t("groups.none"))),
    );
  }

  row(g) {
    return el(
      "li",
      { class: "group-row", dataset: { groupId: g.group_id } },
      el(
        "div",
        { class: "group-row-info" },
        el("div", { class: "group-row-name" }),
        el("div", { class: "group-row-meta num" }),
      ),
      el("span", { class: "group-countdown num" }),
      el(
        "div",
        { class: "group-progress", "aria-hidden": "true" },
        el("span", { class: "group-progress-fill" }),
      ),
      el(
        "div",
        { class: "group-row-foot" },
        el("span", { class: "group-row-figures num" }),
        el("span", { class: "group-state" }),
        el("button", {
          type: "button",
          class: "btn ghost group-cancel",
          dataset: { action: "group-cancel", groupId: g.group_id },
          onclick: () => this.tapCancel(g.group_id),
        }),
      ),
    );
  }

  update(node, g, at, ready) {
    const p = this.getState().products.get(g.sku);
    const phase = groupPhase(g, at);
    const closed = isClosed(phase);
    node.dataset.status = g.status;
    node.dataset.phase = phase;
    node.dataset.value = String(g.value ?? 0);
    node.dataset.threshold = String(g.threshold ?? 0);
    node.dataset.closed = String(closed);
    setText(node.querySelector(".group-row-name"), p?.name ?? g.sku);
    const left = groupLeft(g);
    setText(
      node.querySelector(".group-row-meta"),
      t(closed ? "groups.row_closed" : "groups.row", {
        price: money(g.price),
        left: left === null ? "—" : count(left),
        cap: count(g.cap ?? 0),
        limit: g.per_user_limit ?? "—",
      }),
    );
    setText(node.querySelector(".group-countdown"), closed ? "" : groupClock(g.ends_at - at));
    const bar = node.querySelector(".group-progress");
    bar.dataset.value = String(g.value ?? 0);
    bar.dataset.threshold = String(g.threshold ?? 0);
    bar.dataset.done = String((g.value ?? 0) >= g.threshold);
    node.querySelector(".group-progress-fill").style.width = `${groupPercent(g)}%`;
    setText(node.querySelector(".group-row-figures"), progressText(g));
    const pill = node.querySelector(".group-state");
    pill.dataset.phase = phase;
    setText(pill, phaseLabel(g, phase));
    // Only a group still filling can be cancelled (its members' orders are then cancelled).
    const cancel = node.querySelector(".group-cancel");
    const cancellable = g.status === "open" && !closed;
    const armed = (this.armed.get(g.group_id) ?? 0) > Date.now();
    const busy = this.cancelling.has(g.group_id);
    cancel.hidden = !cancellable;
    cancel.disabled = !ready || busy;
    cancel.classList.toggle("armed", armed);
    cancel.dataset.armed = String(armed);
    if (busy) cancel.setAttribute("aria-busy", "true");
    else cancel.removeAttribute("aria-busy");
    setText(cancel, t(armed ? "groups.cancel_confirm" : "groups.cancel"));
  }
}
