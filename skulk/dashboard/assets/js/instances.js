// Placed instances with per-runner status and a delete button.
import { h, shortId } from "./dom.js";
import { api } from "./api.js";
import { refreshState } from "./store.js";
import { toast } from "./toast.js";

const deleting = new Set(); // survives re-renders so the button stays "Deleting…"

async function deleteInstance(inst) {
  deleting.add(inst.id);
  try {
    await api(`instance/${encodeURIComponent(inst.id)}`, { method: "DELETE" });
    toast(`Deleting ${inst.modelId}`);
    await refreshState();
  } catch (err) {
    deleting.delete(inst.id);
    toast(`Delete failed: ${err.message}`, "error");
  }
}

function runnerRow(r) {
  const layers = r.shard.start !== undefined ? `${r.shard.start}–${r.shard.end} of ${r.shard.layers}` : "–";
  return h("tr", { "data-runner-id": r.runnerId },
    h("td", {}, `${r.shard.rank + 1}/${r.shard.world}`),
    h("td", {}, r.nodeName),
    h("td", {}, layers),
    h("td", {}, h("span", { class: `badge ${r.status.tone}`, "data-status": r.status.tag || "none",
      title: r.status.detail }, r.status.label), r.status.detail && r.status.tone !== "muted"
      ? h("span", { class: "muted small" }, ` ${r.status.detail}`) : null),
    h("td", { class: "mono muted small", title: r.runnerId }, shortId(r.runnerId)));
}

export function instanceCard(inst) {
  const busy = deleting.has(inst.id);
  return h("article", { class: "card instance-card", "data-instance-id": inst.id, "data-model-id": inst.modelId },
    h("header", { class: "card-head" },
      h("h3", {}, inst.modelId),
      h("span", { class: `badge ${inst.status.tone}`, "data-instance-status": inst.status.label }, inst.status.label),
      h("span", { class: "spacer" }),
      h("button", { class: "danger", type: "button", disabled: busy, onclick: () => deleteInstance(inst) },
        busy ? "Deleting…" : "Delete")),
    h("div", { class: "muted small" },
      `${inst.type} · ${inst.sharding} · ${inst.runners.length} runner${inst.runners.length === 1 ? "" : "s"}`,
      inst.contextLimit ? ` · context ${inst.contextLimit} tokens` : "", ` · id ${shortId(inst.id)}`),
    h("table", { class: "runners" },
      h("thead", {}, h("tr", {}, ["Rank", "Node", "Layers", "Status", "Runner"].map((t) => h("th", {}, t)))),
      h("tbody", {}, inst.runners.map(runnerRow))));
}

/** Forget deletions that completed, so a re-placed instance with a new id is unaffected. */
export function pruneDeleting(liveIds) {
  for (const id of [...deleting]) if (!liveIds.has(id)) deleting.delete(id);
}
