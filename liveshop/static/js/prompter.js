// The teleprompter (提词器) of a session opened with a campaign pack: the pack's script one
// line at a time (the current line large, the next one smaller; Prev/Next, ←/→ and a
// clicker's PageUp/PageDown), the position kept per room and session across a reload;
// and below it the pack's offer schedule (queued with a countdown by the server's clock,
// started, skipped with its reason, withdrawn), read from GET /api/rooms/{room}/pack
// every few seconds while live and when an offer changes. Owns #prompter and its children.

import { count, countdown, money } from "./format.js";
import { getLang, has, t } from "./i18n.js";
import { offerLeft, offerStatus, serverNow } from "./room.js";
import { $, el, setText, syncKeyed } from "./ui.js";

const REFRESH_MS = 3_000;
const OFFER_SETTLE_MS = 300; // an `offer` message: read the schedule once its row moved
const TICK_MS = 500;

function readPos(key) {
  try {
    const n = Number(localStorage.getItem(key));
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0; // storage disabled: the position lives for this page only
  }
}

function writePos(key, n) {
  try {
    localStorage.setItem(key, String(n));
  } catch {
    // see readPos
  }
}

export class Prompter {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {(path: string) => Promise<object>} o.api  consoleapi.js
   * @param {() => object} o.getState  the room state (room.js)
   */
  constructor({ room, api, getState }) {
    this.room = room;
    this.path = `/api/rooms/${encodeURIComponent(room)}/pack`;
    this.api = api;
    this.getState = getState;
    this.pack = null; // the session's pack, as the server last said
    this.session = null; // the session `pack` belongs to
    this.pos = 0;
    this.failed = false;
    this.reading = false;
    this.again = false;
    this.soon = null;
    $("#prompter-prev").addEventListener("click", () => this.step(-1));
    $("#prompter-next").addEventListener("click", () => this.step(1));
    document.addEventListener("keydown", (ev) => this.onKey(ev));
    setInterval(() => {
      // A pack comes with go_live, when the console reads it: a session without one is not
      // polled, unless that read failed.
      if ((this.pack || this.failed) && this.getState().live) this.refresh();
    }, REFRESH_MS);
    setInterval(() => this.renderSchedule(), TICK_MS);
  }

  get key() {
    return `liveshop:prompter:${this.room}:${this.session}`;
  }

  get lines() {
    return this.pack?.script ?? [];
  }

  /** Read the session's pack now (one read at a time; a call during one asks for another). */
  async refresh() {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        await this.read();
      } while (this.again);
    } finally {
      this.reading = false;
    }
  }

  async read() {
    const state = this.getState();
    if (!state.live) {
      this.pack = null;
      this.render();
      return;
    }
    const session = state.session_id;
    let pack;
    try {
      pack = (await this.api(this.path)).pack;
      this.failed = false;
    } catch {
      this.failed = true; // keep the lines on screen; the next tick tries again
      this.renderSchedule();
      return;
    }
    if (!this.getState().live || this.getState().session_id !== session) return;
    if (session !== this.session) {
      this.session = session;
      this.pos = readPos(this.key);
    }
    this.pack = pack;
    this.render();
  }

  /** An `offer` message: a queued offer may have started, or a started one ended. */
  offerChanged() {
    if (!this.pack) return;
    clearTimeout(this.soon);
    this.soon = setTimeout(() => this.refresh(), OFFER_SETTLE_MS);
    this.renderSchedule();
  }

  step(by) {
    const last = this.lines.length - 1;
    const next = Math.min(Math.max(this.pos + by, 0), Math.max(last, 0));
    if (next === this.pos) return;
    this.pos = next;
    writePos(this.key, next);
    this.renderLines();
  }

  onKey(ev) {
    if ($("#prompter").hidden || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.target.closest?.("input, select, textarea, [contenteditable]")) return;
    const by = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 }[ev.key];
    if (!by) return;
    ev.preventDefault(); // a clicker's PageDown would scroll the console away
    this.step(by);
  }

  // ---- rendering ------------------------------------------------------------------------

  render() {
    const card = $("#prompter");
    card.hidden = !this.pack || !this.getState().live;
    if (card.hidden) return;
    const title = (getLang() === "en" && this.pack.title_en) || this.pack.title;
    setText($("#prompter-pack"), t("pack.option", { title, version: this.pack.version }));
    this.renderLines();
    this.renderSchedule();
  }

  renderLines() {
    const lines = this.lines;
    this.pos = Math.min(this.pos, Math.max(lines.length - 1, 0));
    const now = $("#prompter-now");
    now.dataset.index = String(this.pos);
    setText(now, lines.length ? lines[this.pos] : t("prompter.empty"));
    const last = this.pos >= lines.length - 1;
    const then = $("#prompter-then");
    then.hidden = !lines.length;
    then.dataset.last = String(last);
    setText($("#prompter-then-text"), last ? t("prompter.end") : lines[this.pos + 1]);
    const pos = lines.length ? t("prompter.pos", { n: this.pos + 1, total: lines.length }) : "";
    setText($("#prompter-pos"), pos);
    $("#prompter-nav").hidden = lines.length < 2;
    $("#prompter-prev").disabled = this.pos === 0;
    $("#prompter-next").disabled = last;
  }

  renderSchedule() {
    const card = $("#prompter");
    if (card.hidden || !this.pack) return;
    $("#schedule-failed").hidden = !this.failed;
    const offers = this.pack.offers;
    const rows = offers.length ? offers.map((o, i) => ({ ...o, key: `${i}:${o.at}:${o.sku}` })) : [null];
    syncKeyed(
      $("#pack-schedule"),
      rows,
      (o) => o?.key ?? "-none-",
      (o) => (o ? this.row() : el("li", { class: "empty" })),
      (node, o) => (o ? this.update(node, o) : setText(node, t("schedule.none"))),
    );
  }

  row() {
    return el(
      "li",
      { class: "sched-row" },
      el(
        "div",
        { class: "sched-info" },
        el("div", { class: "sched-name" }),
        el("div", { class: "sched-meta num" }),
      ),
      el("span", { class: "sched-status num" }),
    );
  }

  update(node, o) {
    const state = this.getState();
    node.dataset.status = o.status;
    node.dataset.sku = o.sku;
    node.dataset.at = String(o.at);
    if (o.offer_id) node.dataset.offer = o.offer_id;
    setText(node.querySelector(".sched-name"), state.products.get(o.sku)?.name ?? o.sku);
    setText(
      node.querySelector(".sched-meta"),
      t("schedule.row", { price: money(o.price), qty: count(o.qty), limit: o.per_user_limit }),
    );
    setText(node.querySelector(".sched-status"), this.statusText(o, state));
  }

  statusText(o, state) {
    switch (o.status) {
      case "queued": {
        const left = o.at - serverNow(state);
        return left > 0 ? t("schedule.queued", { time: countdown(left) }) : t("schedule.due");
      }
      case "started": {
        const offer = o.offer_id ? state.offers.get(o.offer_id) : null;
        if (!offer) return t("schedule.started");
        return offerStatus(state, offer) === "live"
          ? t("schedule.live", { left: count(offerLeft(state, offer)) })
          : t("schedule.over");
      }
      case "skipped": {
        const key = `schedule.reason.${o.reason}`;
        return t("schedule.skipped", { reason: has(key) ? t(key) : (o.reason ?? "?") });
      }
      case "withdrawn":
        return t("schedule.withdrawn");
      default:
        return o.status;
    }
  }
}
