// Cluster page: the live topology graph and one card per node, from GET /state.
import { h, fmtBytes, fmtPct, meter, shortId } from "../dom.js";
import { onState } from "../store.js";
import { edgesOf, instancesOf, nodesOf } from "../model.js";
import { topologySvg } from "../topology.js";
import { maintenanceBadge, maintenanceControls } from "../maintenance.js";

function healthBadge(health) {
  const level = health.level || "ok";
  const tone = level === "error" ? "err" : level === "warn" ? "warn" : "ok";
  const text = health.reasons.map((r) => `${r.message}${r.remediation ? ` — ${r.remediation}` : ""}`).join("\n");
  return h("span", { class: `badge ${tone}`, title: text || "healthy", "data-health": level },
    level === "ok" ? "healthy" : health.reasons.map((r) => r.code).join(", ") || level);
}

function stat(label, value, extra) {
  return h("div", { class: "stat" }, h("span", { class: "stat-label" }, label), h("span", { class: "stat-value" }, value), extra);
}

function gpuStats(node) {
  const gpu = node.gpu;
  if (!gpu) return stat("GPU", "none reported");
  const vram = gpu.vramTotal ? `${fmtBytes(gpu.vramUsed || 0)} / ${fmtBytes(gpu.vramTotal)}` : "";
  const temp = gpu.temperature ? ` · ${Math.round(gpu.temperature)}°C` : "";
  return stat("GPU", `${gpu.name}${gpu.utilization !== null && gpu.utilization !== undefined ? ` · ${fmtPct(gpu.utilization)}` : ""}${temp}`,
    vram ? h("span", { class: "stat-sub" }, `VRAM ${vram}`) : null);
}

function nodeCard(node, runnersOnNode) {
  const memText = node.memTotal ? `${fmtBytes(node.memUsed)} / ${fmtBytes(node.memTotal)}` : "no telemetry yet";
  return h("article", { class: ["card", "node-card", node.isMaster ? "is-master" : ""], "data-node-id": node.id },
    h("header", { class: "card-head" },
      h("h3", { class: "node-name" }, node.name),
      node.isMaster ? h("span", { class: "badge accent", "data-master": "" }, "★ master") : null,
      healthBadge(node.health), maintenanceBadge(node)),
    h("div", { class: "muted small", title: node.id }, `${shortId(node.id)} · ${node.chip || "unknown chip"}`),
    stat("Memory", memText, node.memTotal ? meter(node.memUsed / node.memTotal, "memory used") : null),
    stat("CPU", node.cpu === null ? "–" : `${fmtPct(node.cpu)}${node.cpuCount ? ` of ${node.cpuCount} cores` : ""}`,
      node.cpu === null ? null : meter(node.cpu, "CPU use")),
    gpuStats(node),
    node.temp ? stat("Temperature", `${Math.round(node.temp)}°C`) : null,
    node.diskTotal ? stat("Disk free", `${fmtBytes(node.diskFree)} of ${fmtBytes(node.diskTotal)}`) : null,
    runnersOnNode.length ? stat("Runners", runnersOnNode.join(", ")) : null,
    node.health.reasons.length ? h("ul", { class: "reasons" },
      node.health.reasons.map((r) => h("li", {}, h("strong", {}, r.message), r.remediation ? ` — ${r.remediation}` : ""))) : null,
    maintenanceControls(node));
}

function summary(state, nodes) {
  const master = nodes.find((n) => n.isMaster);
  const total = nodes.reduce((sum, n) => sum + (n.memTotal || 0), 0);
  const used = nodes.reduce((sum, n) => sum + (n.memUsed || 0), 0);
  return h("div", { class: "summary" },
    h("span", {}, h("strong", {}, String(nodes.length)), ` node${nodes.length === 1 ? "" : "s"}`),
    h("span", {}, "master ", h("strong", {}, master ? master.name : "electing…")),
    h("span", {}, "memory ", h("strong", {}, `${fmtBytes(used)} / ${fmtBytes(total)}`)),
    h("span", { class: "muted" }, `session ${state.sessionId ? `#${state.sessionId.electionClock}` : "–"} · event ${state.lastEventAppliedIdx}`));
}

function runnersByNode(state) {
  const byNode = new Map();
  for (const inst of instancesOf(state)) {
    for (const r of inst.runners) {
      const list = byNode.get(r.nodeId) || [];
      list.push(`${inst.modelId.split("/").pop()} (${r.status.label})`);
      byNode.set(r.nodeId, list);
    }
  }
  return byNode;
}

export function mountCluster(view) {
  const head = h("div", { class: "page-head" }, h("h1", {}, "Cluster"));
  const graph = h("section", { class: "card graph-card", "aria-label": "Topology" }, h("p", { class: "muted" }, "Loading cluster state…"));
  const grid = h("section", { class: "node-grid", "aria-label": "Nodes" });
  view.append(head, graph, grid);
  return onState((state) => {
    const nodes = nodesOf(state);
    const byNode = runnersByNode(state);
    head.replaceChildren(h("h1", {}, "Cluster"), summary(state, nodes));
    graph.replaceChildren(nodes.length ? topologySvg(nodes, edgesOf(state)) : h("p", { class: "muted" }, "No nodes yet."));
    grid.replaceChildren(...nodes.map((n) => nodeCard(n, byNode.get(n.id) || [])));
  });
}
