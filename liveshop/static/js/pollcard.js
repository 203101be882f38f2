// Polls (投票) on both pages: the room's polls from `welcome.state.polls` and `poll` messages
// (coalesced, always the whole latest object), drawn as cards. On the viewer page the options
// are buttons until the user voted or the poll closed, then bars with the counts; on the
// console always bars. Owns the cards inside the box it is given.

import { count, countdown } from "./format.js";
import { t } from "./i18n.js";
import { el, errorText, setText, toast } from "./ui.js";

const KEEP_CLOSED_MS = 10 * 60_000;

export class PollCards {
  /**
   * box: the container; send(msg) → bool; serverNow() → ms; voting: the viewer page (buttons);
   * isAnonymous() → bool (viewer page only).
   */
  constructor({ box, send, serverNow, voting = false, isAnonymous = () => false }) {
    this.box = box;
    this.send = send;
    this.serverNow = serverNow;
    this.voting = voting;
    this.isAnonymous = isAnonymous;
    this.polls = new Map(); // poll_id → poll
    this.voted = new Map(); // poll_id → option index (or -1: the server says we voted before)
    this.pending = null; // poll_id of the vote in flight, to place an error
  }

  welcome(msg) {
    this.polls.clear();
    for (const poll of msg.state?.polls ?? []) if (poll?.poll_id) this.polls.set(poll.poll_id, { ...poll });
    this.render();
  }

  onPoll(msg) {
    const poll = { ...this.polls.get(msg.poll_id), ...msg };
    delete poll.type;
    this.polls.set(msg.poll_id, poll);
    this.render();
  }

  /** A refused vote; true when it was ours to show. */
  error(msg) {
    if (msg.ref !== "vote") return false;
    const pollId = this.pending;
    this.pending = null;
    if (msg.code === "already_voted" && pollId) {
      if (!this.voted.has(pollId)) this.voted.set(pollId, -1);
    } else if (pollId) {
      this.voted.delete(pollId);
    }
    toast(errorText(msg.code, msg.message, msg.ref), "error");
    this.render();
    return true;
  }

  vote(pollId, option) {
    if (this.isAnonymous()) return toast(t("poll.signin"), "error");
    if (!this.send({ type: "vote", poll_id: pollId, option })) return undefined;
    this.pending = pollId;
    this.voted.set(pollId, option);
    this.render();
    return undefined;
  }

  visible() {
    const now = this.serverNow();
    return [...this.polls.values()]
      .filter((p) => p.status === "open" || now - p.ends_at < KEEP_CLOSED_MS)
      .sort((a, b) => b.ends_at - a.ends_at);
  }

  render() {
    const polls = this.visible();
    this.box.hidden = !polls.length && this.voting;
    this.box.replaceChildren(
      ...(polls.length ? polls.map((p) => this.card(p)) : [el("p", { class: "empty", text: t("poll.none") })]),
    );
  }

  closed(poll) {
    return poll.status === "closed" || this.serverNow() >= poll.ends_at;
  }

  card(poll) {
    const closed = this.closed(poll);
    const voted = this.voted.has(poll.poll_id);
    const bars = !this.voting || voted || closed;
    const counts = poll.counts ?? poll.options.map(() => 0);
    const total = counts.reduce((a, b) => a + b, 0);
    const most = Math.max(0, ...counts);
    const mine = this.voted.get(poll.poll_id);
    const options = poll.options.map((text, i) => {
      if (!bars) {
        return el("button", {
          type: "button",
          class: "btn poll-choice",
          dataset: { option: String(i) },
          text,
          onclick: () => this.vote(poll.poll_id, i),
        });
      }
      const share = total ? (100 * counts[i]) / total : 0;
      const lead = closed && total > 0 && counts[i] === most;
      return el(
        "div",
        {
          class: `poll-bar${i === mine ? " mine" : ""}${lead ? " lead" : ""}`,
          dataset: { option: String(i), count: String(counts[i]) },
        },
        el("span", { class: "poll-bar-fill", style: `width:${share}%` }),
        el("span", { class: "poll-bar-text", text: `${i === mine ? "✓ " : ""}${text}` }),
        el("span", { class: "poll-bar-count num", text: `${t("poll.votes", { n: count(counts[i]) })} · ${Math.round(share)}%` }),
      );
    });
    return el(
      "section",
      { class: "poll-card card", dataset: { poll: poll.poll_id, status: closed ? "closed" : "open", total: String(total) } },
      el(
        "div",
        { class: "poll-head" },
        el("span", { class: "poll-tag", text: t(closed ? "poll.closed" : "poll.open") }),
        el("span", {
          class: "poll-clock num",
          text: closed ? "" : t("poll.ends_in", { t: countdown(poll.ends_at - this.serverNow()) }),
        }),
      ),
      el("div", { class: "poll-question", text: poll.question }),
      el("div", { class: "poll-options" }, ...options),
      el(
        "div",
        { class: "poll-foot" },
        el("span", { class: "poll-total num", text: t("poll.total", { n: count(total) }) }),
        this.voting && voted ? el("span", { class: "poll-voted", text: t("poll.voted") }) : null,
      ),
    );
  }

  /** Countdowns tick between messages; a poll past its time shows as closed. */
  tick() {
    for (const node of this.box.querySelectorAll(".poll-card")) {
      const poll = this.polls.get(node.dataset.poll);
      if (!poll) continue;
      if (this.closed(poll) !== (node.dataset.status === "closed")) return this.render();
      if (node.dataset.status === "open") {
        setText(node.querySelector(".poll-clock"), t("poll.ends_in", { t: countdown(poll.ends_at - this.serverNow()) }));
      }
    }
    return undefined;
  }
}
