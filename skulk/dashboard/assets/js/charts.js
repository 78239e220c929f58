// Small line charts drawn as plain SVG (no library: the dashboard works offline).
import { h, s } from "./dom.js";

const W = 360;
const H = 130;
const PAD = { left: 52, right: 8, top: 10, bottom: 20 };

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Path segments of [{at, v}] (v null = a gap) scaled into the plot area. */
export function pathOf(points, t0, t1, yMax) {
  const x = (t) => PAD.left + ((t - t0) / Math.max(t1 - t0, 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (Math.min(v, yMax) / yMax) * (H - PAD.top - PAD.bottom);
  let d = "";
  let pen = "M";
  for (const p of points) {
    if (p.v === null || p.v === undefined || Number.isNaN(p.v)) { pen = "M"; continue; }
    d += `${pen}${x(p.at).toFixed(1)},${y(p.v).toFixed(1)} `;
    pen = "L";
  }
  return d.trim();
}

/** A dot on the newest point, so a range with one or two samples still shows something. */
function lastDot(d) {
  const last = d.split(" ").pop();
  if (!last) return null;
  const [cx, cy] = last.slice(1).split(",");
  return s("circle", { class: "chart-dot", cx, cy, r: 2.5 });
}

/**
 * One chart: `points` [{at (unix s), v}], `format` turns a value into text, `max` fixes the top
 * of the scale (e.g. 100 for percentages; default: the largest value, rounded up a little).
 */
export function lineChart({ key, title, points, format, max, t0, t1 }) {
  const values = points.map((p) => p.v).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  const yMax = max ?? (Math.max(...values, 0) * 1.15 || 1);
  const last = values.length ? values[values.length - 1] : null;
  const start = t0 ?? (points[0]?.at || 0);
  const end = t1 ?? (points[points.length - 1]?.at || start + 1);
  const grid = [0, 0.5, 1].map((f) => {
    const y = H - PAD.bottom - f * (H - PAD.top - PAD.bottom);
    return [s("line", { class: "chart-grid", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }),
      s("text", { class: "chart-label", x: PAD.left - 4, y: y + 4, "text-anchor": "end" }, format(yMax * f))];
  });
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${title}: ${last === null ? "no data" : format(last)}` },
  ...grid,
  s("text", { class: "chart-label", x: PAD.left, y: H - 4 }, points.length ? clock(start) : ""),
  s("text", { class: "chart-label", x: W - PAD.right, y: H - 4, "text-anchor": "end" }, points.length ? clock(end) : ""),
  s("path", { class: "chart-line", d: pathOf(points, start, end, yMax) }),
  lastDot(pathOf(points, start, end, yMax)));
  return h("figure", { class: "card chart-card", "data-chart": key, "data-points": String(values.length) },
    h("figcaption", { class: "card-head" }, h("strong", {}, title), h("span", { class: "spacer" }),
      h("span", { class: "chart-last mono" }, last === null ? "no data" : format(last))),
    values.length ? svg : h("p", { class: "muted small" }, "No samples in this range."));
}
