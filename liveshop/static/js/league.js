// HQ's league as data: the rows of `/ws/hq` merged from `welcome` and `league` messages,
// the chain medians, each live row's weakest figure, filtering, sorting and totals.
// Pure functions and one socket subclass; no DOM (leaguetable.js draws what this computes).

import { RoomSocket, wsUrl } from "./socket.js";

/** The table's columns in order; `num` columns sort descending on the first click. */
export const COLUMNS = [
  { key: "room", num: false },
  { key: "region", num: false },
  { key: "live", num: false },
  { key: "viewers", num: true },
  { key: "peak", num: true },
  { key: "orders", num: true },
  { key: "units", num: true },
  { key: "gmv", num: true },
  { key: "conversion", num: true },
  { key: "holds", num: true },
  { key: "groups_open", num: true },
  { key: "hints", num: true },
  { key: "pack", num: false },
];

/** The figures a live row is compared on against the chain's median. */
export const MEDIAN_METRICS = ["viewers", "conversion", "orders", "gmv"];
/** A figure under half the chain's median is flagged. */
export const WEAK_RATIO = 0.5;
/** What the totals row adds up over the rows shown. */
export const TOTALS = ["viewers", "orders", "units", "gmv"];

/** `/ws/hq` speaks the room socket's hello, ping and bye: only the path differs. */
export class LeagueSocket extends RoomSocket {
  constructor(options) {
    super({ ...options, room: "*" });
  }

  url() {
    return wsUrl("/ws/hq");
  }
}

/** Merge a `league` row (its `room` and only the fields that changed) into `rows`
 * (room → row). Returns the fields whose value changed; a room new to us: every field. */
export function mergeRow(rows, partial) {
  const row = rows.get(partial.room);
  if (!row) {
    rows.set(partial.room, { pack: null, ...partial });
    return new Set(Object.keys(partial));
  }
  const changed = new Set();
  for (const [key, value] of Object.entries(partial)) {
    if (key === "room" || row[key] === value) continue;
    row[key] = value;
    changed.add(key);
  }
  return changed;
}

/** The median of finite numbers (the mean of the middle two for an even count); null if none. */
export function median(values) {
  const xs = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!xs.length) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Metric → median over the chain's live rooms (all of them, whatever the filters show). */
export function chainMedians(rows) {
  const live = [...rows.values()].filter((r) => r.live);
  return Object.fromEntries(MEDIAN_METRICS.map((m) => [m, median(live.map((r) => r[m]))]));
}

/**
 * A live row's weakest figure: the metric with the lowest value / chain median, if that
 * ratio is under WEAK_RATIO, as {field, ratio, median}; else null. A median of zero says
 * nothing about a room (half the chain has sold nothing yet), so that metric is skipped.
 */
export function weakest(row, medians) {
  if (!row.live) return null;
  let worst = null;
  for (const field of MEDIAN_METRICS) {
    const mid = medians[field];
    if (!mid || !Number.isFinite(row[field])) continue;
    const ratio = row[field] / mid;
    if (worst === null || ratio < worst.ratio) worst = { field, ratio, median: mid };
  }
  return worst && worst.ratio < WEAK_RATIO ? worst : null;
}

/** The pack filter's value for "rooms without a pack" (no pack id has parentheses). */
export const NO_PACK = "(none)";

/** Does a row pass the filters {region, pack, text, liveOnly}? "" means any. */
export function passes(row, filter) {
  if (filter.liveOnly && !row.live) return false;
  if (filter.region && (row.region || "") !== filter.region) return false;
  if (filter.pack === NO_PACK && row.pack) return false;
  if (filter.pack && filter.pack !== NO_PACK && row.pack !== filter.pack) return false;
  const q = filter.text?.trim().toLowerCase();
  if (q && !`${row.room} ${row.name ?? ""}`.toLowerCase().includes(q)) return false;
  return true;
}

const isEmpty = (v) => v === null || v === undefined || v === "";

/** A comparator for `field` ("asc" | "desc"): empty text last either way, ties by room id. */
export function comparator(field, dir) {
  const sign = dir === "asc" ? 1 : -1;
  const value = (r) => (field === "live" ? Number(Boolean(r.live)) : r[field]);
  return (a, b) => {
    const [x, y] = [value(a), value(b)];
    let c;
    if (isEmpty(x) || isEmpty(y)) c = Number(isEmpty(x)) - Number(isEmpty(y));
    else if (typeof x === "number" && typeof y === "number") c = sign * (x - y);
    else c = sign * String(x).localeCompare(String(y), "zh-CN");
    return c || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0);
  };
}

/** Sums of TOTALS over `rows`, plus how many rows and how many of them are live. */
export function totals(rows) {
  const out = { rooms: 0, live: 0 };
  for (const m of TOTALS) out[m] = 0;
  for (const r of rows) {
    out.rooms += 1;
    if (r.live) out.live += 1;
    for (const m of TOTALS) out[m] += Number.isFinite(r[m]) ? r[m] : 0;
  }
  return out;
}

/** The distinct non-empty values of `field` over the rows, sorted. */
export function distinct(rows, field) {
  const seen = new Set();
  for (const r of rows.values()) if (r[field]) seen.add(r[field]);
  return [...seen].sort();
}
