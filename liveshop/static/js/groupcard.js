// The viewer's group cards (#groups): one per group buy (拼团) the room is running or closed
// in the last ten minutes, with the group price, 还差 N 人成团, a progress bar, the
// countdown by the server's clock, the 参团 button and what the buyer's own orders in the
// group say (我已参团 ×N, 拼团成功, 拼团失败，已退款 …). Owns #groups; the viewer page
// feeds it the room state, the purchases table (joins are sent and resent by buy.js) and
// the buyer's orders (myorders.js), and calls render() when any of them changes.

import { Purchases } from "./buy.js";
import { count, money } from "./format.js";
import { t } from "./i18n.js";
import {
  groupClock,
  groupLeft,
  groupOrder,
  groupPercent,
  groupPhase,
  isAccepting,
  isClosed,
  myGroupStatus,
  needText,
  phaseLabel,
  progressText,
  visibleGroups,
} from "./groups.js";
import { serverNow } from "./room.js";
import { $, el, productThumb, setText, syncKeyed } from "./ui.js";

const TICK_MS = 500;

export class GroupCards {
  /**
   * @param {object} o
   * @param {() => object} o.getState  the room state (room.js), current at each call
   * @param {import("./buy.js").Purchases} o.purchases  joins in flight, and sending them
   * @param {() => object[]} o.orders  the buyer's orders (each may carry group_id)
   * @param {() => boolean} o.isAnonymous  no token: may watch, may not join
   * @param {(target: string) => void} o.onTap  a join was sent for that button target
   */
  constructor({ getState, purchases, orders, isAnonymous, onTap }) {
    this.getState = getState;
    this.purchases = purchases;
    this.orders = orders;
    this.isAnonymous = isAnonymous;
    this.onTap = onTap ?? (() => {});
    this.root = $("#groups");
    // Countdowns tick between messages; a group whose time ran out closes by itself.
    setInterval(() => this.render(), TICK_MS);
  }

  tapJoin(groupId) {
    const g = this.getState().groups.get(groupId);
    if (!g) return;
    if (!this.purchases.join({ groupId, sku: g.sku, price: g.price, qty: 1 })) return;
    this.onTap(Purchases.groupTarget(groupId));
  }

  render() {
    const state = this.getState();
    const now = serverNow(state);
    const groups = visibleGroups(state.groups, now, state.clockOffset).sort(groupOrder(now));
    const orders = this.orders();
    syncKeyed(
      this.root,
      groups,
      (g) => g.group_id,
      (g) => this.card(g),
      (node, g) => this.update(node, g, now, orders),
    );
    this.root.hidden = groups.length === 0;
  }

  card(g) {
    return el(
      "section",
      {
        class: "group-card",
        dataset: { groupId: g.group_id, target: Purchases.groupTarget(g.group_id), sku: g.sku },
      },
      el(
        "div",
        { class: "group-head" },
        el("span", { class: "group-tag" }),
        el("span", { class: "group-title" }),
        el("span", { class: "group-state" }),
      ),
      el(
        "div",
        { class: "group-body" },
        el("span", { class: "group-thumb" }),
        el(
          "div",
          { class: "group-prices" },
          el("span", { class: "group-price num" }),
          el("s", { class: "group-was num" }),
        ),
        el("button", {
          type: "button",
          class: "btn group-join",
          dataset: { groupId: g.group_id },
          onclick: () => this.tapJoin(g.group_id),
        }),
      ),
      el(
        "div",
        { class: "group-line" },
        el("span", { class: "group-need" }),
        el("span", { class: "group-figures num" }),
      ),
      el(
        "div",
        { class: "group-progress", role: "progressbar", "aria-valuemin": "0" },
        el("span", { class: "group-progress-fill" }),
      ),
      el(
        "div",
        { class: "group-foot" },
        el(
          "span",
          { class: "group-clock" },
          el("span", { class: "group-ends-label" }),
          el("span", { class: "group-countdown num" }),
        ),
        el("span", { class: "group-left num" }),
        el("span", { class: "group-limit" }),
      ),
      el("div", { class: "group-mine", role: "status" }),
      el("div", { class: "row-msg", role: "status" }),
    );
  }

  update(node, g, now, orders) {
    const state = this.getState();
    const p = state.products.get(g.sku);
    const phase = groupPhase(g, now);
    const closed = isClosed(phase);
    // Machine-readable twins of what the card says, for tests and tools.
    node.dataset.status = g.status;
    node.dataset.phase = phase;
    node.dataset.value = String(g.value ?? 0);
    node.dataset.threshold = String(g.threshold ?? 0);
    node.dataset.closed = String(closed);
    node.dataset.metric = g.metric === "units" ? "units" : "buyers";

    const multi = Array.isArray(g.rooms) && g.rooms.length > 1; // a cross-store deal
    setText(node.querySelector(".group-tag"), t(multi ? "group.multi" : "group.label"));
    setText(node.querySelector(".group-title"), p?.name ?? g.sku);
    const pill = node.querySelector(".group-state");
    pill.dataset.phase = phase;
    setText(pill, phaseLabel(g, phase));

    const thumb = node.querySelector(".group-thumb");
    const thumbKey = `${g.sku}|${p?.name ?? ""}|${p?.image ?? ""}`;
    if (thumb.dataset.for !== thumbKey) {
      thumb.replaceChildren(productThumb(p ?? { sku: g.sku, name: g.sku }));
      thumb.dataset.for = thumbKey;
    }
    setText(node.querySelector(".group-price"), money(g.price));
    setText(node.querySelector(".group-was"), p && p.price > g.price ? money(p.price) : "");

    const need = node.querySelector(".group-need");
    need.dataset.need = String(Math.max(0, (g.threshold ?? 0) - (g.value ?? 0)));
    setText(need, needText(g, phase));
    setText(node.querySelector(".group-figures"), progressText(g));
    const bar = node.querySelector(".group-progress");
    bar.dataset.value = String(g.value ?? 0);
    bar.dataset.threshold = String(g.threshold ?? 0);
    bar.setAttribute("aria-valuemax", String(g.threshold ?? 0));
    bar.setAttribute("aria-valuenow", String(Math.min(g.value ?? 0, g.threshold ?? 0)));
    bar.dataset.done = String((g.value ?? 0) >= g.threshold);
    node.querySelector(".group-progress-fill").style.width = `${groupPercent(g)}%`;

    const running = !closed && typeof g.ends_at === "number";
    setText(node.querySelector(".group-ends-label"), running ? t("group.ends_in") : "");
    const clock = node.querySelector(".group-countdown");
    setText(clock, running ? groupClock(g.ends_at - now) : "");
    clock.dataset.endsAt = String(g.ends_at ?? "");
    const left = groupLeft(g);
    const leftBox = node.querySelector(".group-left");
    leftBox.dataset.left = left === null ? "" : String(left);
    setText(leftBox, left === null || closed || phase === "full" ? "" : t("group.left", { n: count(left) }));
    setText(
      node.querySelector(".group-limit"),
      typeof g.per_user_limit === "number" && !closed ? t("group.limit", { n: g.per_user_limit }) : "",
    );

    const mine = myGroupStatus(g, orders);
    const mineBox = node.querySelector(".group-mine");
    mineBox.dataset.mine = mine.key;
    mineBox.dataset.units = String(mine.units);
    setText(mineBox, mine.text);

    this.updateButton(node.querySelector(".group-join"), g, phase, mine);
  }

  /** The 参团 button, from everything that can stop a join (as buyButtonState does for buys). */
  updateButton(btn, g, phase, mine) {
    const target = Purchases.groupTarget(g.group_id);
    const pending = this.purchases.isPending(target);
    const limit = g.per_user_limit;
    let label;
    let disabled = true;
    if (this.isAnonymous()) label = t("group.join.signin");
    else if (pending) label = t("group.join.pending");
    else if (phase === "full") label = t("group.join.full");
    else if (!isAccepting(phase)) label = t("group.join.ended");
    else if (!this.getState().live) label = t("group.join.notlive");
    else if (typeof limit === "number" && limit > 0 && mine.units >= limit) label = t("group.join.limit");
    else {
      label = t(mine.units > 0 ? "group.join_more" : "group.join");
      disabled = false;
    }
    btn.disabled = disabled;
    setText(btn, label);
    if (pending) btn.setAttribute("aria-busy", "true");
    else btn.removeAttribute("aria-busy");
    btn.dataset.state = pending ? "pending" : disabled ? "disabled" : "ready";
  }
}
