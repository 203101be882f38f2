// Going live with an HQ campaign pack (主题包): the picker beside 开播 (#golive-pack, from
// GET /api/packs) and the chosen pack's preview (#pack-preview, from POST …/preview):
// every change it would make and every conflict, a blocking one keeping 开播 disabled.
// Owns those elements and #golive-error; the console owns the go-live form and its
// button, and asks this panel for the button's label, whether it must wait, and the
// pack_id to send with go_live.

import { bandRange } from "./bandfield.js";
import { count, money } from "./format.js";
import { getLang, has, t } from "./i18n.js";
import { $, el, errorText, setText } from "./ui.js";

export class PackPicker {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {(path: string, opts?: object) => Promise<object>} o.api  consoleapi.js
   * @param {() => object} o.getState  the room state (room.js)
   * @param {() => void} o.onChange  the go-live button's state may have changed
   */
  constructor({ room, api, getState, onChange }) {
    this.room = room;
    this.api = api;
    this.getState = getState;
    this.onChange = onChange;
    this.packs = []; // latest versions that can still be applied here
    this.catalog = new Map(); // sku → catalog item: names of SKUs new to the room
    this.preview = null; // {packId, status: "loading" | "ready" | "failed", body?, error?}
    this.asked = 0; // answers to an older choice are dropped
    this.sent = null; // the pack_id of the go_live in flight
    this.refusal = ""; // why the last go_live with a pack was refused
    $("#golive-pack").addEventListener("change", () => this.choose());
  }

  selected() {
    return $("#golive-pack").value || null;
  }

  packOf(id) {
    return this.packs.find((p) => p.pack_id === id) ?? null;
  }

  /** The packs to offer: the latest version of each, but not withdrawn ones nor those
   * addressed to other rooms (a region is checked by the preview: the page knows none). */
  async load() {
    try {
      const [list, catalog] = await Promise.all([
        this.api("/api/packs"),
        this.api("/api/catalog").catch(() => ({ items: [] })),
      ]);
      this.packs = (list.packs ?? []).filter(
        (p) => p.withdrawn_at == null && (p.body.rooms == null || p.body.rooms.includes(this.room)),
      );
      this.catalog = new Map((catalog.items ?? []).map((i) => [i.sku, i]));
    } catch {
      return; // no list: the console goes live without packs, as before
    }
    this.render();
    if (this.selected() && this.preview?.packId !== this.selected()) this.loadPreview();
  }

  choose() {
    this.refusal = "";
    this.loadPreview();
  }

  async loadPreview() {
    const id = this.selected();
    const ask = ++this.asked;
    // Read again for the same pack: the old answer stays on screen until the new one is in.
    const kept = this.preview?.packId === id ? this.preview.body : undefined;
    this.preview = id ? { packId: id, status: "loading", body: kept } : null;
    this.render();
    this.onChange();
    if (!id) return;
    const path = `/api/packs/${encodeURIComponent(id)}/preview?room=${encodeURIComponent(this.room)}`;
    let next;
    try {
      next = { packId: id, status: "ready", body: (await this.api(path, { method: "POST" })).preview };
    } catch (err) {
      next = { packId: id, status: "failed", error: err };
    }
    if (ask !== this.asked) return;
    this.preview = next;
    this.render();
    this.onChange();
  }

  /** True while going live with the chosen pack must wait: its preview is not in yet, or
   * shows a blocking conflict. A failed preview does not hold it: the server judges. */
  blocking() {
    const id = this.selected();
    if (!id) return false;
    const p = this.preview;
    if (!p || p.packId !== id || p.status === "loading") return true;
    return p.status === "ready" && p.body.conflicts.some((c) => c.blocking);
  }

  buttonLabel() {
    return t(this.selected() ? "pack.golive" : "golive.button");
  }

  /** Add the chosen pack to the console's go_live message. */
  addTo(msg) {
    this.refusal = "";
    this.sent = this.selected();
    if (this.sent) msg.pack_id = this.sent;
    this.render();
  }

  /** An `error` about our go_live with a pack: said under the form, and the preview read
   * again (a band or the stock may have changed). False when it is about something else. */
  error(msg) {
    if (msg.ref !== "go_live" || !this.sent) return false;
    this.sent = null;
    this.refusal = this.refusalText(msg);
    this.loadPreview();
    return true;
  }

  refusalText(msg) {
    if (msg.code === "price_out_of_band" && Number.isFinite(msg.floor)) {
      return t("pack.refused.price_out_of_band", { range: bandRange(msg.floor, msg.ceiling) });
    }
    const key = `pack.refused.${msg.code}`;
    return has(key) ? t(key) : t("pack.refused.other", { reason: errorText(msg.code, msg.message) });
  }

  /** The room went live or off air: a pack is chosen afresh for the next session. */
  onLive(live) {
    this.sent = null;
    if (live) {
      this.refusal = "";
      $("#golive-pack").value = "";
      this.preview = null;
      this.render();
    } else {
      this.load();
    }
  }

  // ---- rendering ------------------------------------------------------------------------

  title(pack) {
    return (getLang() === "en" && pack.body.title_en) || pack.body.title;
  }

  nameOf(sku) {
    const product = this.getState().products.get(sku);
    if (product?.name) return product.name;
    const item = this.catalog.get(sku);
    return (getLang() === "en" && item?.name_en) || item?.name || sku;
  }

  render() {
    const select = $("#golive-pack");
    const keep = select.value;
    const options = [{ id: "", text: t("pack.none") }].concat(
      this.packs.map((p) => ({
        id: p.pack_id,
        text: t("pack.option", { title: this.title(p), version: p.version }),
      })),
    );
    const want = options.map((o) => `${o.id}\u0000${o.text}`).join("\n");
    if (select.dataset.options !== want) {
      select.replaceChildren(...options.map((o) => el("option", { value: o.id, text: o.text })));
      select.dataset.options = want;
    }
    select.value = options.some((o) => o.id === keep) ? keep : "";
    $("#pack-field").hidden = !this.packs.length;
    const pack = this.packOf(select.value);
    $("#golive-title").placeholder = pack
      ? t("pack.title_placeholder", { title: this.title(pack) })
      : t("golive.placeholder");
    setText($("#golive-error"), this.refusal);
    this.renderPreview(pack);
  }

  renderPreview(pack) {
    const box = $("#pack-preview");
    const p = pack && this.preview?.packId === pack.pack_id ? this.preview : null;
    box.hidden = !pack;
    box.dataset.state = p?.status ?? "loading";
    box.dataset.blocking = String(Boolean(pack) && this.blocking());
    const body = p?.body;
    let note = t("pack.preview.loading");
    if (p?.status === "failed") {
      note = t("pack.preview.failed", { reason: errorText(p.error.code, p.error.message) });
    } else if (p?.status === "ready") {
      note = body.applied ? t("pack.preview.applied") : "";
    }
    const status = $("#pack-preview-status");
    setText(status, note);
    status.hidden = !note;
    const changes = $("#pack-changes");
    const conflicts = $("#pack-conflicts");
    if (!body) {
      changes.replaceChildren();
      conflicts.replaceChildren();
      $("#pack-blocked").hidden = true;
      return;
    }
    changes.replaceChildren(
      ...(body.changes.length
        ? body.changes.map((c) =>
            el("li", {
              class: "pack-change num",
              dataset: { kind: c.kind, sku: c.sku },
              text: this.changeText(c),
            }),
          )
        : [el("li", { class: "empty", text: t("pack.preview.no_changes") })]),
    );
    conflicts.replaceChildren(
      ...(body.conflicts.length
        ? body.conflicts.map((c) => this.conflictRow(c))
        : [el("li", { class: "empty pack-ok", text: t("pack.conflicts.none") })]),
    );
    $("#pack-blocked").hidden = !body.conflicts.some((c) => c.blocking);
  }

  changeText(c) {
    const name = this.nameOf(c.sku);
    switch (c.kind) {
      case "add_product":
        return t("pack.change.add_product", { name, price: money(c.after) });
      case "price":
        return t("pack.change.price", { name, before: money(c.before), after: money(c.after) });
      case "stock":
        return t("pack.change.stock", { name, before: count(c.before), after: count(c.after) });
      case "queue_offer":
        return t("pack.change.queue_offer", { name, price: money(c.after), at: atText(c.at_s ?? 0) });
      default:
        return `${c.kind} ${name}`; // a kind this page does not know yet
    }
  }

  conflictRow(c) {
    const name = c.sku ? this.nameOf(c.sku) : "";
    const key = `pack.conflict.${c.kind}`;
    const vars = {
      name,
      price: money(c.price),
      range: Number.isFinite(c.floor) ? bandRange(c.floor, c.ceiling) : "",
      stock: count(c.stock),
      message: c.message,
    };
    const text = has(key) ? t(key, vars) : t("pack.conflict.other", vars);
    return el(
      "li",
      {
        class: "pack-conflict",
        dataset: { kind: c.kind, code: c.code, blocking: String(c.blocking), sku: c.sku ?? "" },
      },
      el("span", {
        class: "pack-conflict-tag",
        text: t(c.blocking ? "pack.conflict.blocking" : "pack.conflict.warning"),
      }),
      el(
        "span",
        { class: "pack-conflict-body" },
        el("span", { class: "pack-conflict-text", text }),
        // The server's own words (English, for whoever fixes the pack at HQ).
        el("small", { class: "pack-conflict-message", text: c.message }),
      ),
    );
  }
}

/** Seconds after going live → "开播即开始" / "开播后 +30 秒" / "开播后 +2 分 5 秒". */
function atText(atS) {
  if (atS <= 0) return t("pack.at.zero");
  const m = Math.floor(atS / 60);
  const s = atS % 60;
  return t("pack.at", { t: m ? t("pack.at.ms", { m, s }) : t("pack.at.s", { s }) });
}
