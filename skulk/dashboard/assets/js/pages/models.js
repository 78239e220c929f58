// Models page: running instances, the model catalog, and the placement dialog.
import { h, fmtBytes } from "../dom.js";
import { api } from "../api.js";
import { onState, latestState } from "../store.js";
import { instancesOf } from "../model.js";
import { instanceCard, pruneDeleting } from "../instances.js";
import { openPlacement } from "../placement.js";

function fmtContext(tokens) {
  if (!tokens) return "–";
  return tokens >= 1024 ? `${Math.round(tokens / 1024)}k` : String(tokens);
}

function modelRow(model, count) {
  const tags = [model.family, model.quantization, ...(model.tags || [])].filter(Boolean);
  return h("tr", { "data-model-id": model.id },
    h("td", {}, h("div", { class: "model-name" }, model.name), h("div", { class: "muted small mono" }, model.id)),
    h("td", {}, tags.map((t) => h("span", { class: "chip" }, t))),
    h("td", { class: "num" }, fmtBytes((model.storage_size_megabytes || 0) * 2 ** 20)),
    h("td", { class: "num" }, fmtContext(model.context_length)),
    h("td", { class: "num" }, count ? h("span", { class: "badge ok" }, `${count} placed`) : "–"),
    h("td", {}, h("button", { class: "primary", type: "button", "data-place": model.id,
      onclick: () => openPlacement(model, latestState()) }, "Place…")));
}

function catalogTable(models, counts) {
  if (!models.length) return h("p", { class: "muted" }, "The catalog is empty.");
  return h("table", { class: "catalog" },
    h("thead", {}, h("tr", {}, ["Model", "Tags", "Size", "Context", "Instances", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, models.map((m) => modelRow(m, counts.get(m.id) || 0))));
}

export function mountModels(view) {
  const instBox = h("div", { class: "instance-list" });
  const catalogBox = h("div", { class: "card" }, h("p", { class: "muted" }, "Loading models…"));
  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Models & placement")),
    h("section", { "aria-label": "Instances" }, h("h2", {}, "Running instances"), instBox),
    h("section", { "aria-label": "Catalog" }, h("h2", {}, "Catalog"), catalogBox));
  let models = null;
  let counts = new Map();
  const drawCatalog = () => { if (models) catalogBox.replaceChildren(catalogTable(models, counts)); };
  api("models").then((body) => { models = body.data || []; drawCatalog(); })
    .catch((err) => catalogBox.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load models: ${err.message}`)));
  return onState((state) => {
    const instances = instancesOf(state);
    pruneDeleting(new Set(instances.map((i) => i.id)));
    instBox.replaceChildren(...(instances.length ? instances.map(instanceCard)
      : [h("p", { class: "muted empty" }, "No instances. Place a model from the catalog below.")]));
    const next = new Map();
    for (const inst of instances) next.set(inst.modelId, (next.get(inst.modelId) || 0) + 1);
    if ([...next].join() !== [...counts].join()) { counts = next; drawCatalog(); }
  });
}
