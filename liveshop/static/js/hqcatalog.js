// HQ's catalog and price-band editors: the lists from GET /api/catalog and /api/bands,
// the forms that PUT a new catalog version or one scope's band, and a band's removal.
// Owns the #tab-catalog and #tab-bands DOM; the packs editor reads `items` for its SKUs.

import { money } from "./format.js";
import { t } from "./i18n.js";
import { FormError, busy, confirmed, fillOptions, text, when, yuan, yuanText } from "./hqforms.js";
import { showError } from "./rest.js";
import { $, el, setText } from "./ui.js";

const SKU_RE = /^[A-Za-z0-9._-]{1,64}$/;
const SCOPE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

function sku(input) {
  const value = text(input);
  if (!SKU_RE.test(value)) throw new FormError(t("form.bad_sku"));
  return value;
}

/** "chain" / "region:x" / "store:s001" in words. */
export function scopeText(scope, roomName = () => "") {
  if (scope === "chain") return t("scope.chain");
  const [kind, id] = [scope.slice(0, scope.indexOf(":")), scope.slice(scope.indexOf(":") + 1)];
  const name = kind === "store" ? roomName(id) : "";
  return `${t(`scope.${kind}`)} ${id}${name ? ` · ${name}` : ""}`;
}

export class CatalogEditor {
  /**
   * @param {object} o
   * @param {Function} o.call restClient()
   * @param {() => void} o.onItems called after the list changed (the SKU pickers follow)
   */
  constructor({ call, onItems }) {
    this.call = call;
    this.onItems = onItems ?? (() => {});
    this.items = [];
    this.loaded = false;
    $("#cat-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    $("#cat-form").addEventListener("reset", () => {
      showError($("#cat-error"), null);
      setText($("#cat-done"), "");
    });
    $("#cat-reload").addEventListener("click", () => this.load());
  }

  async load() {
    try {
      const body = await this.call("GET", "/api/catalog");
      this.items = body.items;
      this.loaded = true;
      showError($("#cat-list-error"), null);
    } catch (err) {
      showError($("#cat-list-error"), err);
    }
    this.render();
    this.onItems();
  }

  render() {
    const rows = this.items.map((item) =>
      el(
        "tr",
        { dataset: { sku: item.sku, version: String(item.version) } },
        el("td", { class: "mono" }, item.sku),
        el(
          "td",
          {},
          el("div", {}, item.name),
          item.name_en ? el("div", { class: "muted small" }, item.name_en) : null,
        ),
        el("td", {}, item.category),
        el("td", { class: "n num", dataset: { value: String(item.base_price) } }, money(item.base_price)),
        el("td", {}, item.unit || "—"),
        el("td", { class: "n num" }, `v${item.version}`),
        el(
          "td",
          { class: "act" },
          el(
            "button",
            { type: "button", class: "btn ghost small edit", onclick: () => this.edit(item) },
            t("form.edit"),
          ),
        ),
      ),
    );
    $("#cat-rows").replaceChildren(...rows);
    $("#cat-empty").hidden = !this.loaded || rows.length > 0;
    const categories = [...new Set(this.items.map((i) => i.category))].sort();
    fillOptions($("#category-list"), categories.map((c) => [c]));
  }

  edit(item) {
    $("#cat-sku").value = item.sku;
    $("#cat-name").value = item.name;
    $("#cat-name-en").value = item.name_en;
    $("#cat-category").value = item.category;
    $("#cat-price").value = yuanText(item.base_price);
    $("#cat-unit").value = item.unit;
    $("#cat-image").value = item.image;
    showError($("#cat-error"), null);
    setText($("#cat-done"), "");
    $("#cat-name").focus();
  }

  async save() {
    const done = $("#cat-done");
    setText(done, "");
    let id;
    let body;
    try {
      id = sku($("#cat-sku"));
      body = {
        name: text($("#cat-name")),
        name_en: text($("#cat-name-en")),
        category: text($("#cat-category")),
        base_price: yuan($("#cat-price"), t("catalog.base_price")),
        unit: text($("#cat-unit")),
        image: text($("#cat-image")),
      };
      if (!body.name) throw new FormError(t("form.required", { field: t("catalog.name") }));
      if (!body.category) throw new FormError(t("form.required", { field: t("catalog.category") }));
    } catch (err) {
      showError($("#cat-error"), err.message);
      return;
    }
    try {
      const res = await busy($("#cat-save"), () =>
        this.call("PUT", `/api/catalog/${encodeURIComponent(id)}`, body),
      );
      showError($("#cat-error"), null);
      setText(done, t("catalog.saved", { sku: res.item.sku, version: res.item.version }));
      await this.load();
    } catch (err) {
      showError($("#cat-error"), err);
    }
  }
}

export class BandsEditor {
  /**
   * @param {object} o
   * @param {Function} o.call restClient()
   * @param {() => {rooms: [string, string][], names: Map, regions: string[]}} o.places
   *   the stores (as picker options and by name) and regions the league knows
   */
  constructor({ call, places }) {
    this.call = call;
    this.places = places;
    this.bands = [];
    this.loaded = false;
    const kind = $("#band-scope-kind");
    kind.addEventListener("change", () => this.scopeKindChanged());
    $("#band-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    $("#band-form").addEventListener("reset", () => {
      showError($("#band-error"), null);
      setText($("#band-done"), "");
      queueMicrotask(() => this.scopeKindChanged()); // after the reset put "chain" back
    });
    $("#band-reload").addEventListener("click", () => this.load());
  }

  scopeKindChanged() {
    const kind = $("#band-scope-kind").value;
    const id = $("#band-scope-id");
    id.disabled = kind === "chain";
    if (kind === "chain") id.value = "";
    const { rooms, regions } = this.places();
    fillOptions($("#scope-list"), kind === "store" ? rooms : regions.map((r) => [r]));
  }

  async load() {
    try {
      const body = await this.call("GET", "/api/bands");
      this.bands = body.bands;
      this.loaded = true;
      showError($("#band-list-error"), null);
    } catch (err) {
      showError($("#band-list-error"), err);
    }
    this.render();
  }

  render() {
    const { names } = this.places();
    const sorted = [...this.bands].sort(
      (a, b) => a.sku.localeCompare(b.sku) || a.scope.localeCompare(b.scope),
    );
    const rows = sorted.map((band) =>
      el(
        "tr",
        { dataset: { sku: band.sku, scope: band.scope } },
        el("td", { class: "mono" }, band.sku),
        el("td", {}, scopeText(band.scope, (id) => names.get(id) ?? "")),
        el("td", { class: "n num", dataset: { value: String(band.floor) } }, money(band.floor)),
        el("td", { class: "n num", dataset: { value: String(band.ceiling) } }, money(band.ceiling)),
        el("td", { class: "num muted" }, when(band.updated_at)),
        el(
          "td",
          { class: "act" },
          el(
            "button",
            { type: "button", class: "btn ghost small edit", onclick: () => this.edit(band) },
            t("form.edit"),
          ),
          el(
            "button",
            { type: "button", class: "btn danger small delete", onclick: () => this.remove(band) },
            t("form.delete"),
          ),
        ),
      ),
    );
    $("#band-rows").replaceChildren(...rows);
    $("#band-empty").hidden = !this.loaded || rows.length > 0;
    this.scopeKindChanged();
  }

  edit(band) {
    const [kind, id] = band.scope === "chain" ? ["chain", ""] : band.scope.split(/:(.*)/);
    $("#band-sku").value = band.sku;
    $("#band-scope-kind").value = kind;
    this.scopeKindChanged();
    $("#band-scope-id").value = id;
    $("#band-floor").value = yuanText(band.floor);
    $("#band-ceiling").value = yuanText(band.ceiling);
    showError($("#band-error"), null);
    setText($("#band-done"), "");
    $("#band-floor").focus();
  }

  scope() {
    const kind = $("#band-scope-kind").value;
    if (kind === "chain") return "chain";
    const id = text($("#band-scope-id"));
    if (!SCOPE_ID_RE.test(id)) throw new FormError(t(`form.bad_${kind}`));
    return `${kind}:${id}`;
  }

  async save() {
    setText($("#band-done"), "");
    let id;
    let body;
    try {
      id = sku($("#band-sku"));
      body = {
        scope: this.scope(),
        floor: yuan($("#band-floor"), t("bands.floor")),
        ceiling: yuan($("#band-ceiling"), t("bands.ceiling")),
      };
      if (body.floor > body.ceiling) throw new FormError(t("bands.floor_above"));
    } catch (err) {
      showError($("#band-error"), err.message);
      return;
    }
    try {
      await busy($("#band-save"), () =>
        this.call("PUT", `/api/bands/${encodeURIComponent(id)}`, body),
      );
      showError($("#band-error"), null);
      setText(
        $("#band-done"),
        t("bands.saved", {
          sku: id,
          scope: scopeText(body.scope),
          floor: money(body.floor),
          ceiling: money(body.ceiling),
        }),
      );
      await this.load();
    } catch (err) {
      showError($("#band-error"), err);
    }
  }

  async remove(band) {
    const question = t("bands.confirm_delete", { sku: band.sku, scope: scopeText(band.scope) });
    if (!(await confirmed(question))) return;
    try {
      const query = new URLSearchParams({ scope: band.scope });
      await this.call("DELETE", `/api/bands/${encodeURIComponent(band.sku)}?${query}`);
      showError($("#band-list-error"), null);
    } catch (err) {
      showError($("#band-list-error"), err);
    }
    await this.load();
  }
}

