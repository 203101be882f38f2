// HQ's price band (价格带) beside the console's price fields: "HQ 价格带 ¥a–¥b" under the
// flash-deal and group price for the selected SKU, and the field marked invalid while the
// typed price is outside. Only a hint: the room's scripts judge every price, and their
// `price_out_of_band` refusal (with the band) is what the forms show. Owns the band notes
// (#offer-band, #group-band) and the fields' aria-invalid; the forms stay their owners'.

import { money, yuanToMinor } from "./format.js";
import { t } from "./i18n.js";
import { $, el } from "./ui.js";

const REFRESH_MS = 30_000; // HQ may change a band at any time; a refusal updates it at once

// [sku select, price input, note]: the price fields the console has.
const FIELDS = [
  ["#offer-sku", "#offer-price", "#offer-band"],
  ["#group-sku", "#group-price", "#group-band"],
];

/** "¥15.00–¥25.00" */
export function bandRange(floor, ceiling) {
  return `${money(floor)}–${money(ceiling)}`;
}

/** A `price_out_of_band` refusal with its band, in the owner's words; null without one. */
export function bandRefusal(msg) {
  const known = Number.isFinite(msg.floor) && Number.isFinite(msg.ceiling);
  if (msg.code !== "price_out_of_band" || !known) return null;
  return t("band.refused", { range: bandRange(msg.floor, msg.ceiling) });
}

export class BandFields {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {(path: string) => Promise<object>} o.api  consoleapi.js
   */
  constructor({ room, api }) {
    this.path = `/api/rooms/${encodeURIComponent(room)}/bands`;
    this.api = api;
    this.bands = new Map(); // sku → {floor, ceiling}, what the room enforces
    this.timer = null;
    for (const [select, input] of FIELDS) {
      $(select).addEventListener("change", () => this.render());
      $(input).addEventListener("input", () => this.render());
    }
  }

  async load() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), REFRESH_MS);
    try {
      const body = await this.api(this.path);
      this.bands = new Map(Object.entries(body.bands ?? {}));
    } catch {
      return; // keep what we knew; the server still checks every price
    }
    this.render();
  }

  /** A refusal of `req` (offer_start, group_start) that names the band it broke. */
  refused(req, msg) {
    if (!req?.sku || !bandRefusal(msg)) return;
    this.bands.set(req.sku, { floor: msg.floor, ceiling: msg.ceiling });
    this.render();
  }

  render() {
    for (const [select, input, note] of FIELDS) this.renderField($(select).value, $(input), $(note));
  }

  renderField(sku, input, note) {
    const band = this.bands.get(sku);
    note.hidden = !band;
    if (!band) {
      input.removeAttribute("aria-invalid");
      delete note.dataset.state;
      return;
    }
    const price = yuanToMinor(input.value);
    const out = price !== null && (price < band.floor || price > band.ceiling);
    const range = bandRange(band.floor, band.ceiling);
    const text = t(out ? "band.out" : "band.range", { range });
    if (note.textContent !== text) {
      // The range in one piece: a narrow phone field wraps before it, not at its dash.
      const [before, after = ""] = text.split(range);
      note.replaceChildren(before, el("span", { class: "band-range", text: range }), after);
    }
    note.dataset.state = out ? "out" : "in";
    note.dataset.floor = String(band.floor);
    note.dataset.ceiling = String(band.ceiling);
    if (out) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}
