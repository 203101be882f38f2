// The console's next live (下次直播): the form (a local date and time, a title) that PUTs
// `/api/rooms/{room}/schedule`, and on #schedule-status what is set (from `welcome.state`
// while off air, and from each answer) or why a save was refused, in the owner's words with
// the server's own message under them. Owns #schedule-form; viewers' cards are schedulecard.js's.

import { t } from "./i18n.js";
import { when } from "./schedulecard.js";
import { $, el, errorText, setText, toast } from "./ui.js";

const two = (n) => String(n).padStart(2, "0");

/** Epoch ms → a datetime-local value ("2025-05-03T20:00") in the phone's own time zone. */
function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

export class ScheduleForm {
  constructor({ room, api, serverNow }) {
    this.roomPath = `/api/rooms/${encodeURIComponent(room)}`;
    this.path = `${this.roomPath}/schedule`;
    this.api = api;
    this.serverNow = serverNow;
    this.live = false;
    this.current = undefined; // {at, title}; null: none set; undefined: not known (live)
    this.refusal = null; // {key, vars, detail}: the last save's, until the next one
    this.busy = false;
    $("#schedule-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.save();
    });
    $("#schedule-clear").addEventListener("click", () => this.put(0, ""));
  }

  /** While the room is off air the welcome says what is set; live, it says nothing. */
  welcome(msg) {
    this.take(msg.state ?? {});
  }

  take(st) {
    this.live = Boolean(st.live);
    if (this.live) return this.render();
    this.current = st.next_live_at ? { at: st.next_live_at, title: st.next_title ?? "" } : null;
    if (this.current && !$("#schedule-at").value) {
      $("#schedule-at").value = localInput(this.current.at);
      $("#schedule-title").value = this.current.title;
    }
    return this.render();
  }

  save() {
    const value = $("#schedule-at").value;
    // "YYYY-MM-DDTHH:MM" without an offset is local time, as the picker showed it.
    const at = value ? new Date(value).getTime() : Number.NaN;
    if (!Number.isFinite(at)) return this.refuse({ key: "nextlive.bad_at" });
    if (at <= this.serverNow()) return this.refuse({ key: "nextlive.past" });
    return this.put(at, $("#schedule-title").value.trim());
  }

  async put(at, title) {
    if (this.busy) return;
    this.busy = true;
    this.refusal = null;
    this.render();
    try {
      const body = await this.api(this.path, { method: "PUT", body: { next_live_at: at, next_title: title } });
      this.current = body?.next_live_at ? { at: body.next_live_at, title: body.next_title ?? "" } : null;
      if (!this.current) {
        $("#schedule-at").value = "";
        $("#schedule-title").value = "";
      }
      toast(t(this.current ? "nextlive.saved" : "nextlive.cleared"));
    } catch (err) {
      const reason = err.code === "bad_message" ? t("nextlive.bad_message") : errorText(err.code, err.message);
      this.refusal = { key: "nextlive.refused", vars: { reason }, detail: err.message };
    } finally {
      this.busy = false;
      this.render();
    }
  }

  refuse(refusal) {
    this.refusal = refusal;
    this.render();
  }

  render() {
    const box = $("#schedule-status");
    $("#schedule-save").disabled = this.busy;
    $("#schedule-clear").disabled = this.busy;
    $("#schedule-clear").hidden = this.current === null; // nothing to clear
    setText($("#schedule-save"), t(this.busy ? "nextlive.saving" : "nextlive.save"));
    $("#schedule-at").min = localInput(this.serverNow());
    let state = "unknown";
    let text = this.live ? t("nextlive.unknown") : "";
    if (this.refusal) [state, text] = ["error", t(this.refusal.key, this.refusal.vars)];
    else if (this.busy) [state, text] = ["busy", t("nextlive.saving")];
    else if (this.current) {
      const title = this.current.title ? ` · ${this.current.title}` : "";
      [state, text] = ["set", t("nextlive.current", { when: `${when(this.current.at)}${title}` })];
    } else if (this.current === null) [state, text] = ["none", t("nextlive.none")];
    box.dataset.state = state;
    const detail = state === "error" ? this.refusal.detail : "";
    box.replaceChildren(text, ...(detail ? [" ", el("span", { class: "error-detail", text: detail })] : []));
  }

  /** Live, the server stops saying (what was set is that live's now); ended, the room's
   * state says again what viewers will see, which may be the time the live just used. */
  async onLive(live) {
    this.live = live;
    this.current = undefined;
    this.render();
    if (live) return;
    try {
      this.take(await this.api(this.roomPath));
    } catch {
      // Unknown until the next welcome or save.
    }
  }
}
