// Node maintenance on the Cluster page: cordon (no new shards), drain (move deployments away), uncordon.
import { api } from "./api.js";
import { h } from "./dom.js";
import { toast } from "./toast.js";

const ACTIONS = {
  cordon: { label: "Cordon", done: "Cordoned", title: "Give this node no new shards" },
  drain: { label: "Drain", done: "Draining", title: "Cordon it and move its deployments to other nodes first" },
  uncordon: { label: "Uncordon", done: "Uncordoned", title: "Put this node back into placement" },
};

export function maintenanceBadge(node) {
  if (!node.hasWorker) return h("span", { class: "badge", title: "started with --no-worker: never given shards" }, "no worker");
  if (!node.maintenance) return null;
  return h("span", { class: "badge warn", "data-maintenance": node.maintenance }, node.maintenance);
}

async function run(node, action, button) {
  button.disabled = true;
  try {
    await api(`v1/nodes/${encodeURIComponent(node.id)}/${action}`, { method: "POST" });
    toast(`${ACTIONS[action].done} ${node.name}`);
  } catch (err) {
    toast(`${ACTIONS[action].label} failed: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

export function maintenanceControls(node) {
  if (!node.hasWorker) return null;  // nothing to cordon: it never holds shards
  const wanted = node.maintenance === "draining" ? ["uncordon"]
    : node.maintenance === "cordoned" ? ["drain", "uncordon"] : ["cordon", "drain"];
  return h("div", { class: "actions node-maintenance" }, wanted.map((action) => {
    const button = h("button", { type: "button", title: ACTIONS[action].title, "data-action": action },
      ACTIONS[action].label);
    button.onclick = () => run(node, action, button);
    return button;
  }));
}
