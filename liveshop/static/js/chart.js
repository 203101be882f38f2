// The console's session chart: viewers (left scale) and cumulative orders (right scale)
// over time, drawn as inline SVG. Owns only the <svg> it is given; no library, no canvas,
// so it stays crisp on any screen and can be inspected like the rest of the page.

const NS = "http://www.w3.org/2000/svg";
const PAD = { top: 12, right: 40, bottom: 22, left: 40 };
const MAX_POINTS = 600; // two hours at one sample every 12 s, or ten minutes every second

function node(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/** A round axis maximum ≥ v (1, 2, 5 × 10ⁿ) so labels read "50", not "47". */
function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function elapsed(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${String(m).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** Samples of {t, viewers, orders}; thinned by halving when long so drawing stays cheap. */
export class Series {
  constructor() {
    this.points = [];
    this.sessionId = null;
  }

  add(sessionId, t, viewers, orders) {
    if (sessionId !== this.sessionId) {
      this.points = []; // a new broadcast session starts a new chart
      this.sessionId = sessionId;
    }
    this.points.push({ t, viewers, orders });
    if (this.points.length > MAX_POINTS) {
      this.points = this.points.filter((_, i) => i % 2 === 0 || i === this.points.length - 1);
    }
  }
}

/** Draw `series` into `svg` at its current size. `labels` = {viewers, orders, empty}. */
export function drawChart(svg, series, labels) {
  const width = Math.max(240, Math.round(svg.clientWidth || svg.parentElement.clientWidth));
  const height = Math.max(140, Math.round(svg.clientHeight || 180));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const pts = series.points;
  const w = width - PAD.left - PAD.right;
  const h = height - PAD.top - PAD.bottom;

  const vMax = niceMax(Math.max(0, ...pts.map((p) => p.viewers)));
  const oMax = niceMax(Math.max(0, ...pts.map((p) => p.orders)));
  const t0 = pts.length ? pts[0].t : 0;
  const span = Math.max(60_000, pts.length ? pts[pts.length - 1].t - t0 : 0);
  const x = (t) => PAD.left + ((t - t0) / span) * w;
  const yV = (v) => PAD.top + h - (v / vMax) * h;
  const yO = (v) => PAD.top + h - (v / oMax) * h;

  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + (h * i) / 4;
    svg.append(node("line", { x1: PAD.left, x2: PAD.left + w, y1: y, y2: y, class: "grid" }));
  }
  svg.append(
    node("text", { x: PAD.left - 6, y: PAD.top + 4, class: "axis viewers", "text-anchor": "end" }, vMax),
    node("text", { x: PAD.left - 6, y: PAD.top + h, class: "axis viewers", "text-anchor": "end" }, 0),
    node("text", { x: PAD.left + w + 6, y: PAD.top + 4, class: "axis orders" }, oMax),
    node("text", { x: PAD.left + w + 6, y: PAD.top + h, class: "axis orders" }, 0),
    node("text", { x: PAD.left, y: height - 4, class: "axis" }, "0:00"),
    node("text", { x: PAD.left + w, y: height - 4, class: "axis", "text-anchor": "end" }, elapsed(span)),
  );

  if (pts.length < 2) {
    svg.append(
      node("text", { x: PAD.left + w / 2, y: PAD.top + h / 2, class: "empty", "text-anchor": "middle" },
        labels.empty),
    );
    return;
  }
  const line = (y, key) => pts.map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  // Viewers as a filled area (the room's size), orders as a step-like line over it.
  const area = `${PAD.left},${PAD.top + h} ${line(yV, "viewers")} ${x(pts[pts.length - 1].t).toFixed(1)},${PAD.top + h}`;
  svg.append(
    node("polygon", { points: area, class: "area viewers" }),
    node("polyline", { points: line(yV, "viewers"), class: "line viewers" }),
    node("polyline", { points: line(yO, "orders"), class: "line orders" }),
  );
  const last = pts[pts.length - 1];
  svg.append(
    node("circle", { cx: x(last.t), cy: yV(last.viewers), r: 3.5, class: "dot viewers" }),
    node("circle", { cx: x(last.t), cy: yO(last.orders), r: 3.5, class: "dot orders" }),
  );
  svg.setAttribute("aria-label", `${labels.viewers} ${last.viewers}, ${labels.orders} ${last.orders}`);
}
