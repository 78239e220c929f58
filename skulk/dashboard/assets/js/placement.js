// The placement dialog: options, node exclusions, a live preview of what fits, and Place.
import { h, fmtBytes } from "./dom.js";
import { api } from "./api.js";
import { nodesOf, nodeName, untag } from "./model.js";
import { refreshState } from "./store.js";
import { toast } from "./toast.js";

const META_LABELS = { MlxRing: "MLX Ring", MlxJaccl: "MLX RDMA (Jaccl)", LlamaRpc: "llama.cpp" };

function placedNodes(preview) {
  const deltas = Object.keys(preview.memory_delta_by_node || {});
  if (deltas.length) return deltas;
  const [, inst] = untag(preview.instance);
  return Object.keys(inst?.shardAssignments?.nodeToRunner || {});
}

/** Does the chosen (sharding, runtime, min nodes) fit, and if not, the server's reason. */
export function verdict(previews, choice) {
  if (!previews) return null;
  const same = previews.filter((p) => p.sharding === choice.sharding && p.instance_meta === choice.meta);
  const fits = same.filter((p) => !p.error && placedNodes(p).length >= choice.minNodes)
    .sort((a, b) => placedNodes(a).length - placedNodes(b).length);
  if (fits.length) return { ok: true, preview: fits[0] };
  const failed = same.find((p) => p.error);
  const reason = failed?.error || (same.length
    ? `No ${choice.sharding} placement uses at least ${choice.minNodes} node(s).`
    : "No placement is possible with these nodes.");
  return { ok: false, reason };
}

function segmented(label, options, get, set) {
  const group = h("div", { class: "segmented", role: "radiogroup", "aria-label": label });
  const draw = () => group.replaceChildren(...options.map(([value, text]) => h("button", {
    type: "button", role: "radio", "aria-checked": String(get() === value), class: get() === value ? "on" : "",
    "data-value": value, onclick: () => { set(value); draw(); },
  }, text)));
  draw();
  return { node: group, draw };
}

function previewKey(p) {
  return `${p.sharding}|${p.instance_meta}|${placedNodes(p).length}`;
}

function previewRow(preview, state, onPick) {
  const nodes = placedNodes(preview);
  const title = `${preview.sharding} · ${META_LABELS[preview.instance_meta] || preview.instance_meta}`;
  if (preview.error) {
    return h("li", { class: "preview bad", "data-fits": "false" },
      h("div", { class: "preview-title" }, title, h("span", { class: "badge err" }, "does not fit")),
      h("div", { class: "preview-error" }, preview.error));
  }
  const memory = Object.entries(preview.memory_delta_by_node || {})
    .map(([id, b]) => `${nodeName(state, id)} +${fmtBytes(b)}`).join(", ");
  return h("li", { class: "preview good", "data-fits": "true", tabindex: 0, role: "button", "data-key": previewKey(preview),
    title: "Use these options", onclick: () => onPick(preview) },
  h("div", { class: "preview-title" }, `${title} · ${nodes.length} node${nodes.length === 1 ? "" : "s"}`,
    h("span", { class: "badge ok" }, "fits")),
  h("div", { class: "muted small" }, memory || nodes.map((id) => nodeName(state, id)).join(", ")));
}

function pills(nodes, excluded, onToggle) {
  return h("div", { class: "pills", role: "group", "aria-label": "Nodes to use" }, nodes.map((n) => h("button", {
    type: "button", class: ["pill", excluded.has(n.id) ? "off" : "on"], "aria-pressed": String(!excluded.has(n.id)),
    "data-node-id": n.id, title: excluded.has(n.id) ? "Excluded: click to include" : "Included: click to exclude",
    onclick: () => onToggle(n.id),
  }, excluded.has(n.id) ? "✕ " : "✓ ", n.name, n.memAvailable ? h("span", { class: "muted" }, ` ${fmtBytes(n.memAvailable)} free`) : null)));
}

/** The dialog for one catalog model; state is the /state snapshot it was opened with. */
class PlacementDialog {
  constructor(model, state) {
    this.model = model;
    this.state = state;
    this.nodes = nodesOf(state);
    this.choice = { sharding: "Pipeline", meta: "MlxRing", minNodes: 1, excluded: new Set() };
    this.previews = null;
    this.request = 0;
    this.previewBox = h("ul", { class: "previews", "aria-label": "Placement preview" });
    this.verdictBox = h("div", { class: "verdict", "aria-live": "polite" });
    this.errorBox = h("div", { class: "error", role: "alert", hidden: true });
    this.pillBox = h("div");
    this.sharding = segmented("Sharding", [["Pipeline", "Pipeline"], ["Tensor", "Tensor"]],
      () => this.choice.sharding, (v) => { this.choice.sharding = v; this.drawVerdict(); });
    this.meta = segmented("Runtime", [["MlxRing", META_LABELS.MlxRing], ["MlxJaccl", META_LABELS.MlxJaccl],
      ["LlamaRpc", META_LABELS.LlamaRpc]],
      () => this.choice.meta, (v) => { this.choice.meta = v; this.drawVerdict(); });
    this.minNodes = h("input", { type: "number", id: "min-nodes", name: "min_nodes", min: 1,
      max: Math.max(1, this.nodes.length), value: 1, oninput: () => this.setMinNodes() });
    this.placeButton = h("button", { class: "primary", type: "button", onclick: () => this.place() }, "Place");
    this.dialog = this.build();
  }

  build() {
    const close = () => this.dialog.close();
    this.drawPills();
    const dialog = h("dialog", { class: "placement-dialog", "aria-label": `Place ${this.model.name}` },
      h("header", { class: "card-head" }, h("h2", {}, `Place ${this.model.name}`), h("span", { class: "spacer" }),
        h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: close }, "✕")),
      h("div", { class: "muted small mono" }, this.model.id),
      h("div", { class: "form-grid" },
        h("label", {}, "Sharding"), this.sharding.node,
        h("label", {}, "Runtime"), this.meta.node,
        h("label", { for: "min-nodes" }, "Minimum nodes"), this.minNodes,
        h("label", {}, "Nodes"), this.pillBox),
      h("h3", {}, "Preview"), this.previewBox, this.verdictBox, this.errorBox,
      h("footer", { class: "dialog-foot" }, h("button", { type: "button", onclick: close }, "Cancel"), this.placeButton));
    dialog.addEventListener("close", () => dialog.remove());
    return dialog;
  }

  open() {
    document.body.append(this.dialog);
    this.dialog.showModal();
    this.loadPreviews();
    return this.dialog;
  }

  setMinNodes() {
    this.choice.minNodes = Math.max(1, Number(this.minNodes.value) || 1);
    this.drawVerdict();
  }

  drawPills() {
    this.pillBox.replaceChildren(pills(this.nodes, this.choice.excluded, (id) => this.toggle(id)));
  }

  drawVerdict() {
    const v = verdict(this.previews, this.choice);
    const box = this.verdictBox;
    if (!v) box.replaceChildren(h("span", { class: "muted" }, "Checking what fits…"));
    else if (v.ok) {
      const names = placedNodes(v.preview).map((id) => nodeName(this.state, id)).join(", ");
      box.replaceChildren(h("span", { class: "badge ok" }, "fits"), ` on ${names}`);
    } else box.replaceChildren(h("span", { class: "badge err" }, "does not fit"), " ", v.reason);
    box.dataset.fits = v ? String(v.ok) : "";
    const chosen = v?.ok ? previewKey(v.preview) : null;
    for (const row of this.previewBox.querySelectorAll("li[data-key]")) row.classList.toggle("selected", row.dataset.key === chosen);
  }

  pick(preview) {
    Object.assign(this.choice, { sharding: preview.sharding, meta: preview.instance_meta,
      minNodes: placedNodes(preview).length });
    this.minNodes.value = this.choice.minNodes;
    this.sharding.draw();
    this.meta.draw();
    this.drawVerdict();
  }

  async loadPreviews() {
    const mine = ++this.request;
    this.previews = null;
    this.previewBox.replaceChildren(h("li", { class: "muted" }, "Loading preview…"));
    this.drawVerdict();
    const query = `model_id=${encodeURIComponent(this.model.id)}&excluded_node_ids=${encodeURIComponent([...this.choice.excluded].join(","))}`;
    let rows;
    try {
      const body = await api(`instance/previews?${query}`);
      if (mine !== this.request) return; // a newer request (another toggle) wins
      this.previews = body.previews || [];
      rows = this.previews.length ? this.previews.map((p) => previewRow(p, this.state, (x) => this.pick(x)))
        : [h("li", { class: "muted" }, "No placement options: the cluster has no usable nodes.")];
    } catch (err) {
      if (mine !== this.request) return;
      this.previews = [];
      rows = [h("li", { class: "error" }, `Preview failed: ${err.message}`)];
    }
    this.previewBox.replaceChildren(...rows);
    this.drawVerdict();
  }

  toggle(nodeId) {
    const excluded = this.choice.excluded;
    if (excluded.has(nodeId)) excluded.delete(nodeId);
    else excluded.add(nodeId);
    this.drawPills();
    this.loadPreviews();
  }

  async place() {
    const { model, choice } = this;
    this.errorBox.hidden = true;
    this.placeButton.disabled = true;
    this.placeButton.textContent = "Placing…";
    try {
      await api("place_instance", { method: "POST", body: { model_id: model.id, sharding: choice.sharding,
        instance_meta: choice.meta, min_nodes: choice.minNodes, excluded_nodes: [...choice.excluded] } });
      toast(`Placing ${model.name}`);
      this.dialog.close();
      refreshState();
    } catch (err) {
      this.errorBox.textContent = err.message;
      this.errorBox.hidden = false;
    } finally {
      this.placeButton.disabled = false;
      this.placeButton.textContent = "Place";
    }
  }
}

export function openPlacement(model, state) {
  return new PlacementDialog(model, state).open();
}
