// Moderation on the console (房管): tapping a chat line opens what can be done about it
// (delete the message, mute its author 10 minutes, kick for an hour, appoint as moderator);
// every action is a `mod` with its own request_id, answered by `mod_ack`, and a refusal is
// said in the owner's words. Also the room's blocked-word list (words_add / words_remove),
// read at start from GET /api/rooms/{room}/moderation. Owns #mod-menu, #mod-status, #words-*.

import { nickname } from "./format.js";
import { has, t } from "./i18n.js";
import { $, el, setText, toast } from "./ui.js";

const MUTE_S = 600;
const KICK_S = 3600;

export class ModPanel {
  /** room; send(msg) → bool; api: the console's REST client; onChange(): redraw the chat. */
  constructor({ room, send, api, onChange = () => {} }) {
    this.room = room;
    this.onChange = onChange;
    this.send = send;
    this.api = api;
    this.seq = 0;
    this.pending = new Map(); // request_id → {action, words?}
    this.target = null; // the chat line the menu is open for: {user, text, msgId}
    this.words = []; // the room's blocked words as far as we know
    this.status = null; // {ok, text}
    $("#words-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.wordsAction("words_add");
    });
    $("#words-remove").addEventListener("click", () => this.wordsAction("words_remove"));
  }

  async load() {
    try {
      const data = await this.api(`/api/rooms/${encodeURIComponent(this.room)}/moderation`);
      if (Array.isArray(data?.words)) this.words = [...data.words];
    } catch {
      // the list stays as this page knows it; the server still applies the real one
    }
    this.renderWords();
  }

  /** A chat line was tapped. */
  open(line) {
    this.target = line;
    this.renderMenu();
  }

  close() {
    this.target = null;
    this.renderMenu();
    this.onChange();
  }

  act(action, extra) {
    const request_id = `m-${Date.now().toString(36)}-${++this.seq}`;
    const msg = { type: "mod", request_id, action, ...extra };
    if (!this.send(msg)) return false;
    this.pending.set(request_id, { action, words: extra.words });
    return true;
  }

  actOnTarget(action) {
    const line = this.target;
    if (!line) return;
    const extra = {
      delete: { msg_id: line.msgId },
      mute: { user: line.user, seconds: MUTE_S },
      kick: { user: line.user, seconds: KICK_S },
      appoint: { user: line.user },
    }[action];
    if (this.act(action, extra)) this.close();
  }

  wordsAction(action) {
    const input = $("#words-input");
    const words = input.value
      .split(/[,，\s、]+/)
      .map((w) => w.trim())
      .filter(Boolean);
    if (!words.length) return;
    if (this.act(action, { words })) input.value = "";
  }

  /** `mod_ack`: true when it answered one of ours. */
  onAck(msg) {
    const req = this.pending.get(msg.request_id);
    if (!req) return false;
    this.pending.delete(msg.request_id);
    const action = t(`modpanel.action.${req.action}`);
    if (msg.status === "ok") {
      if (req.action === "words_add") this.words = [...new Set([...this.words, ...req.words])];
      if (req.action === "words_remove") this.words = this.words.filter((w) => !req.words.includes(w));
      this.status = { ok: true, text: t("modpanel.ok", { action }) };
      toast(this.status.text);
    } else {
      const key = `modpanel.reason.${msg.reason}`;
      const reason = has(key) ? t(key) : t("modpanel.reason.other", { reason: msg.reason ?? "?" });
      this.status = { ok: false, text: t("modpanel.refused", { action, reason }) };
      toast(this.status.text, "error");
    }
    this.render();
    return true;
  }

  render() {
    this.renderMenu();
    this.renderWords();
    const box = $("#mod-status");
    box.dataset.state = this.status ? (this.status.ok ? "ok" : "refused") : "";
    setText(box, this.status?.text ?? t("modpanel.hint"));
  }

  renderMenu() {
    const menu = $("#mod-menu");
    const line = this.target;
    menu.hidden = !line;
    if (!line) return;
    const button = (action, key, extra = "") =>
      el("button", {
        type: "button",
        class: `btn small ${extra}`,
        dataset: { modAction: action },
        text: t(key),
        disabled: action === "delete" && !line.msgId,
        onclick: () => this.actOnTarget(action),
      });
    menu.replaceChildren(
      el("div", { class: "mod-menu-title", text: t("modpanel.title") }),
      el(
        "div",
        { class: "mod-menu-line" },
        el("b", { text: nickname(line.user) }),
        el("span", { text: ` ${line.text}` }),
      ),
      el(
        "div",
        { class: "mod-menu-actions" },
        button("delete", "modpanel.delete", "danger"),
        button("mute", "modpanel.mute"),
        button("kick", "modpanel.kick", "danger"),
        button("appoint", "modpanel.appoint", "secondary"),
        el("button", {
          type: "button",
          class: "btn small ghost",
          dataset: { modAction: "cancel" },
          text: t("modpanel.cancel"),
          onclick: () => this.close(),
        }),
      ),
    );
  }

  renderWords() {
    const list = $("#words-list");
    list.replaceChildren(
      ...(this.words.length
        ? this.words.map((w) => el("li", { class: "word-chip", dataset: { word: w }, text: w }))
        : [el("li", { class: "empty", text: t("words.empty") })]),
    );
  }
}
