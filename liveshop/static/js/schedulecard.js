// The next live (下次直播) on the viewer page: while the room is not live and
// `welcome.state.next_live_at` is set, a card with the title, the start time, a countdown by
// the server's clock (即将开始 once it is due), how many reserved and the button to reserve
// (预约) or take it back (`/api/rooms/{room}/reservations`: GET on each welcome, POST,
// DELETE; every answer is {count, reserved}). Owns #schedule-card; `when()` is also the
// console's words for that time.

import { count, countdown } from "./format.js";
import { getLang, t } from "./i18n.js";
import { el, errorText, setText, toast } from "./ui.js";

// Going live clears next_live_at on the server; a time this far past with no live is one
// that was announced and never held, not a coming one.
const STALE_MS = 60 * 60_000;
const DAY_MS = 86_400_000;

const two = (n) => String(n).padStart(2, "0");

/** Epoch ms → "今天 20:00", "明天 20:00", "5月3日 周五 20:00" in the page's language. */
export function when(ms) {
  const d = new Date(ms);
  const time = `${two(d.getHours())}:${two(d.getMinutes())}`;
  const day = (offset) => new Date(Date.now() + offset * DAY_MS).toDateString();
  if (d.toDateString() === day(0)) return t("nextlive.today", { time });
  if (d.toDateString() === day(1)) return t("nextlive.tomorrow", { time });
  const en = getLang() === "en";
  const weekday = d.toLocaleDateString(en ? "en-GB" : "zh-CN", { weekday: "short" });
  const date = en ? d.toLocaleDateString("en-GB", { day: "numeric", month: "short" }) : `${d.getMonth() + 1}月${d.getDate()}日`;
  return t("nextlive.date", { date, weekday, time });
}

export class ScheduleCard {
  /** box: #schedule-card; api: consoleapi.js's client with the viewer's token; serverNow() → ms. */
  constructor({ box, room, api, serverNow, isAnonymous }) {
    this.box = box;
    this.path = `/api/rooms/${encodeURIComponent(room)}/reservations`;
    this.api = api;
    this.serverNow = serverNow;
    this.isAnonymous = isAnonymous;
    this.live = false;
    this.at = null; // next_live_at, epoch ms
    this.title = "";
    this.count = 0;
    this.reserved = false;
    this.pending = false;
    // Built once and updated in place, so a ticking clock never swaps the button under a finger.
    this.nodes = {
      when: el("span", { class: "nextlive-when" }),
      title: el("div", { class: "nextlive-title" }),
      label: el("span", { class: "nextlive-label" }),
      clock: el("span", { id: "schedule-countdown", class: "nextlive-clock num" }),
      count: el("span", { id: "schedule-count", class: "nextlive-count num", role: "status" }),
      mine: el("span", { class: "nextlive-mine" }),
      button: el("button", { id: "reserve-button", type: "button", class: "btn", onclick: () => this.toggle() }),
    };
    const n = this.nodes;
    this.tag = el("span", { class: "nextlive-tag" });
    box.replaceChildren(
      el("div", { class: "nextlive-head" }, this.tag, n.when),
      n.title,
      el("div", { class: "nextlive-time" }, n.label, n.clock),
      el("div", { class: "nextlive-foot" }, n.count, n.mine, n.button),
    );
  }

  /** Every welcome carries the schedule while the room is not live; our own reservation is
   * asked for separately (the welcome only counts them). */
  welcome(msg) {
    const st = msg.state ?? {};
    this.live = Boolean(st.live);
    this.at = this.live ? null : (st.next_live_at ?? null);
    this.title = st.next_title ?? "";
    if (typeof st.reservations === "number") this.count = st.reservations;
    this.render();
    if (this.visible() && !this.isAnonymous()) this.load();
  }

  /** The room went live (the card goes, and that time is used up) or ended. */
  onLive(live) {
    this.live = live;
    if (live) this.at = null;
    this.render();
  }

  async load() {
    try {
      this.answer(await this.api(this.path));
    } catch {
      // The welcome's count stays; the button still works (a repeated POST is a no-op).
    }
  }

  answer(body) {
    if (typeof body?.count === "number") this.count = body.count;
    if (typeof body?.reserved === "boolean") this.reserved = body.reserved;
    this.render();
  }

  async toggle() {
    if (this.isAnonymous()) return toast(t("reserve.signin"), "error");
    if (this.pending) return undefined;
    const cancel = this.reserved;
    this.pending = true;
    this.render();
    try {
      this.answer(await this.api(this.path, { method: cancel ? "DELETE" : "POST" }));
      toast(t(cancel ? "reserve.cancelled" : "reserve.ok"));
    } catch (err) {
      toast(t("reserve.failed", { reason: errorText(err.code, err.message) }), "error");
    } finally {
      this.pending = false;
      this.render();
    }
    return undefined;
  }

  visible() {
    return !this.live && typeof this.at === "number" && this.serverNow() - this.at < STALE_MS;
  }

  render() {
    this.box.hidden = !this.visible();
    if (this.box.hidden) return;
    const n = this.nodes;
    const anonymous = this.isAnonymous();
    setText(this.tag, t("nextlive.tag"));
    setText(n.when, when(this.at));
    setText(n.title, this.title);
    n.title.hidden = !this.title;
    n.count.dataset.count = String(this.count);
    setText(n.count, t("nextlive.count", { n: count(this.count) }));
    const mine = this.reserved && !anonymous;
    n.mine.hidden = !mine;
    setText(n.mine, t("reserve.mine"));
    n.button.dataset.reserved = mine ? "1" : "0";
    n.button.className = `btn reserve${mine ? " ghost" : ""}`;
    n.button.disabled = anonymous || this.pending;
    if (this.pending) n.button.setAttribute("aria-busy", "true");
    else n.button.removeAttribute("aria-busy");
    setText(n.button, t(anonymous ? "reserve.signin" : mine ? "reserve.cancel" : "reserve.button"));
    this.tick();
  }

  /** The countdown between messages; hides the card once its time is long past. */
  tick() {
    if (this.box.hidden !== !this.visible()) return this.render();
    if (this.box.hidden) return undefined;
    const left = this.at - this.serverNow();
    const days = Math.floor(Math.max(0, left) / DAY_MS);
    const clock = days > 0 ? t("nextlive.days", { d: days, t: countdown(left - days * DAY_MS) }) : countdown(left);
    this.box.dataset.state = left > 0 ? "upcoming" : "due";
    this.nodes.clock.dataset.left = String(Math.max(0, Math.ceil(left / 1000)));
    setText(this.nodes.label, left > 0 ? t("nextlive.in") : "");
    this.nodes.label.hidden = left <= 0;
    setText(this.nodes.clock, left > 0 ? clock : t("nextlive.soon"));
    return undefined;
  }
}
