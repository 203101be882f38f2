// Form plumbing shared by HQ's editors (catalog, bands, packs): reading yuan and counts
// out of inputs, a button busy while its request runs, the in-page confirmation, and the
// timestamps of versions. No requests and no editor's state live here.

import { money, parseCount, yuanToMinor } from "./format.js";
import { t } from "./i18n.js";
import { $, setText } from "./ui.js";

/** A refusal found before sending: the message names the field. */
export class FormError extends Error {}

/** The trimmed text of an input. */
export function text(input) {
  return input.value.trim();
}

/** Yuan typed in an input → fen; "" → null when `optional`, else a FormError. */
export function yuan(input, label, { optional = false } = {}) {
  const raw = text(input);
  if (!raw && optional) return null;
  const minor = yuanToMinor(raw);
  if (minor === null) throw new FormError(t("form.bad_price", { field: label }));
  return minor;
}

/** A whole number ≥ min; "" → null when `optional`, else a FormError. */
export function whole(input, label, { min = 1, optional = false } = {}) {
  const raw = text(input);
  if (!raw && optional) return null;
  const n = parseCount(raw, min);
  if (n === null) throw new FormError(t("form.bad_count", { field: label, min }));
  return n;
}

/** Fen → the yuan text a form field takes back ("19.90"); "" for null. */
export function yuanText(minor) {
  if (minor === null || minor === undefined) return "";
  return money(minor).replace(/^¥/, "").replace(/,/g, "");
}

/** A comma- or space-separated list of ids; null when empty. */
export function idList(input) {
  const ids = text(input)
    .split(/[\s,，、]+/)
    .filter(Boolean);
  return ids.length ? ids : null;
}

/** Disable `button` while `work` runs; resolves to what work resolves to. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** Epoch ms → "2026-01-09 18:30" in local time. */
export function when(ms) {
  if (!Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}`
  );
}

/** The in-page confirmation: a stray click on the chain's prices is expensive. */
export function confirmed(message) {
  const dialog = $("#confirm");
  setText($("#confirm-text"), message);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** Fill a <datalist> or <select> with [value, label] options after its first `keep`
 * (static ones such as "all"); a select keeps its choice while that is still offered. */
export function fillOptions(list, options, keep = 0) {
  const was = list.value;
  const sig = JSON.stringify(options);
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  const kept = [...list.children].slice(0, keep);
  const made = options.map(([value, label]) => {
    const o = document.createElement("option");
    o.value = value;
    if (label !== undefined) o.textContent = label;
    return o;
  });
  list.replaceChildren(...kept, ...made);
  if (list.tagName === "SELECT") {
    list.value = [...list.options].some((o) => o.value === was) ? was : list.options[0]?.value;
  }
}
