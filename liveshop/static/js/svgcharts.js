// The review's charts as inline SVG: viewers per minute (a line) over orders per minute
// (bars) with the hints marked on the time axis, and the funnel as horizontal bars. Owns
// only the <svg> it is given and draws it at the width it is told (the page measures);
// every text arrives already formatted, so this module knows no language and no money.

const NS = "http://www.w3.org/2000/svg";
const MARKER_BAND = 24; // room above the plot for the hints' numbered badges
const MIN_TICK_GAP = 46; // px between two time labels, so "1:30" never touches "1:35"
const DOTS_UP_TO = 40; // minutes; beyond that the dots would only blur the line
const MAX_BAR = 28; // px: one minute of data must not look like a wall

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

function titled(n, text) {
  n.append(node("title", {}, text));
  return n;
}

const fix = (v) => Math.round(v * 10) / 10;

/**
 * A scale from 0 to a round top with about `ticks` steps of 1, 2 or 5 × 10ⁿ (never below
 * 1, these are counts): 3 → 0..4 by 1, 47 → 0..50 by 10, 318 → 0..400 by 100.
 */
export function niceScale(max, ticks = 4) {
  const want = Math.max(1, max) / ticks;
  const p = 10 ** Math.floor(Math.log10(want));
  let step = p;
  for (const m of [1, 2, 5, 10]) {
    if (m * p >= want) {
      step = m * p;
      break;
    }
  }
  step = Math.max(1, step);
  return { top: Math.max(step * Math.ceil(Math.max(1, max) / step), step), step };
}

/** Minutes between two time labels: the smallest of 1, 2, 5, 10, 15, 30, 60 … that
 * leaves at least MIN_TICK_GAP px between them at `pxPerMinute`. */
export function tickStep(pxPerMinute) {
  for (const s of [1, 2, 5, 10, 15, 20, 30, 60, 90, 120, 180, 240, 360]) {
    if (s * pxPerMinute >= MIN_TICK_GAP) return s;
  }
  return 720;
}

/** "0:00", "0:45", "2:05": minutes since going live, as hours:minutes. */
export function elapsedLabel(minutes) {
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}`;
}

/**
 * Badges for markers at `xs` (px), labelled `labels`, kept between `left` and `right`:
 * neighbours whose badges would touch share one ("2–4"), merged until none touches.
 * → [{items: [index], label, cx, width}], left to right.
 */
export function badges(xs, labels, left, right) {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  let groups = order.map((i) => [i]);
  const place = (items) => {
    const first = labels[items[0]];
    const last = labels[items[items.length - 1]];
    const label = items.length > 1 ? `${first}–${last}` : String(first);
    const width = 10 + label.length * 7;
    const mid = (xs[items[0]] + xs[items[items.length - 1]]) / 2;
    const cx = Math.min(right - width / 2, Math.max(left + width / 2, mid));
    return { items, label, cx, width };
  };
  for (;;) {
    const laid = groups.map(place);
    const k = laid.findIndex((b, j) => j > 0 && b.cx - b.width / 2 < laid[j - 1].cx + laid[j - 1].width / 2 + 3);
    if (k < 0) return laid;
    groups = [...groups.slice(0, k - 1), [...groups[k - 1], ...groups[k]], ...groups.slice(k + 1)];
  }
}

/**
 * Draw the per-minute chart into `svg`, `width` px wide.
 * `minutes`: [{minute, viewers, orders}]; `hints`: [{pos, label, tip}] where `pos` is the
 * hint's time in minutes since going live (fractional) and `label` its number;
 * `text`: {minuteTip(m) → tooltip of a minute, aria, viewers, orders}.
 */
export function drawMinutes(svg, { minutes, hints, width, height, text }) {
  const pad = { top: MARKER_BAND + 8, right: 40, bottom: 24, left: 44 };
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", text.aria);
  const n = Math.max(1, minutes.length);
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const bottom = pad.top + h;
  const slot = w / n;
  const vScale = niceScale(Math.max(0, ...minutes.map((m) => m.viewers)));
  const oScale = niceScale(Math.max(0, ...minutes.map((m) => m.orders)));
  const yV = (v) => bottom - (v / vScale.top) * h;
  const yO = (v) => bottom - (v / oScale.top) * h;
  const xAt = (pos) => pad.left + Math.min(n, Math.max(0, pos)) * slot;

  // Grid and the viewers' scale on the left, the orders' scale on the right.
  const axes = node("g", { class: "axes" });
  for (let v = 0; v <= vScale.top; v += vScale.step) {
    const y = fix(yV(v));
    axes.append(
      node("line", { x1: pad.left, x2: pad.left + w, y1: y, y2: y, class: v ? "grid" : "baseline" }),
      node("text", { x: pad.left - 6, y: y + 4, class: "axis viewers", "text-anchor": "end" }, v),
    );
  }
  for (let v = 0; v <= oScale.top; v += oScale.step) {
    const y = fix(yO(v));
    axes.append(
      node("line", { x1: pad.left + w, x2: pad.left + w + 4, y1: y, y2: y, class: "tick orders" }),
      node("text", { x: pad.left + w + 7, y: y + 4, class: "axis orders" }, v),
    );
  }
  const step = tickStep(slot);
  for (let m = 0; m <= n; m += step) {
    const x = fix(pad.left + m * slot);
    const anchor = m === 0 ? "start" : m === n ? "end" : "middle";
    axes.append(
      node("line", { x1: x, x2: x, y1: bottom, y2: bottom + 4, class: "tick" }),
      node("text", { x, y: bottom + 17, class: "axis time", "text-anchor": anchor }, elapsedLabel(m)),
    );
  }
  svg.append(axes);

  // Orders per minute: one bar per minute (zero-high when none), under the viewers line.
  // Under 3 px a minute the gaps would only grey the bars out: they touch instead.
  const bw = slot < 3 ? slot : Math.min(MAX_BAR, slot * 0.7);
  const bars = node("g", { class: "bars orders", "data-bars": minutes.length });
  for (const [i, m] of minutes.entries()) {
    const y = yO(m.orders);
    bars.append(
      node("rect", {
        x: fix(pad.left + i * slot + (slot - bw) / 2),
        y: fix(y),
        width: fix(bw),
        height: fix(bottom - y),
        class: "bar",
        "data-minute": m.minute,
        "data-orders": m.orders,
      }),
    );
  }
  svg.append(bars);

  const pts = minutes.map((m, i) => [fix(pad.left + (i + 0.5) * slot), fix(yV(m.viewers))]);
  const line = pts.map(([x, y]) => `${x},${y}`).join(" ");
  if (pts.length > 1) {
    const area = `${pts[0][0]},${bottom} ${line} ${pts[pts.length - 1][0]},${bottom}`;
    svg.append(node("polygon", { points: area, class: "area viewers" }));
  }
  svg.append(node("polyline", { points: line, class: "line viewers", "data-points": pts.length }));
  if (pts.length <= DOTS_UP_TO) {
    const dots = node("g", { class: "dots viewers" });
    for (const [x, y] of pts) dots.append(node("circle", { cx: x, cy: y, r: 3.5, class: "dot" }));
    svg.append(dots);
  }

  // The hints: a dashed line at the moment each fired and a numbered badge above the plot;
  // badges that would touch share one ("2–4") and its tooltip lists every text.
  const marks = node("g", { class: "hint-marks", "data-hints": hints.length });
  const xs = hints.map((hint) => xAt(hint.pos));
  const laid = badges(xs, hints.map((hint) => hint.label), pad.left, pad.left + w);
  for (const b of laid) {
    const g = node("g", { class: "hint-mark", "data-labels": b.items.map((i) => hints[i].label).join(",") });
    for (const i of b.items) {
      const x = fix(xs[i]);
      g.append(node("line", { x1: x, x2: x, y1: MARKER_BAND, y2: bottom, class: "hint-line" }));
    }
    g.append(
      node("rect", {
        x: fix(b.cx - b.width / 2),
        y: 4,
        width: fix(b.width),
        height: MARKER_BAND - 6,
        rx: 9,
        class: "hint-badge",
      }),
      node("text", { x: fix(b.cx), y: MARKER_BAND - 6, class: "hint-num", "text-anchor": "middle" }, b.label),
    );
    titled(g, b.items.map((i) => hints[i].tip).join("\n"));
    marks.append(g);
  }
  svg.append(marks);

  // Hover targets last, on top: a whole minute's column answers with its figures.
  const slots = node("g", { class: "slots" });
  for (const [i, m] of minutes.entries()) {
    slots.append(
      titled(
        node("rect", { x: fix(pad.left + i * slot), y: pad.top, width: fix(slot), height: h, class: "slot" }),
        text.minuteTip(m),
      ),
    );
  }
  svg.append(slots);
}

/**
 * The funnel as horizontal bars, one per step, scaled to the largest value; each step
 * after the first carries its rate from the one before (`rate`, already worded).
 * `steps`: [{key, label, value, shown, rate?}]; `aria` (optional) replaces the spoken summary.
 */
export function drawFunnel(svg, { steps, width, aria }) {
  const row = 46; // label line + bar
  const gap = 20; // the rate between two bars
  const height = steps.length * row + (steps.length - 1) * gap + 6;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", aria ?? steps.map((s) => `${s.label} ${s.shown}`).join(", "));
  const max = Math.max(1, ...steps.map((s) => s.value));
  let y = 0;
  for (const [i, s] of steps.entries()) {
    if (i > 0) {
      svg.append(
        node("text", { x: 10, y: y + 14, class: "funnel-rate", "data-step": s.key }, `↓ ${s.rate ?? ""}`),
      );
      y += gap;
    }
    const bar = Math.max(s.value ? 3 : 0, (s.value / max) * (width - 2));
    const g = node("g", { class: "funnel-step", "data-step": s.key, "data-value": s.value });
    g.append(
      node("text", { x: 0, y: y + 15, class: "funnel-label" }, s.label),
      node("text", { x: width, y: y + 15, class: "funnel-value", "text-anchor": "end" }, s.shown),
      node("rect", { x: 0, y: y + 22, width: width, height: 18, rx: 5, class: "funnel-track" }),
      node("rect", { x: 0, y: y + 22, width: fix(bar), height: 18, rx: 5, class: `funnel-bar ${s.key}` }),
    );
    svg.append(g);
    y += row;
  }
  return height;
}
