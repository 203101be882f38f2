// HQ's campaign packs (主题包): the list of each pack's latest version, the form that PUTs
// a new version (products, offers, script, targets), and for the selected pack its preview
// against a room, its withdrawal and its per-store results. Owns the #tab-packs DOM.

import { count, money, moneyCompact } from "./format.js";
import { t } from "./i18n.js";
import {
  FormError,
  busy,
  confirmed,
  fillOptions,
  idList,
  text,
  when,
  whole,
  yuan,
  yuanText,
} from "./hqforms.js";
import { showError } from "./rest.js";
import { $, el, setText } from "./ui.js";

const PACK_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SKU_RE = /^[A-Za-z0-9._-]{1,64}$/;

function input(cls, attrs = {}) {
  return el("input", { class: cls, autocomplete: "off", ...attrs });
}

function removeButton(onclick) {
  return el(
    "button",
    { type: "button", class: "btn ghost small row-remove", "aria-label": t("form.remove"), onclick },
    "×",
  );
}

/** A product row of the form: SKU, units the pack brings, the pack's price. */
function productRow(p = {}) {
  const tr = el(
    "tr",
    { class: "product-row" },
    el("td", {}, input("p-sku mono", { list: "sku-list", value: p.sku ?? "", "aria-label": "SKU" })),
    el("td", {}, input("p-stock", { inputmode: "numeric", value: p.stock ?? "", placeholder: "0" })),
    el("td", {}, input("p-price", { inputmode: "decimal", value: yuanText(p.price) })),
  );
  tr.append(el("td", { class: "act" }, removeButton(() => tr.remove())));
  return tr;
}

/** An offer row: SKU, price, units, per-person limit, seconds it runs, seconds after going live. */
function offerRow(o = {}) {
  const num = (cls, value, placeholder) =>
    el("td", {}, input(cls, { inputmode: "numeric", value: value ?? "", placeholder }));
  const tr = el(
    "tr",
    { class: "offer-row" },
    el("td", {}, input("o-sku mono", { list: "sku-list", value: o.sku ?? "", "aria-label": "SKU" })),
    el("td", {}, input("o-price", { inputmode: "decimal", value: yuanText(o.price) })),
    num("o-qty", o.qty, "20"),
    num("o-limit", o.per_user_limit, "2"),
    num("o-duration", o.duration_s, "60"),
    num("o-at", o.at_s, "0"),
  );
  tr.append(el("td", { class: "act" }, removeButton(() => tr.remove())));
  return tr;
}

const blank = (tr) => [...tr.querySelectorAll("input")].every((i) => !i.value.trim());

function rowSku(tr, cls, n) {
  const sku = text(tr.querySelector(cls));
  if (!SKU_RE.test(sku)) throw new FormError(t("packs.bad_row_sku", { n }));
  return sku;
}

export class PacksEditor {
  /**
   * @param {object} o
   * @param {Function} o.call restClient()
   * @param {() => [string, string][]} o.rooms [room, label] for the preview's room picker
   * @param {(sku: string) => string} o.skuName the catalog's name of a SKU, or ""
   */
  constructor({ call, rooms, skuName }) {
    this.call = call;
    this.rooms = rooms;
    this.skuName = skuName;
    this.packs = [];
    this.loaded = false;
    this.selected = null; // pack_id whose preview / results panel is open
    this.lastPreview = null;
    this.lastResults = null;
    this.clearForm();
    $("#pack-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    $("#pack-clear").addEventListener("click", () => this.clearForm());
    $("#pack-add-product").addEventListener("click", () => this.addProduct());
    $("#pack-add-offer").addEventListener("click", () => this.addOffer());
    $("#pack-reload").addEventListener("click", () => this.load());
    $("#preview-btn").addEventListener("click", () => this.preview());
    $("#results-btn").addEventListener("click", () => this.results());
    $("#pack-withdraw").addEventListener("click", () => this.withdraw());
    $("#preview-form").addEventListener("submit", (e) => e.preventDefault());
  }

  addProduct(p) {
    const tr = productRow(p);
    $("#pack-products").append(tr);
    if (!p) tr.querySelector("input").focus();
  }

  addOffer(o) {
    const tr = offerRow(o);
    $("#pack-offers").append(tr);
    if (!o) tr.querySelector("input").focus();
  }

  clearForm() {
    $("#pack-form").reset();
    $("#pack-products").replaceChildren(productRow());
    $("#pack-offers").replaceChildren(offerRow());
    showError($("#pack-error"), null);
    setText($("#pack-done"), "");
  }

  /** Fill the form from a version, to publish the next one from it. */
  edit(pack) {
    const b = pack.body;
    $("#pack-id").value = pack.pack_id;
    $("#pack-title").value = b.title;
    $("#pack-title-en").value = b.title_en ?? "";
    $("#pack-products").replaceChildren(...b.products.map(productRow));
    $("#pack-offers").replaceChildren(...b.offers.map(offerRow));
    if (!b.products.length) $("#pack-products").append(productRow());
    if (!b.offers.length) $("#pack-offers").append(offerRow());
    $("#pack-script").value = (b.script ?? []).join("\n");
    $("#pack-rooms").value = (b.rooms ?? []).join(", ");
    $("#pack-regions").value = (b.regions ?? []).join(", ");
    showError($("#pack-error"), null);
    setText($("#pack-done"), t("packs.editing", { id: pack.pack_id, version: pack.version }));
    $("#pack-title").focus();
  }

  /** The form as a PUT body, or a FormError naming the first bad field. */
  body() {
    const products = [];
    [...$("#pack-products").children].forEach((tr, i) => {
      if (blank(tr)) return;
      const n = i + 1;
      const item = { sku: rowSku(tr, ".p-sku", n) };
      const stock = whole(tr.querySelector(".p-stock"), t("packs.field.stock", { n }), {
        min: 0,
        optional: true,
      });
      const price = yuan(tr.querySelector(".p-price"), t("packs.field.price", { n }), {
        optional: true,
      });
      if (stock !== null) item.stock = stock;
      if (price !== null) item.price = price;
      products.push(item);
    });
    const offers = [];
    [...$("#pack-offers").children].forEach((tr, i) => {
      if (blank(tr)) return;
      const n = i + 1;
      const field = (key) => t(`packs.field.offer_${key}`, { n });
      offers.push({
        sku: rowSku(tr, ".o-sku", n),
        price: yuan(tr.querySelector(".o-price"), field("price")),
        qty: whole(tr.querySelector(".o-qty"), field("qty")),
        per_user_limit: whole(tr.querySelector(".o-limit"), field("limit")),
        duration_s: whole(tr.querySelector(".o-duration"), field("duration"), { min: 10 }),
        at_s: whole(tr.querySelector(".o-at"), field("at"), { min: 0, optional: true }) ?? 0,
      });
    });
    const title = text($("#pack-title"));
    if (!title) throw new FormError(t("form.required", { field: t("packs.title") }));
    const body = {
      title,
      title_en: text($("#pack-title-en")),
      products,
      offers,
      script: $("#pack-script")
        .value.split("\n")
        .map((line) => line.trim())
        .filter(Boolean),
    };
    const rooms = idList($("#pack-rooms"));
    const regions = idList($("#pack-regions"));
    if (rooms) body.rooms = rooms;
    if (regions) body.regions = regions;
    return body;
  }

  async save() {
    setText($("#pack-done"), "");
    const id = text($("#pack-id"));
    let body;
    try {
      if (!PACK_ID_RE.test(id)) throw new FormError(t("packs.bad_id"));
      body = this.body();
    } catch (err) {
      showError($("#pack-error"), err.message);
      return;
    }
    try {
      const res = await busy($("#pack-save"), () =>
        this.call("PUT", `/api/packs/${encodeURIComponent(id)}`, body),
      );
      showError($("#pack-error"), null);
      setText($("#pack-done"), t("packs.saved", { id, version: res.pack.version }));
      await this.load();
      this.select(id);
    } catch (err) {
      showError($("#pack-error"), err);
    }
  }

  async load() {
    try {
      this.packs = (await this.call("GET", "/api/packs")).packs;
      this.loaded = true;
      showError($("#pack-list-error"), null);
    } catch (err) {
      showError($("#pack-list-error"), err);
    }
    this.render();
  }

  render() {
    const rows = this.packs.map((pack) => {
      const b = pack.body;
      const withdrawn = pack.withdrawn_at !== null;
      return el(
        "tr",
        {
          class: `pack-row ${pack.pack_id === this.selected ? "selected" : ""}`,
          dataset: { pack: pack.pack_id, version: String(pack.version) },
          onclick: () => this.select(pack.pack_id),
        },
        el(
          "td",
          {},
          el("div", {}, el("span", { class: "mono" }, pack.pack_id), ` · ${b.title}`),
          el(
            "div",
            { class: "small muted" },
            t("packs.contents_n", { p: b.products.length, o: b.offers.length, s: b.script.length }),
          ),
        ),
        el("td", { class: "n num" }, `v${pack.version}`),
        el(
          "td",
          {},
          el(
            "span",
            { class: `tag ${withdrawn ? "tag-off" : "tag-on"}` },
            t(withdrawn ? "packs.withdrawn" : "packs.active"),
          ),
        ),
        el(
          "td",
          { class: "act" },
          el(
            "button",
            {
              type: "button",
              class: "btn ghost small edit",
              onclick: (e) => {
                e.stopPropagation();
                this.edit(pack);
              },
            },
            t("packs.new_version"),
          ),
        ),
      );
    });
    $("#pack-rows").replaceChildren(...rows);
    $("#pack-empty").hidden = !this.loaded || rows.length > 0;
    this.renderDetail();
  }

  select(packId) {
    if (packId !== this.selected) {
      this.lastPreview = null;
      this.lastResults = null;
      showError($("#detail-error"), null);
      setText($("#detail-done"), "");
    }
    this.selected = packId;
    for (const tr of $("#pack-rows").children) {
      tr.classList.toggle("selected", tr.dataset.pack === packId);
    }
    this.renderDetail();
  }

  current() {
    return this.packs.find((p) => p.pack_id === this.selected) ?? null;
  }

  renderDetail() {
    const pack = this.current();
    $("#pack-detail").hidden = pack === null;
    if (!pack) return;
    setText(
      $("#pack-detail-h"),
      t("packs.detail", { id: pack.pack_id, version: pack.version, title: pack.body.title }),
    );
    $("#pack-withdraw").disabled = pack.withdrawn_at !== null;
    fillOptions($("#preview-room"), this.rooms());
    this.renderPreview();
    this.renderResults();
  }

  // ---- preview ---------------------------------------------------------------------

  async preview() {
    const pack = this.current();
    const room = $("#preview-room").value;
    if (!pack || !room) return;
    showError($("#detail-error"), null);
    setText($("#detail-done"), "");
    try {
      const query = new URLSearchParams({ room });
      const res = await busy($("#preview-btn"), () =>
        this.call("POST", `/api/packs/${encodeURIComponent(pack.pack_id)}/preview?${query}`),
      );
      this.lastPreview = res.preview;
    } catch (err) {
      this.lastPreview = null;
      showError($("#detail-error"), err);
    }
    this.renderPreview();
  }

  sku(sku) {
    const name = this.skuName(sku);
    return name ? t("packs.sku_named", { sku, name }) : sku;
  }

  changeText(c) {
    const vars = {
      sku: this.sku(c.sku),
      before: c.kind === "stock" ? count(c.before) : money(c.before),
      after: c.kind === "stock" ? count(c.after) : money(c.after),
      at: count(c.at_s ?? 0),
    };
    return t(`change.${c.kind}`, vars);
  }

  conflictText(c) {
    const vars = {
      sku: c.sku ? this.sku(c.sku) : "",
      price: money(c.price),
      floor: money(c.floor),
      ceiling: money(c.ceiling),
      stock: count(c.stock),
      room: this.lastPreview?.room ?? "",
    };
    const key = `conflict.${c.kind}`;
    const said = t(key, vars);
    return said === key ? c.message : said;
  }

  renderPreview() {
    const out = $("#preview-out");
    const p = this.lastPreview;
    const pack = this.current();
    out.hidden = !p || !pack || p.pack_id !== pack.pack_id;
    if (out.hidden) return;
    const blocking = p.conflicts.filter((c) => c.blocking).length;
    out.dataset.blocking = String(blocking);
    setText(
      $("#preview-h"),
      t(blocking ? "preview.blocked" : "preview.ok", {
        room: p.room,
        version: p.version,
        n: blocking,
      }),
    );
    const conflicts = p.conflicts.map((c) =>
      el(
        "li",
        {
          class: c.blocking ? "blocking" : "warning",
          dataset: { kind: c.kind, code: c.code, sku: c.sku ?? "" },
          title: c.message,
        },
        el("span", { class: "tag" }, t(c.blocking ? "preview.blocks" : "preview.warns")),
        " ",
        this.conflictText(c),
      ),
    );
    $("#preview-conflicts").replaceChildren(...conflicts);
    const changes = p.changes.map((c) =>
      el("li", { dataset: { kind: c.kind, sku: c.sku } }, this.changeText(c)),
    );
    if (p.applied) changes.unshift(el("li", { class: "muted" }, t("preview.applied")));
    else if (!changes.length) changes.push(el("li", { class: "muted" }, t("preview.no_changes")));
    $("#preview-changes").replaceChildren(...changes);
  }

  // ---- withdraw and results --------------------------------------------------------

  async withdraw() {
    const pack = this.current();
    if (!pack) return;
    if (!(await confirmed(t("packs.confirm_withdraw", { id: pack.pack_id, version: pack.version })))) {
      return;
    }
    showError($("#detail-error"), null);
    try {
      const res = await this.call("POST", `/api/packs/${encodeURIComponent(pack.pack_id)}/withdraw`);
      setText(
        $("#detail-done"),
        t("packs.withdrawn_done", { version: res.version, n: count(res.queued_cancelled) }),
      );
    } catch (err) {
      showError($("#detail-error"), err);
    }
    await this.load();
  }

  async results() {
    const pack = this.current();
    if (!pack) return;
    showError($("#detail-error"), null);
    try {
      const res = await busy($("#results-btn"), () =>
        this.call("GET", `/api/packs/${encodeURIComponent(pack.pack_id)}/results`),
      );
      this.lastResults = res;
    } catch (err) {
      this.lastResults = null;
      showError($("#detail-error"), err);
    }
    this.renderResults();
  }

  renderResults() {
    const out = $("#results-out");
    const r = this.lastResults;
    out.hidden = !r || r.pack_id !== this.selected;
    if (out.hidden) return;
    const rows = r.stores.map((s) =>
      el(
        "tr",
        { dataset: { room: s.room, version: String(s.version) } },
        el("td", { class: "mono" }, t("results.room_version", { room: s.room, version: s.version })),
        el(
          "td",
          { class: "num" },
          el("div", {}, when(s.applied_at)),
          el("div", { class: "small muted" }, t(s.ended ? "results.ended" : "results.running")),
        ),
        el("td", { class: "n num" }, count(s.orders)),
        el("td", { class: "n num" }, count(s.units)),
        el("td", { class: "n num" }, moneyCompact(s.gmv)),
        el("td", { class: "n num" }, count(s.viewers)),
        el("td", { class: "n num" }, count(s.buyers)),
        el(
          "td",
          { class: "skus" },
          ...s.pack_skus.map((k) =>
            el(
              "span",
              { class: "chip", dataset: { sku: k.sku } },
              t("results.sku", { sku: k.sku, units: count(k.units), gmv: moneyCompact(k.gmv) }),
            ),
          ),
        ),
      ),
    );
    $("#results-rows").replaceChildren(...rows);
    $("#results-empty").hidden = rows.length > 0;
    $("#results-table").hidden = rows.length === 0;
  }
}
