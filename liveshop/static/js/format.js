// Number and money formatting shared by both pages. Pure functions, no DOM.
// Money stays in integer minor units (fen) everywhere; only these helpers turn it into text.

/** 1990 → "¥19.90". Integer arithmetic so a price never shows as ¥19.899999. */
export function money(minor) {
  if (!Number.isFinite(minor)) return "¥—";
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(Math.round(minor));
  const yuan = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}¥${yuan}.${String(abs % 100).padStart(2, "0")}`;
}

/** For tight tiles: whole yuan from ¥1,000 up (¥12,346), full money() below. */
export function moneyCompact(minor) {
  if (!Number.isFinite(minor) || Math.abs(minor) < 100_000) return money(minor);
  return `¥${Math.round(minor / 100).toLocaleString("en-US")}`;
}

/**
 * "9.9" → 990, "12" → 1200, "0.05" → 5; anything else (more than two decimals, signs,
 * letters, zero) → null. Parsed as text, not as a float, so "19.90" is exactly 1990.
 */
export function yuanToMinor(text) {
  const m = /^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(String(text));
  if (!m) return null;
  const minor = Number(m[1]) * 100 + Number((m[2] ?? "").padEnd(2, "0"));
  return minor > 0 ? minor : null;
}

/** A whole number ≥ min from a form field, or null. */
export function parseCount(text, min = 1) {
  const s = String(text).trim();
  if (!/^-?\d{1,9}$/.test(s)) return null;
  const n = Number(s);
  return n >= min ? n : null;
}

/** Remaining milliseconds → "m:ss" (or "h:mm:ss"); never negative. */
export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Conversion as sent in `stats` (a ratio, 0.125) → "12.5%". */
export function percent(ratio) {
  if (!Number.isFinite(ratio)) return "—";
  return `${(ratio * 100).toFixed(1)}%`;
}

/** 12345 → "12,345": viewer and order counts read better grouped at arm's length. */
export function count(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—";
}

/** Chat shows a short, stable nickname instead of a raw user id ("u-8f3a2c" → "8f3a2c"). */
export function nickname(user) {
  if (!user) return "?";
  const s = String(user).replace(/^u[-_]/, "");
  return s.length > 10 ? `${s.slice(0, 4)}…${s.slice(-4)}` : s;
}
