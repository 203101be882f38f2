// The store page's 拼团 section (#group-orders): the orders that belong to a group buy
// (they carry `group_id`), one block per group, split by outcome: 拼团中 (pending_group,
// or a pay-first member not paid yet), 已成团 (accepted, paid, ready, picked up …) and
// 未成团 (cancelled with reason group_failed). Read-only: the order cards on the board above
// keep their buttons. Owns #group-orders' contents; store.js hands it each refresh's orders.

import { count, nickname } from "./format.js";
import { t } from "./i18n.js";
import { methodOf, pickupCode, stateLabel } from "./orders.js";
import { orderOutcome, shortGroupId } from "./groups.js";
import { el } from "./ui.js";

const OUTCOMES = ["pending", "succeeded", "failed", "other"];
const SHOW_PER_OUTCOME = 20;

const newest = (o) => o.updated_at ?? o.created_at ?? 0;

/** group_id → {id, sku, orders, byOutcome: Map(outcome → orders)}, only orders with a group. */
export function groupOrders(orders) {
  const groups = new Map();
  for (const o of orders) {
    if (!o.group_id) continue;
    let g = groups.get(o.group_id);
    if (!g) {
      g = { id: o.group_id, sku: o.sku, orders: [], byOutcome: new Map(OUTCOMES.map((k) => [k, []])) };
      groups.set(o.group_id, g);
    }
    g.orders.push(o);
    g.byOutcome.get(orderOutcome(o)).push(o);
  }
  return groups;
}

/** What the group came to, from its members: any 已成团 wins, then 拼团中, then 未成团. */
function blockOutcome(g) {
  for (const k of ["succeeded", "pending", "failed"]) if (g.byOutcome.get(k).length) return k;
  return "other";
}

const units = (list) => list.reduce((n, o) => n + (o.qty ?? 0), 0);

/** The 拼团 chip for the board's jump strip. */
export function groupChip(orders) {
  const n = orders.filter((o) => o.group_id).length;
  return el(
    "a",
    { class: "board-chip", href: "#group-orders", dataset: { group: "groups", count: String(n) } },
    el("span", { text: t("board.groups") }),
    el("span", { class: "chip-count num", text: String(n) }),
  );
}

let lastSignature = "";

/** Redraw #group-orders from the board's orders (a Map or array); skipped when nothing changed. */
export function renderGroupOrders(root, orders, names) {
  const all = [...orders.values()];
  const groups = [...groupOrders(all).values()];
  const sig = JSON.stringify([
    document.documentElement.lang,
    groups.map((g) => [
      g.id,
      names.get(g.sku),
      g.orders.map((o) => [o.order_id, o.state, o.version, o.reason, o.refund?.state]),
    ]),
  ]);
  if (sig === lastSignature) return;
  lastSignature = sig;
  const rank = (g) => OUTCOMES.indexOf(blockOutcome(g));
  const latest = (g) => Math.max(...g.orders.map(newest));
  groups.sort((a, b) => rank(a) - rank(b) || latest(b) - latest(a));
  root.dataset.count = String(groups.length);
  const title = el("h2", { id: "group-orders-h", text: t("storegroups.title") });
  const body = groups.length
    ? el("div", { class: "go-list" }, ...groups.map((g) => block(g, names)))
    : el("p", { class: "muted go-empty", text: t("storegroups.empty") });
  root.replaceChildren(title, body);
}

function block(g, names) {
  const outcome = blockOutcome(g);
  const name = names.get(g.sku) ?? g.sku ?? "—";
  return el(
    "section",
    { class: "go-block", dataset: { groupId: g.id, outcome, count: String(g.orders.length) } },
    el(
      "div",
      { class: "go-head" },
      el(
        "span",
        { class: "go-title" },
        el("span", { text: name }),
        el("span", { class: "go-id mono", text: t("storegroups.id", { id: shortGroupId(g.id) }) }),
      ),
      el("span", {
        class: "go-sum num",
        text: t("storegroups.count", { orders: count(g.orders.length), units: count(units(g.orders)) }),
      }),
    ),
    ...OUTCOMES.filter((k) => g.byOutcome.get(k).length).map((k) => outcomeList(k, g.byOutcome.get(k))),
  );
}

function outcomeList(outcome, list) {
  const sorted = [...list].sort((a, b) => newest(b) - newest(a));
  const shown = sorted.slice(0, SHOW_PER_OUTCOME);
  return el(
    "div",
    { class: "go-outcome", dataset: { outcome, count: String(list.length) } },
    el(
      "div",
      { class: "go-outcome-h" },
      el("span", { class: "go-badge", text: t(`storegroups.${outcome}`) }),
      el("span", {
        class: "num",
        text: t("storegroups.count", { orders: count(list.length), units: count(units(list)) }),
      }),
    ),
    el("ul", { class: "go-orders" }, ...shown.map(orderLine)),
    shown.length < list.length
      ? el("p", { class: "muted", text: t("board.more", { n: list.length - shown.length }) })
      : null,
  );
}

function orderLine(o) {
  const code = methodOf(o) === "delivery" ? t("storegroups.delivery") : pickupCode(o);
  const who = o.user_id ? nickname(o.user_id) : "";
  return el(
    "li",
    { class: "go-order", dataset: { orderId: o.order_id, state: o.state } },
    el("span", { class: "go-code num", text: code ?? "—" }),
    el("span", { class: "go-who", text: [who, `×${o.qty ?? 1}`].filter(Boolean).join(" ") }),
    el("span", {
      class: "go-state",
      text: [stateLabel(o.state), o.refund ? t(`refund.${o.refund.state}`) : null]
        .filter(Boolean)
        .join(" · "),
    }),
  );
}
