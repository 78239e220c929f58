// History page (/history; /metrics is Prometheus): one node's sampled history (GET /v1/metrics/history) as charts; any node, any range.
import { h, fmtBytes } from "../dom.js";
import { api } from "../api.js";
import { onState } from "../store.js";
import { nodesOf } from "../model.js";
import { lineChart } from "../charts.js";

const RANGES = [["15m", 900], ["1h", 3600], ["6h", 6 * 3600], ["24h", 86400], ["48h", 2 * 86400]];
const POINTS = 240; // samples drawn per chart: the server averages over range / POINTS seconds
const REFRESH_MS = 10_000;
const pct = (v) => `${Math.round(v)}%`;
const rate = (v) => `${v >= 100 ? Math.round(v) : v.toFixed(1)} tok/s`;
const depth = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

// key, title, value of a sample, format, fixed maximum
const CHARTS = [
  ["cpu", "CPU", (x) => x.cpu_percent, pct, 100],
  ["memory", "Memory used", (x) => x.memory_used_bytes, fmtBytes, null, (x) => x.memory_total_bytes],
  ["accelerator", "Accelerator", (x) => x.accelerator_percent, pct, 100],
  ["accelerator_memory", "Accelerator memory", (x) => x.accelerator_memory_used_bytes, fmtBytes, null,
    (x) => x.accelerator_memory_total_bytes],
  ["tokens", "Tokens per second", (x) => x.tokens_per_second, rate, null],
  ["queue", "Queue depth", (x) => x.queue_depth, depth, null],
  ["disk", "Disk used", (x) => x.disk_used_bytes, fmtBytes, null, (x) => x.disk_total_bytes],
];

class MetricsPage {
  constructor(view) {
    this.nodeId = new URLSearchParams(location.search).get("node") || null;
    this.range = 3600;
    this.nodes = [];
    this.pickers = h("div", { class: "toolbar" });
    this.status = h("p", { class: "muted small", "aria-live": "polite" });
    this.grid = h("section", { class: "chart-grid-cards", "aria-label": "Charts" });
    view.append(h("div", { class: "page-head" }, h("h1", {}, "Metric history")), this.pickers, this.status, this.grid);
    this.unsubscribe = onState((state) => this.onNodes(nodesOf(state)));
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  onNodes(nodes) {
    const ids = nodes.map((n) => n.id).join();
    if (ids === this.nodes.map((n) => n.id).join()) return;
    this.nodes = nodes;
    if (!this.nodeId || !nodes.some((n) => n.id === this.nodeId)) this.nodeId = nodes[0]?.id || null;
    this.drawPickers();
    this.load();
  }

  drawPickers() {
    const select = h("select", { "aria-label": "Node", "data-node-select": "",
      onchange: (e) => { this.nodeId = e.target.value; this.load(); } },
    this.nodes.map((n) => h("option", { value: n.id, selected: n.id === this.nodeId }, n.name)));
    const ranges = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Range" },
      RANGES.map(([label, seconds]) => h("button", { type: "button", role: "radio", class: seconds === this.range ? "on" : "",
        "aria-checked": String(seconds === this.range), onclick: () => { this.range = seconds; this.drawPickers(); this.load(); } }, label)));
    this.pickers.replaceChildren(h("label", {}, "Node ", select), ranges);
  }

  async load() {
    if (!this.nodeId) { this.status.textContent = "No nodes yet."; return; }
    const now = Date.now() / 1000;
    const since = now - this.range;
    const step = Math.max(1, Math.round(this.range / POINTS));
    const node = this.nodeId;
    let doc;
    try {
      doc = await api(`v1/metrics/history?node_id=${encodeURIComponent(node)}&since=${since.toFixed(0)}&step=${step}`);
    } catch (err) {
      if (node === this.nodeId) this.status.textContent = `Could not load the history: ${err.message}`;
      return;
    }
    if (node !== this.nodeId) return; // the user picked another node meanwhile
    const every = doc.sample_seconds ? ` · sampled every ${doc.sample_seconds} s` : "";
    this.status.textContent = `${doc.samples.length} points, ${doc.step ?? "raw"} s each${every}`;
    this.grid.replaceChildren(...CHARTS.map(([key, title, value, format, max, total]) => {
      const top = max ?? (total ? (Math.max(0, ...doc.samples.map((x) => total(x) || 0)) || null) : null);
      return lineChart({ key, title, format, max: top, t0: since, t1: now,
        points: doc.samples.map((x) => ({ at: x.at, v: value(x) })) });
    }));
  }

  unmount() {
    clearInterval(this.timer);
    this.unsubscribe();
  }
}

export function mountMetrics(view) {
  const page = new MetricsPage(view);
  return () => page.unmount();
}
