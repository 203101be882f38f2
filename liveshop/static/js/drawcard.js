// Lucky draws (福袋) on both pages: the room's draws from `welcome.state.draws` and `draw`
// messages (always the whole latest object), drawn as cards with the prize, a countdown by
// the server's clock and the entrant count; on the viewer page an enter button (→ 已参与).
// Once drawn: the winners, "you won" for a winner, and how to check the draw (the seed,
// the commitment and the rule of docs/protocol.md, with the REST URL of the entrants).

import { count, countdown, nickname } from "./format.js";
import { t } from "./i18n.js";
import { el, errorText, setText, toast } from "./ui.js";

const KEEP_DRAWN_MS = 10 * 60_000;

export class DrawCards {
  /** box; room; send(msg) → bool; serverNow() → ms; getUser() → id; entering: the viewer page. */
  constructor({ box, room, send, serverNow, getUser = () => null, entering = false, isAnonymous = () => false }) {
    this.box = box;
    this.room = room;
    this.send = send;
    this.serverNow = serverNow;
    this.getUser = getUser;
    this.entering = entering;
    this.isAnonymous = isAnonymous;
    this.draws = new Map(); // draw_id → draw
    this.entered = new Set();
    this.refused = new Set(); // draws we may not enter
    this.pending = null;
  }

  welcome(msg) {
    this.draws.clear();
    for (const d of msg.state?.draws ?? []) if (d?.draw_id) this.draws.set(d.draw_id, { ...d, seenAt: Date.now() });
    this.render();
  }

  onDraw(msg) {
    const d = { ...this.draws.get(msg.draw_id), ...msg, seenAt: Date.now() };
    delete d.type;
    this.draws.set(msg.draw_id, d);
    this.render();
  }

  error(msg) {
    if (msg.ref !== "draw_enter") return false;
    const id = this.pending;
    this.pending = null;
    if (id) {
      this.entered.delete(id);
      if (msg.code === "forbidden") this.refused.add(id);
    }
    toast(msg.code === "forbidden" ? t("draw.not_eligible") : errorText(msg.code, msg.message, msg.ref), "error");
    this.render();
    return true;
  }

  enter(drawId) {
    if (this.isAnonymous()) return toast(t("draw.signin"), "error");
    if (!this.send({ type: "draw_enter", draw_id: drawId })) return undefined;
    this.pending = drawId;
    this.entered.add(drawId);
    this.render();
    return undefined;
  }

  visible() {
    const now = this.serverNow();
    return [...this.draws.values()]
      .filter((d) => d.status === "open" || now - d.ends_at < KEEP_DRAWN_MS)
      .sort((a, b) => b.ends_at - a.ends_at);
  }

  render() {
    const draws = this.visible();
    this.box.hidden = !draws.length && this.entering;
    this.box.replaceChildren(
      ...(draws.length ? draws.map((d) => this.card(d)) : [el("p", { class: "empty", text: t("draw.none") })]),
    );
  }

  clock(d) {
    const left = d.ends_at - this.serverNow();
    return left > 0 ? t("draw.ends_in", { t: countdown(left) }) : t("draw.drawing");
  }

  card(d) {
    const drawn = d.status === "drawn";
    const winners = d.winners ?? [];
    const user = this.getUser();
    const won = drawn && user && winners.includes(user);
    return el(
      "section",
      {
        class: `draw-card card${won ? " won" : ""}`,
        dataset: { draw: d.draw_id, status: d.status, entrants: String(d.entrants ?? 0), won: String(Boolean(won)) },
      },
      el(
        "div",
        { class: "draw-head" },
        el("span", { class: "draw-tag", text: t(drawn ? "draw.drawn" : "draw.open") }),
        el("span", { class: "draw-clock num", text: drawn ? "" : this.clock(d) }),
      ),
      el("div", { class: "draw-prize", text: d.prize }),
      el(
        "div",
        { class: "draw-meta" },
        el("span", { class: "draw-entrants num", text: t("draw.entrants", { n: count(d.entrants ?? 0) }) }),
        el("span", { class: "draw-count num", text: t("draw.count", { n: count(d.winners_count) }) }),
        el("span", { class: "draw-eligible", text: t(`draw.eligible.${d.eligible ?? "all"}`) }),
      ),
      drawn ? null : this.enterButton(d),
      drawn ? this.result(d, winners, won, user) : null,
    );
  }

  enterButton(d) {
    if (!this.entering) return null;
    const entered = this.entered.has(d.draw_id);
    const refused = this.refused.has(d.draw_id);
    const over = this.serverNow() >= d.ends_at;
    let label = "draw.enter";
    if (this.isAnonymous()) label = "draw.signin";
    else if (entered) label = "draw.entered";
    else if (refused) label = "draw.not_eligible";
    return el("button", {
      type: "button",
      class: `btn draw-enter${entered ? " entered" : ""}`,
      disabled: entered || refused || over || this.isAnonymous(),
      text: `${entered ? "✓ " : ""}${t(label)}`,
      onclick: () => this.enter(d.draw_id),
    });
  }

  result(d, winners, won, user) {
    const url = `/api/rooms/${encodeURIComponent(this.room)}/draws/${encodeURIComponent(d.draw_id)}`;
    return el(
      "div",
      { class: "draw-result" },
      this.entering && user && this.entered.has(d.draw_id)
        ? el("div", { class: won ? "draw-won" : "draw-lost", text: t(won ? "draw.you_won" : "draw.not_won") })
        : this.entering && won
          ? el("div", { class: "draw-won", text: t("draw.you_won") })
          : null,
      el("div", { class: "draw-winners-title", text: t("draw.winners_list") }),
      winners.length
        ? el(
            "ol",
            { class: "draw-winners" },
            ...winners.map((w) =>
              el("li", { class: w === user ? "me" : "", dataset: { user: w }, text: nickname(w) }),
            ),
          )
        : el("p", { class: "empty", text: t("draw.no_winners") }),
      el(
        "details",
        { class: "draw-verify" },
        el("summary", { text: t("draw.verify") }),
        el("div", { class: "draw-verify-label", text: t("draw.commitment") }),
        el("code", { class: "draw-commitment", text: d.commitment ?? "" }),
        el("div", { class: "draw-verify-label", text: t("draw.seed") }),
        el("code", { class: "draw-seed", text: d.seed ?? "" }),
        el("p", { class: "draw-verify-note", text: t("draw.verify_note") }),
        el("a", { class: "draw-entrants-link", href: url, target: "_blank", rel: "noopener", text: t("draw.entrants_link") }),
      ),
    );
  }

  tick() {
    for (const node of this.box.querySelectorAll(".draw-card[data-status='open']")) {
      const d = this.draws.get(node.dataset.draw);
      if (!d) continue;
      setText(node.querySelector(".draw-clock"), this.clock(d));
      const btn = node.querySelector(".draw-enter");
      if (btn && this.serverNow() >= d.ends_at) btn.disabled = true;
    }
  }
}
