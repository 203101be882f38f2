// The league table's DOM: one <tr> per room made once, its cells rewritten only when their
// value changed, and (at most once a second, or at once after a click) the medians'
// flags, the filters, the order and the totals row. Owns #league-rows and #league-totals;
// knows the rows only through league.js.

import { count, moneyCompact, percent } from "./format.js";
import { t } from "./i18n.js";
import {
  COLUMNS,
  TOTALS,
  chainMedians,
  comparator,
  distinct,
  mergeRow,
  passes,
  totals,
  weakest,
} from "./league.js";
import { el, setText } from "./ui.js";

const LAYOUT_EVERY_MS = 1_000;
const FLASHED = new Set(["orders", "gmv"]); // a sale is what HQ's eyes look for

/** A row's field as the table shows it. */
function shown(field, value) {
  switch (field) {
    case "gmv":
      return moneyCompact(value ?? 0);
    case "conversion":
      return percent(value ?? 0);
    case "region":
    case "pack":
      return value || "—";
    case "live":
      return t(value ? "live.on" : "live.off");
    default:
      return count(value ?? 0);
  }
}

/** A median as text, in its metric's unit. */
function shownMedian(field, value) {
  if (field === "gmv") return moneyCompact(Math.round(value));
  if (field === "conversion") return percent(value);
  return count(value);
}

export class LeagueTable {
  /**
   * @param {object} o
   * @param {HTMLTableSectionElement} o.body the rooms' <tbody>
   * @param {HTMLTableRowElement} o.totalsRow the chain totals <tr>
   * @param {HTMLElement} o.empty shown when no row passes the filters
   * @param {(info: {rows: Map, shown: object[], totals: object}) => void} o.onLayout
   */
  constructor({ body, totalsRow, empty, onLayout }) {
    this.body = body;
    this.totalsRow = totalsRow;
    this.empty = empty;
    this.onLayout = onLayout ?? (() => {});
    this.rows = new Map(); // room → the merged row
    this.views = new Map(); // room → {tr, cells: {field: td}, weak: field | null}
    this.sort = { field: "gmv", dir: "desc" };
    this.filter = { region: "", pack: "", text: "", liveOnly: false };
    this.order = []; // rooms as the <tbody> holds them now
    this.medians = {};
    this.lastLayout = -Infinity;
    this.timer = null;
    this.buildTotals();
  }

  /** A welcome: every row replaced (a reconnect may follow a server's restart). */
  reset(rows) {
    this.rows.clear();
    this.views.clear();
    this.body.replaceChildren();
    this.order = [];
    for (const row of rows) mergeRow(this.rows, row);
    for (const row of this.rows.values()) this.views.set(row.room, this.makeRow(row));
    this.layout();
  }

  /** A `league` message: only the changed cells are touched now; the rest within a second. */
  merge(partials) {
    for (const partial of partials) {
      const isNew = !this.rows.has(partial.room);
      const changed = mergeRow(this.rows, partial);
      const row = this.rows.get(partial.room);
      if (isNew) {
        this.views.set(row.room, this.makeRow(row));
        continue;
      }
      const view = this.views.get(row.room);
      for (const field of changed) this.updateCell(view, row, field, true);
    }
    this.requestLayout();
  }

  setSort(field) {
    const col = COLUMNS.find((c) => c.key === field);
    if (!col) return;
    if (this.sort.field === field) this.sort.dir = this.sort.dir === "desc" ? "asc" : "desc";
    else this.sort = { field, dir: col.num ? "desc" : "asc" };
    this.layout();
  }

  setFilter(patch) {
    Object.assign(this.filter, patch);
    this.layout();
  }

  /** The language changed: every text that came from t() is drawn again. */
  relabel() {
    for (const [room, view] of this.views) {
      const row = this.rows.get(room);
      this.updateCell(view, row, "live", false);
    }
    // The weak figures' titles are compared as text by flag(), so they follow too.
    this.layout();
  }

  // ---- rows and cells ----------------------------------------------------------------

  makeRow(row) {
    const cells = {};
    const tr = el("tr", { dataset: { room: row.room } });
    for (const col of COLUMNS) {
      const td = el("td", { class: col.num ? "n num" : "", dataset: { field: col.key } });
      if (col.key === "room") {
        td.append(
          el("span", { class: "room-id mono" }, row.room),
          el("span", { class: "room-name" }),
        );
      } else if (col.key === "live") {
        td.append(el("span", { class: "badge" }));
      }
      cells[col.key] = td;
      tr.append(td);
    }
    const view = { tr, cells, weak: null };
    for (const col of COLUMNS) this.updateCell(view, row, col.key, false);
    if (row.name !== undefined) this.updateCell(view, row, "name", false);
    return view;
  }

  updateCell(view, row, field, flash) {
    if (field === "name") {
      const name = view.cells.room.lastChild;
      setText(name, row.name ?? "");
      name.title = row.name ?? "";
      return;
    }
    const td = view.cells[field];
    if (!td) return;
    const value = row[field];
    if (field === "live") {
      const badge = td.firstChild;
      badge.dataset.live = String(Boolean(value));
      setText(badge, shown(field, value));
      view.tr.dataset.live = String(Boolean(value));
    } else if (field !== "room") {
      setText(td, shown(field, value));
    }
    td.dataset.value = value === null || value === undefined ? "" : String(value);
    if (flash && FLASHED.has(field) && td.animate) {
      td.animate([{ backgroundColor: "#ffe9a8" }, { backgroundColor: "transparent" }], {
        duration: 1200,
        easing: "ease-out",
      });
    }
  }

  /** Flag the one figure of a live row that is furthest under the chain's median. */
  flag(view, row) {
    const weak = weakest(row, this.medians);
    const field = weak?.field ?? null;
    const title = weak
      ? t("league.weak", {
          metric: t(`league.col.${field}`),
          pct: Math.round(weak.ratio * 100),
          median: shownMedian(field, weak.median),
        })
      : "";
    if (view.weak !== field) {
      if (view.weak) {
        const old = view.cells[view.weak];
        old.classList.remove("weak");
        old.removeAttribute("title");
      }
      if (field) view.cells[field].classList.add("weak");
      if (field) view.tr.dataset.weak = field;
      else delete view.tr.dataset.weak;
      view.weak = field;
    }
    if (field && view.cells[field].title !== title) view.cells[field].title = title;
  }

  // ---- layout ------------------------------------------------------------------------

  /** Sorting 500 rows is cheap, moving their nodes is not: at most once a second. */
  requestLayout() {
    if (this.timer !== null) return;
    const wait = Math.max(0, this.lastLayout + LAYOUT_EVERY_MS - performance.now());
    this.timer = setTimeout(() => this.layout(), wait);
  }

  layout() {
    clearTimeout(this.timer);
    this.timer = null;
    this.lastLayout = performance.now();
    this.medians = chainMedians(this.rows);
    for (const [room, view] of this.views) this.flag(view, this.rows.get(room));

    const shownRows = [...this.rows.values()]
      .filter((r) => passes(r, this.filter))
      .sort(comparator(this.sort.field, this.sort.dir));
    const want = shownRows.map((r) => r.room);
    if (want.length !== this.order.length || want.some((room, i) => room !== this.order[i])) {
      this.place(want);
    }
    const sums = totals(shownRows);
    this.drawTotals(sums);
    this.empty.hidden = shownRows.length > 0 || this.rows.size === 0;
    this.onLayout({ rows: this.rows, shown: shownRows, totals: sums });
  }

  /** Put the <tr>s in `rooms` order, moving only the ones out of place. */
  place(rooms) {
    const keep = new Set(rooms);
    for (const room of this.order) if (!keep.has(room)) this.views.get(room)?.tr.remove();
    let prev = null;
    for (const room of rooms) {
      const tr = this.views.get(room).tr;
      const at = prev ? prev.nextSibling : this.body.firstChild;
      if (tr !== at) this.body.insertBefore(tr, at);
      prev = tr;
    }
    this.order = rooms;
  }

  buildTotals() {
    this.totalCells = {};
    const cells = COLUMNS.map((col) => {
      const td = el("td", { class: col.num ? "n num" : "", dataset: { field: col.key } });
      this.totalCells[col.key] = td;
      return td;
    });
    this.totalsRow.replaceChildren(...cells);
  }

  drawTotals(sums) {
    setText(this.totalCells.room, t("league.totals", { n: count(sums.rooms) }));
    setText(this.totalCells.live, t("league.totals_live", { n: count(sums.live) }));
    for (const field of TOTALS) {
      setText(this.totalCells[field], shown(field, sums[field]));
      this.totalCells[field].dataset.value = String(sums[field]);
    }
  }

  /** Regions and packs the rows have, for the filters' selects. */
  choices() {
    return { regions: distinct(this.rows, "region"), packs: distinct(this.rows, "pack") };
  }
}
