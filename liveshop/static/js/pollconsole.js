// The console's poll controls (投票): the form (question, 2–6 options, duration) that sends
// `poll_start`, and the room's polls with live counts as bars (pollcard.js), the result once
// closed. Owns #poll-form and #poll-list.

import { parseCount } from "./format.js";
import { t } from "./i18n.js";
import { PollCards } from "./pollcard.js";
import { $, el } from "./ui.js";

const MAX_OPTIONS = 6;

export class PollConsole {
  constructor({ send, serverNow }) {
    this.send = send;
    this.cards = new PollCards({ box: $("#poll-list"), send, serverNow });
    $("#poll-add-option").addEventListener("click", () => this.addOption());
    $("#poll-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.start();
    });
    this.addOption();
    this.addOption();
  }

  addOption() {
    const box = $("#poll-options");
    const n = box.children.length + 1;
    if (n > MAX_OPTIONS) return;
    box.append(
      el("input", {
        class: "poll-option-input",
        maxlength: "40",
        dataset: { n: String(n) },
        placeholder: t("poll.option", { n }),
        "aria-label": t("poll.option", { n }),
      }),
    );
    $("#poll-add-option").disabled = n >= MAX_OPTIONS;
  }

  start() {
    const question = $("#poll-question").value.trim();
    const options = [...document.querySelectorAll(".poll-option-input")].map((i) => i.value.trim()).filter(Boolean);
    const duration = parseCount($("#poll-duration").value);
    const err = $("#poll-form-error");
    if (!question || options.length < 2 || duration === null || duration < 10 || duration > 600) {
      err.textContent = t("poll.bad_form");
      return;
    }
    err.textContent = "";
    if (this.send({ type: "poll_start", question, options, duration_s: duration })) {
      $("#poll-question").value = "";
      for (const i of document.querySelectorAll(".poll-option-input")) i.value = "";
    }
  }

  relabel() {
    for (const i of document.querySelectorAll(".poll-option-input")) {
      i.placeholder = t("poll.option", { n: Number(i.dataset.n) });
      i.setAttribute("aria-label", i.placeholder);
    }
    this.cards.render();
  }
}
