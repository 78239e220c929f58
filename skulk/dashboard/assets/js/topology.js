// The cluster graph as plain SVG: nodes on a circle, an edge per observed connection.
import { s, fmtPct } from "./dom.js";

const W = 900;
const H = 270;
const R = 36;

function positions(nodes) {
  const cx = W / 2;
  const cy = H / 2;
  if (nodes.length === 1) return [[cx, cy]];
  if (nodes.length === 2) return [[cx - 200, cy], [cx + 200, cy]];
  // An ellipse, wider than tall, leaving room for the labels above and below each node.
  const rx = Math.min(W / 2 - R - 60, 110 * nodes.length);
  const ry = H / 2 - R - 26;
  return nodes.map((_, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
    return [cx + rx * Math.cos(angle), cy + ry * Math.sin(angle)];
  });
}

function edgeLine(edge, at) {
  const [x1, y1] = at.get(edge.a);
  const [x2, y2] = at.get(edge.b);
  return s("line", { x1, y1, x2, y2, class: ["topo-edge", edge.both ? "" : "one-way"] },
    s("title", {}, `${edge.both ? "connected" : "one-way"}: ${edge.labels.join(", ")}`));
}

function memoryArc(x, y, ratio) {
  const circumference = 2 * Math.PI * (R - 5);
  const used = Math.max(0, Math.min(1, ratio || 0)) * circumference;
  return s("circle", { cx: x, cy: y, r: R - 5, class: "topo-mem",
    "stroke-dasharray": `${used} ${circumference}`, transform: `rotate(-90 ${x} ${y})` });
}

function nodeGroup(node, [x, y]) {
  const ratio = node.memTotal ? node.memUsed / node.memTotal : 0;
  const tone = node.health.level === "error" ? "err" : node.health.level === "warn" ? "warn" : "ok";
  const reasons = node.health.reasons.map((r) => r.message).join("; ");
  return s("g", { class: ["topo-node", `tone-${tone}`, node.isMaster ? "master" : ""], "data-node-id": node.id },
    s("title", {}, `${node.name}${node.isMaster ? " (master)" : ""}${reasons ? ` — ${reasons}` : ""}`),
    s("circle", { cx: x, cy: y, r: R, class: "topo-disc" }),
    memoryArc(x, y, ratio),
    s("text", { x, y: y + 5, class: "topo-pct", "text-anchor": "middle" }, node.memTotal ? fmtPct(ratio) : "?"),
    s("text", { x, y: y + R + 18, class: "topo-name", "text-anchor": "middle" }, node.name),
    node.isMaster ? s("text", { x, y: y - R - 8, class: "topo-master", "text-anchor": "middle" }, "★ master") : null);
}

/** An <svg> of the nodes (memory use as a ring, master starred) and their connections. */
export function topologySvg(nodes, edges) {
  const at = new Map(nodes.map((n, i) => [n.id, positions(nodes)[i]]));
  const drawn = edges.filter((e) => at.has(e.a) && at.has(e.b));
  return s("svg", { class: "topology", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `Cluster topology: ${nodes.length} node(s), ${drawn.length} connection(s)` },
  ...drawn.map((e) => edgeLine(e, at)),
  ...nodes.map((n) => nodeGroup(n, at.get(n.id))));
}
