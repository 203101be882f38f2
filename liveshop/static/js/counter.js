// The pickup counter of the store page: one big field for the 6-digit code (or a QR scan),
// POST …/pickups/verify, and the answer shown big in #verify-result (colour, symbol, words),
// with undo for a verification just made. Owns #verify-form, #scanner and #verify-result;
// the page gives it its REST call and is told after each answer so the board refreshes.

import { hhmm, pickupCode } from "./orders.js";
import { t } from "./i18n.js";
import { Scanner } from "./scan.js";
import { $, el, errorText, setText, toast } from "./ui.js";

const SCAN_REPEAT_MS = 5_000; // the same QR held in front of the camera is one scan
const TONE = {
  verified: "ok",
  undone: "ok",
  already_verified: "warn",
  not_ready: "warn",
  undo_expired: "warn",
}; // everything else (not_found, locked, errors) is "bad"

export class Counter {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {(path: string, opts?: object) => Promise<any>} o.api  throws {status, code, message, details}
   * @param {(order: object) => string} o.describe  "岭南荔枝 500g × 2 · ¥39.80"
   * @param {(order: object|null) => void} o.onAnswer  after every answer (refresh the board)
   */
  constructor({ room, api, describe, onAnswer }) {
    this.room = room;
    this.api = api;
    this.describe = describe;
    this.onAnswer = onAnswer;
    this.input = $("#code-input");
    this.verifying = false;
    this.undoing = false;
    this.result = null; // the latest answer: {result, order?, details?, message?}
    this.answers = 0;

    this.input.addEventListener("input", () => {
      const digits = this.input.value.replace(/\D/g, "").slice(0, 6);
      if (digits !== this.input.value) this.input.value = digits;
      if (digits.length === 6) this.submit(); // six digits are a whole code: no extra tap
    });
    $("#verify-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });

    this.scanner = new Scanner({
      video: $("#scan-video"),
      onCode: (text) => {
        if (this.verifying) return false;
        // A QR holding just six digits is a code; anything else goes to the server as it is.
        this.verify(/^\d{6}$/.test(text) ? { code: text } : { qr: text });
        return true;
      },
      repeatMs: SCAN_REPEAT_MS,
      onState: (on, error) => {
        $("#scanner").hidden = !on;
        document.body.dataset.scan = on ? "on" : "off";
        if (error) toast(t("store.camera_error", { message: error }), "error");
        this.render();
      },
    });
    Scanner.available().then((yes) => {
      $("#scan-btn").hidden = !yes;
    });
    $("#scan-btn").addEventListener("click", () => (this.scanner.on ? this.scanner.stop() : this.scanner.start()));
    $("#scan-stop").addEventListener("click", () => this.scanner.stop());
    // The camera light should not stay on in a pocket or behind another app.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.scanner.stop();
    });
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  submit() {
    if (this.verifying) return; // the answer to this code is on its way
    const code = this.input.value.replace(/\D/g, "");
    if (code.length !== 6) {
      if (code.length) toast(t("store.bad_code"), "error");
      this.focus();
      return;
    }
    this.verify({ code });
  }

  async verify(body) {
    this.verifying = true;
    this.render();
    let order = null;
    try {
      const r = encodeURIComponent(this.room);
      const data = await this.api(`/api/rooms/${r}/pickups/verify`, { method: "POST", body });
      order = data?.order ?? null;
      this.show({ result: data?.status ?? "verified", order });
    } catch (err) {
      this.show({ result: err.code ?? "offline", details: err.details, message: err.message });
    } finally {
      this.verifying = false;
      this.input.value = "";
      this.render();
      this.focus(); // the next customer is already at the counter
      this.onAnswer(order);
    }
  }

  async undo(order) {
    if (this.undoing) return;
    this.undoing = true;
    this.render();
    let moved = null;
    try {
      const id = encodeURIComponent(order.order_id);
      const data = await this.api(`/api/orders/${id}/undo_verify`, { method: "POST", body: {} });
      moved = data?.order ?? null;
      this.show({ result: "undone", order: moved ?? order });
    } catch (err) {
      if (err.code === "undo_expired") this.show({ result: "undo_expired", order });
      else toast(errorText(err.code ?? "offline", err.message), "error");
    } finally {
      this.undoing = false;
      this.render();
      this.onAnswer(moved);
    }
  }

  show(answer) {
    this.result = answer;
    this.answers += 1;
    if ((TONE[answer.result] ?? "bad") !== "ok") navigator.vibrate?.([80, 60, 80]);
    this.render();
  }

  text(res) {
    const o = res.order;
    const d = res.details ?? {};
    switch (res.result) {
      case "verified":
      case "undone":
      case "undo_expired": {
        const code = o ? pickupCode(o) : null;
        return {
          title: t(`verify.${res.result}`),
          detail: [o ? this.describe(o) : null, code ? t("card.code", { code }) : null].filter(Boolean).join(" · "),
        };
      }
      case "already_verified": {
        const time = typeof d.verified_at === "number" ? hhmm(d.verified_at) : "—";
        return {
          title: t("verify.already_verified"),
          detail: d.verified_by
            ? t("verify.already_detail", { time, by: d.verified_by })
            : t("verify.already_detail_time", { time }),
        };
      }
      case "not_found":
      case "not_ready":
      case "locked":
        return { title: t(`verify.${res.result}`), detail: t(`verify.${res.result}_detail`) };
      default:
        return { title: t("verify.error"), detail: errorText(res.result, res.message) };
    }
  }

  render() {
    const btn = $("#verify-btn");
    btn.disabled = this.verifying;
    setText(btn, t(this.verifying ? "store.verifying" : "store.verify"));
    if (this.verifying) btn.setAttribute("aria-busy", "true");
    else btn.removeAttribute("aria-busy");
    setText($("#scan-btn"), t(this.scanner.on ? "store.scan_stop" : "store.scan"));
    this.renderResult();
  }

  renderResult() {
    const box = $("#verify-result");
    const res = this.result;
    if (!res) {
      box.hidden = true;
      return;
    }
    const { title, detail } = this.text(res);
    const tone = TONE[res.result] ?? "bad";
    box.hidden = false;
    box.dataset.result = res.result;
    box.dataset.tone = tone;
    box.dataset.n = String(this.answers); // tells two equal answers in a row apart
    if (res.order) box.dataset.order = res.order.order_id;
    else delete box.dataset.order;
    setText(box.querySelector(".vr-icon"), { ok: "✓", warn: "!", bad: "✕" }[tone]);
    setText(box.querySelector(".vr-title"), title);
    setText(box.querySelector(".vr-detail"), detail);
    const actions = [];
    if (res.result === "verified" && res.order) {
      actions.push(el("button", {
        type: "button",
        class: "btn ghost undo-btn",
        dataset: { action: "undo" },
        disabled: this.undoing,
        "aria-busy": this.undoing ? "true" : null,
        text: t("verify.undo"),
        onclick: () => this.undo(res.order),
      }));
    }
    box.querySelector(".vr-actions").replaceChildren(...actions);
    if (box.dataset.shown !== box.dataset.n) {
      box.dataset.shown = box.dataset.n;
      box.classList.remove("flash");
      void box.offsetWidth; // restart the nudge, so a repeat answer is seen to be new
      box.classList.add("flash");
    }
  }
}
