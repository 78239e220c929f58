// The "New key" dialog: name, role, models, project, expiry; then the key, shown this once.
import { h } from "./dom.js";
import { api } from "./api.js";
import { accessProblem, modal, splitList } from "./access.js";

const UNITS = [["never", "Never", 0], ["minutes", "minutes", 60], ["hours", "hours", 3600], ["days", "days", 86400]];

function field(label, input, hint) {
  return [h("label", { for: input.id }, label), h("div", {}, input, hint ? h("div", { class: "muted small" }, hint) : null)];
}

/** The request body from the form, or a string saying what is wrong. */
export function keyRequest(form) {
  const data = new FormData(form);
  const name = String(data.get("name") || "").trim();
  if (!name) return "Give the key a name.";
  const body = { name, role: data.get("role") === "admin" ? "admin" : "user" };
  const models = splitList(data.get("models"));
  if (models) body.models = models;
  const project = String(data.get("project") || "").trim();
  if (project) body.project = project;
  const unit = UNITS.find((u) => u[0] === data.get("expiry_unit")) || UNITS[0];
  if (unit[2]) {
    const amount = Number(data.get("expiry_amount"));
    if (!Number.isFinite(amount) || amount <= 0) return "The expiry must be a positive number.";
    body.expires_in_seconds = Math.round(amount * unit[2]);
  }
  return body;
}

async function copy(input, button) {
  let ok = false;
  try { await navigator.clipboard.writeText(input.value); ok = true; } catch { /* not allowed here: try the selection */ }
  if (!ok) { input.select(); ok = document.execCommand?.("copy") ?? false; }
  button.textContent = ok ? "Copied" : "Select it and copy by hand";
}

function shownOnce(dialog, created) {
  const value = h("input", { class: "mono key-once", readonly: true, value: created.key, "aria-label": "The new key",
    onfocus: (e) => e.target.select() });
  const button = h("button", { type: "button", class: "primary", "data-copy": "", onclick: () => copy(value, button) }, "Copy");
  return [
    h("p", {}, "Key ", h("strong", {}, created.name), ` (${created.role}) was created. `,
      h("strong", { class: "warn-text" }, "Copy it now: you will not see it again.")),
    h("div", { class: "token-row" }, value, button),
    h("footer", { class: "dialog-foot" }, h("button", { type: "button", onclick: () => dialog.close() }, "Done"))];
}

function formFields(projects) {
  const expiryAmount = h("input", { type: "number", id: "key-expiry", name: "expiry_amount", min: 1, value: 30 });
  const expiryUnit = h("select", { name: "expiry_unit", "aria-label": "Expiry unit" },
    UNITS.map(([v, t]) => h("option", { value: v, selected: v === "never" }, t)));
  const syncExpiry = () => { expiryAmount.disabled = expiryUnit.value === "never"; };
  expiryUnit.addEventListener("change", syncExpiry);
  syncExpiry();
  return h("div", { class: "form-grid" },
    field("Name", h("input", { id: "key-name", name: "name", required: true, maxlength: 64, placeholder: "e.g. ci-bot" })),
    field("Role", h("select", { id: "key-role", name: "role" }, h("option", { value: "user" }, "user"),
      h("option", { value: "admin" }, "admin")), "Admin keys can manage keys, projects, config and placement."),
    field("Models", h("input", { id: "key-models", name: "models", placeholder: "all models" }),
      "Comma-separated model ids this key may use; empty allows every model."),
    field("Project", h("input", { id: "key-project", name: "project", list: "key-projects", placeholder: "none" }),
      "Its policy (rate limits, quotas) applies to this key."),
    h("datalist", { id: "key-projects" }, projects.map((p) => h("option", { value: p }))),
    h("label", { for: "key-expiry" }, "Expires in"), h("div", { class: "token-row" }, expiryAmount, expiryUnit));
}

/** Open the dialog; onCreated(created) runs once the server made the key. */
export function openKeyDialog(projects, onCreated) {
  const error = h("div", { class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Create key");
  const form = h("form", { class: "key-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); create(); } },
    formFields(projects), error,
    h("footer", { class: "dialog-foot" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), submit));
  const dialog = modal("New API key", "key-dialog", form);
  async function create() {
    const body = keyRequest(form);
    error.hidden = typeof body !== "string";
    if (typeof body === "string") { error.textContent = body; return; }
    submit.disabled = true;
    try {
      const created = await api("v1/keys", { method: "POST", body });
      form.replaceWith(...shownOnce(dialog, created));
      onCreated(created);
    } catch (err) {
      error.textContent = err.status === 403 || err.status === 404 ? accessProblem(err, "keys") : err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  }
  return dialog;
}
