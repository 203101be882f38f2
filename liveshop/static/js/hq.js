// HQ's page (/hq): the league of every room over /ws/hq, and the editors of the catalog,
// the price bands and the campaign packs over HQ's REST API. Owns the page chrome (tabs,
// filters, subtitle, fatal box) and wires the parts; each part owns its own DOM.

import { TokenSource } from "./auth.js";
import { count } from "./format.js";
import { BandsEditor, CatalogEditor } from "./hqcatalog.js";
import { fillOptions } from "./hqforms.js";
import { PacksEditor } from "./hqpacks.js";
import { getLang, onLangChange, t } from "./i18n.js";
import { LeagueSocket, NO_PACK } from "./league.js";
import { LeagueTable } from "./leaguetable.js";
import { restClient } from "./rest.js";
import { $, bindLangToggle, connectionBanner, setText } from "./ui.js";

const tokens = new TokenSource({ role: "hq", room: "*" });
const call = restClient(tokens);
const banner = connectionBanner();
let lastTs = null; // server time of the last league message
let stopped = false;

function fatal(text) {
  stopped = true;
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
  document.body.dataset.fatal = "true";
}

// ---- the league ----------------------------------------------------------------------

const table = new LeagueTable({
  body: $("#league-rows"),
  totalsRow: $("#league-totals"),
  empty: $("#league-empty"),
  onLayout: ({ rows, shown }) => {
    const live = [...rows.values()].filter((r) => r.live).length;
    const stamp = lastTs ? new Date(lastTs).toLocaleTimeString("en-GB") : "—";
    setText(
      $("#hq-sub"),
      t("hq.sub", { n: count(rows.size), live: count(live), shown: count(shown.length), at: stamp }),
    );
    const { regions, packs } = table.choices();
    fillOptions($("#filter-region"), regions.map((r) => [r, r]), 1);
    fillOptions($("#filter-pack"), [[NO_PACK, t("filter.no_pack")], ...packs.map((p) => [p, p])], 1);
  },
});

function drawSortMarks() {
  for (const th of $("#league-head").children) {
    const on = th.dataset.key === table.sort.field;
    th.setAttribute("aria-sort", on ? (table.sort.dir === "asc" ? "ascending" : "descending") : "none");
  }
}

$("#league-head").addEventListener("click", (e) => {
  const th = e.target.closest("th[data-key]");
  if (!th) return;
  table.setSort(th.dataset.key);
  drawSortMarks();
});
$("#filter-text").addEventListener("input", (e) => table.setFilter({ text: e.target.value }));
$("#filter-region").addEventListener("change", (e) => table.setFilter({ region: e.target.value }));
$("#filter-pack").addEventListener("change", (e) => table.setFilter({ pack: e.target.value }));
$("#filter-live").addEventListener("change", (e) => table.setFilter({ liveOnly: e.target.checked }));
$("#league-filters").addEventListener("submit", (e) => e.preventDefault());
drawSortMarks();

const socket = new LeagueSocket({
  lang: getLang(),
  getToken: async () => {
    const got = await tokens.get();
    if (!got.token) {
      queueMicrotask(() => {
        fatal(t(got.from === "expired" ? "err.token_expired" : "hq.token_required"));
        socket.stop("unauthorized");
      });
    }
    return got;
  },
  onStatus: (status, detail) => {
    banner.update(status, detail);
    if (status === "closed" && detail === "forbidden") fatal(t("hq.not_hq"));
  },
  onWelcome: (msg) => {
    lastTs = msg.ts ?? null;
    $("#league-loading").hidden = true;
    table.reset(msg.rows ?? []);
  },
  onMessage: (msg) => {
    if (msg.type !== "league") return;
    lastTs = msg.ts ?? lastTs;
    table.merge(msg.rows ?? []);
  },
  onAuthFailure: () => {
    if (tokens.from === "link") {
      fatal(t("err.token_expired"));
      return false;
    }
    tokens.forget();
    return true;
  },
});

// ---- the editors ---------------------------------------------------------------------

/** Rooms and regions as the league knows them, for the editors' pickers. */
function places() {
  const rows = [...table.rows.values()].sort((a, b) => a.room.localeCompare(b.room));
  return {
    rooms: rows.map((r) => [r.room, r.name ? `${r.room} · ${r.name}` : r.room]),
    names: new Map(rows.map((r) => [r.room, r.name ?? ""])),
    regions: table.choices().regions,
  };
}

const catalog = new CatalogEditor({
  call,
  onItems: () => {
    fillOptions($("#sku-list"), catalog.items.map((i) => [i.sku, i.name]));
  },
});
const bands = new BandsEditor({ call, places });
const packs = new PacksEditor({
  call,
  rooms: () => places().rooms,
  skuName: (sku) => catalog.items.find((i) => i.sku === sku)?.name ?? "",
});

const loaders = {
  league: () => {},
  catalog: () => catalog.load(),
  bands: () => Promise.all([catalog.load(), bands.load()]),
  packs: () => Promise.all([catalog.load(), packs.load()]),
};

function openTab(name) {
  if (!(name in loaders)) return;
  document.body.dataset.tab = name;
  for (const tab of document.querySelectorAll(".tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  for (const panel of document.querySelectorAll(".tab-panel")) {
    panel.hidden = panel.id !== `tab-${name}`;
  }
  try {
    sessionStorage.setItem("liveshop:hq:tab", name);
  } catch {
    // no storage: the page opens on the league next time
  }
  if (!stopped) loaders[name]();
}

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => openTab(tab.dataset.tab));
}

// ---- start ---------------------------------------------------------------------------

const relabel = bindLangToggle();
onLangChange(() => {
  relabel();
  // What the last action said is in the old language; the lists are drawn anew below.
  for (const box of document.querySelectorAll(".form-error, .form-done")) box.replaceChildren();
  banner.redraw();
  table.relabel();
  catalog.render();
  bands.render();
  packs.render();
  // No reconnect for the new language: the league's rows carry no text of the server's.
});

let firstTab = "league";
try {
  firstTab = sessionStorage.getItem("liveshop:hq:tab") || "league";
} catch {
  // see openTab
}
openTab(firstTab);
socket.start();
