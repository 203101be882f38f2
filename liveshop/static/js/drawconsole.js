// The console's lucky-draw controls (福袋): the form (prize, winners, duration, who may enter)
// that sends `draw_start`, and the room's draws with the live entrant count and, once drawn,
// the winners (drawcard.js). Owns #draw-form and #draw-list.

import { DrawCards } from "./drawcard.js";
import { parseCount } from "./format.js";
import { t } from "./i18n.js";
import { $ } from "./ui.js";

export class DrawConsole {
  constructor({ room, send, serverNow }) {
    this.send = send;
    this.cards = new DrawCards({ box: $("#draw-list"), room, send, serverNow });
    $("#draw-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.start();
    });
  }

  start() {
    const prize = $("#draw-prize").value.trim();
    const winners = parseCount($("#draw-winners").value);
    const duration = parseCount($("#draw-duration").value);
    const err = $("#draw-form-error");
    const bad = (n, lo, hi) => n === null || n < lo || n > hi;
    if (!prize || bad(winners, 1, 100) || bad(duration, 10, 600)) {
      err.textContent = t("draw.bad_form");
      return;
    }
    err.textContent = "";
    const msg = { type: "draw_start", prize, winners, duration_s: duration, eligible: $("#draw-eligible").value };
    if (this.send(msg)) $("#draw-prize").value = "";
  }
}
