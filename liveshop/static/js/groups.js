// Group buying (拼团 / 接龙, protocol 1.1) as data: where a group stands by the server's
// clock, what its card says (还差 N 人成团, the countdown), and what the buyer's own orders
// in it add up to. Shared by the viewer's card, the console's list and the store's 拼团
// section. Pure: no DOM, no socket; room.js keeps the groups themselves.

import { t } from "./i18n.js";

/** A closed group stays on screen, greyed, this long: the server keeps it in welcome as long. */
export const GROUP_LINGER_MS = 10 * 60_000;

/** Order states of a member whose group worked out (the order goes on like any other). */
const SUCCEEDED_STATES = new Set([
  "accepted", "paid", "ready", "out_for_delivery", "picked_up", "delivered", "uncollected",
  "delivery_failed",
]);
/** States in which an order still counts as the buyer being in the group. */
const ACTIVE_STATES = new Set(["pending_group", "awaiting_payment", ...SUCCEEDED_STATES]);

/** Units of the group not yet joined, or null when the server did not say. */
export function groupLeft(g) {
  return typeof g.left === "number" ? Math.max(0, g.left) : null;
}

/**
 * Where a group stands now (`serverNow` in epoch ms, by the server's clock):
 * "open" (accepting, below threshold), "succeeded" (accepting, threshold reached),
 * "full" (open or succeeded but no units left), "ended" (its time is up: a succeeded group
 * closed, or an open one about to be failed by the server), "failed", "cancelled".
 */
export function groupPhase(g, serverNow) {
  if (g.status === "failed" || g.status === "cancelled") return g.status;
  if (typeof g.ends_at === "number" && serverNow >= g.ends_at) return "ended";
  if (groupLeft(g) === 0) return "full";
  return g.status === "succeeded" ? "succeeded" : "open";
}

export function isAccepting(phase) {
  return phase === "open" || phase === "succeeded";
}

/** Greyed out: nothing more will happen to the group. */
export function isClosed(phase) {
  return phase === "ended" || phase === "failed" || phase === "cancelled";
}

/** Buyers (or units, per `metric`) still missing to reach the threshold. */
export function groupNeed(g) {
  return Math.max(0, (g.threshold ?? 0) - (g.value ?? 0));
}

/** value / threshold as a percentage, capped at 100. */
export function groupPercent(g) {
  if (!(g.threshold > 0)) return 0;
  return Math.min(100, Math.max(0, (100 * (g.value ?? 0)) / g.threshold));
}

const metricOf = (g) => (g.metric === "units" ? "units" : "buyers");

/** "还差 3 人成团" / "还差 5 件成团" / "已成团" / "拼团失败" / "已取消". */
export function needText(g, phase) {
  if (g.status === "succeeded" || (g.value ?? 0) >= g.threshold) return t("group.need.done");
  if (phase === "failed") return t(`group.need.failed.${metricOf(g)}`, { n: groupNeed(g) });
  if (phase === "cancelled") return t("group.need.cancelled");
  return t(`group.need.${metricOf(g)}`, { n: groupNeed(g) });
}

/** "7/10 人" or "7/10 件". */
export function progressText(g) {
  return t(`group.progress.${metricOf(g)}`, { value: g.value ?? 0, threshold: g.threshold ?? 0 });
}

/** The status pill: 拼团中, 已成团, 已满, 已截止, 拼团失败, 已取消. */
export function phaseLabel(g, phase) {
  if (phase === "ended") return t(g.status === "succeeded" ? "group.phase.ended_ok" : "group.phase.ended");
  if (phase === "full" && g.status === "succeeded") return t("group.phase.full_ok");
  return t(`group.phase.${phase}`);
}

const two = (n) => String(n).padStart(2, "0");

/** Remaining ms → "1:05:09", or "2天 03:04:05" from a day up (groups run up to 3 days). */
export function groupClock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (d > 0) return t("group.clock.days", { d, hms: `${two(h)}:${two(m)}:${two(s)}` });
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** Groups worth showing: running ones, and closed ones for GROUP_LINGER_MS after closing. */
export function visibleGroups(groups, serverNow, clockOffset = 0, now = Date.now()) {
  return [...groups.values()].filter((g) => {
    const phase = groupPhase(g, serverNow);
    if (!isClosed(phase)) return true;
    return now - closedAtLocal(g, clockOffset, now) < GROUP_LINGER_MS;
  });
}

/** When the group closed, in local ms: the server's `closed_at` if it sends one; for a
 * cancel, when this page saw it; otherwise its `ends_at` (a failure happens then, and a
 * succeeded group stops taking joins then). */
export function closedAtLocal(g, clockOffset = 0, now = Date.now()) {
  if (typeof g.closed_at === "number") return g.closed_at - clockOffset;
  if (g.status === "cancelled") return g.closedAt ?? now;
  if (typeof g.ends_at === "number") return g.ends_at - clockOffset;
  return g.closedAt ?? now;
}

/** Running groups first (soonest end first), then the closed ones, latest first. */
export function groupOrder(serverNow) {
  return (a, b) => {
    const ca = isClosed(groupPhase(a, serverNow));
    const cb = isClosed(groupPhase(b, serverNow));
    if (ca !== cb) return ca ? 1 : -1;
    return ca ? (b.ends_at ?? 0) - (a.ends_at ?? 0) : (a.ends_at ?? 0) - (b.ends_at ?? 0);
  };
}

/**
 * What the buyer's own orders in a group add up to, for the card's "my status" line:
 * {key, units, text} with key one of none, joined (pending_group), unpaid, succeeded,
 * failed, cancelled (the buyer's own order cancelled otherwise).
 */
export function myGroupStatus(g, orders) {
  const mine = orders.filter((o) => o.group_id === g.group_id);
  const active = mine.filter((o) => ACTIVE_STATES.has(o.state));
  const units = active.reduce((n, o) => n + (o.qty ?? 0), 0);
  if (active.some((o) => o.state === "awaiting_payment")) {
    return { key: "unpaid", units, text: t("group.mine.unpaid", { n: units }) };
  }
  if (active.some((o) => SUCCEEDED_STATES.has(o.state))) {
    return { key: "succeeded", units, text: t("group.mine.succeeded", { n: units }) };
  }
  if (active.length) return { key: "joined", units, text: t("group.mine.joined", { n: units }) };
  const failed = mine.filter((o) => o.state === "cancelled" && o.reason === "group_failed");
  if (failed.length) {
    const refunds = failed.map((o) => o.refund?.state).filter(Boolean);
    const how = !refunds.length ? "none" : refunds.every((s) => s === "done") ? "done" : "pending";
    const which = g.status === "cancelled" ? "cancelled" : "failed";
    const n = failed.reduce((s, o) => s + (o.qty ?? 0), 0);
    return { key: which, units: 0, text: t(`group.mine.${which}.${how}`, { n }) };
  }
  if (mine.length) return { key: "cancelled", units: 0, text: t("group.mine.own_cancel") };
  return { key: "none", units: 0, text: "" };
}

/**
 * The outcome an order of a group stands for, on the store page: pending (拼团中, also a
 * pay-first member not paid yet), succeeded (已成团: accepted, paid, ready, picked up …),
 * failed (未成团: cancelled with reason group_failed), other (e.g. cancelled by the buyer).
 */
export function orderOutcome(o) {
  if (o.state === "pending_group" || o.state === "awaiting_payment") return "pending";
  if (SUCCEEDED_STATES.has(o.state)) return "succeeded";
  if (o.state === "cancelled" && o.reason === "group_failed") return "failed";
  return "other";
}

/** A short, readable form of a group id for staff ("g_ab12cd34ef" → "ab12cd"). */
export function shortGroupId(id) {
  const s = String(id ?? "").replace(/^g[-_]/, "");
  return s.length > 8 ? s.slice(0, 6) : s;
}
