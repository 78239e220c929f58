// Projects page: each project's policy and live usage (refreshed every few seconds), create and delete.
import { h } from "../dom.js";
import { api } from "../api.js";
import { toast } from "../toast.js";
import { accessProblem, confirmInline, listOf, modal, problemBox, splitList } from "../access.js";
import { LIMITS, policyCell, policyOf, usageCell } from "../project_view.js";

const REFRESH_MS = 5000;

/** The POST body from the form, or a string saying what is wrong. */
export function projectRequest(form) {
  const data = new FormData(form);
  const name = String(data.get("name") || "").trim();
  if (!name) return "Give the project a name.";
  const body = { name };
  for (const [key] of LIMITS) {
    const raw = String(data.get(key) || "").trim();
    if (!raw) continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) return `${key} must be a whole number above 0.`;
    body[key] = value;
  }
  const models = splitList(data.get("allowed_models"));
  if (models) body.allowed_models = models;
  return body;
}

function openProjectDialog(onCreated) {
  const error = h("div", { class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Create project");
  const grid = h("div", { class: "form-grid" },
    h("label", { for: "project-name" }, "Name"), h("input", { id: "project-name", name: "name", required: true, maxlength: 64 }),
    LIMITS.map(([k, label]) => [h("label", { for: `project-${k}` }, label),
      h("input", { type: "number", id: `project-${k}`, name: k, min: 1, placeholder: "no limit" })]),
    h("label", { for: "project-models" }, "Allowed models"),
    h("input", { id: "project-models", name: "allowed_models", placeholder: "all models (comma-separated ids)" }));
  const form = h("form", { novalidate: true, onsubmit: (e) => { e.preventDefault(); create(); } }, grid, error,
    h("footer", { class: "dialog-foot" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), submit));
  const dialog = modal("New project", "project-dialog", form);
  async function create() {
    const body = projectRequest(form);
    if (typeof body === "string") { error.textContent = body; error.hidden = false; return; }
    submit.disabled = true;
    try {
      await api("v1/projects", { method: "POST", body });
      dialog.close();
      onCreated(body.name);
    } catch (err) {
      error.textContent = err.status === 403 || err.status === 404 ? accessProblem(err, "projects") : err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  }
}

class ProjectsPage {
  constructor(view) {
    this.box = h("div", { class: "card project-list" }, h("p", { class: "muted" }, "Loading projects…"));
    view.append(h("div", { class: "page-head" }, h("h1", {}, "Projects"), h("span", { class: "spacer" }),
      h("button", { type: "button", class: "primary", "data-new-project": "",
        onclick: () => openProjectDialog((name) => { toast(`Created project ${name}`); this.load(); }) }, "New project…")),
    h("p", { class: "muted" }, "A project's policy caps every key in it, across the whole cluster. Usage is live."),
    this.box);
    this.confirming = false; // a pending delete confirmation pauses the refresh so it is not redrawn away
    this.load();
    this.timer = setInterval(() => { if (!this.confirming && !document.hidden) this.load(); }, REFRESH_MS);
  }

  async load() {
    try {
      const projects = listOf(await api("v1/projects"), "projects");
      if (this.confirming) return;
      this.box.replaceChildren(projects.length ? this.table(projects) : h("p", { class: "muted empty" }, "No projects yet."));
    } catch (err) {
      this.box.replaceChildren(problemBox(accessProblem(err, "projects")));
      if (err.status === 403 || err.status === 404) clearInterval(this.timer);
    }
  }

  table(projects) {
    return h("table", { class: "projects" },
      h("thead", {}, h("tr", {}, ["Project", "Policy", "Live usage", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, projects.map((p) => this.row(p))));
  }

  row(project) {
    const policy = policyOf(project);
    return h("tr", { "data-project": project.name },
      h("td", { class: "model-name" }, project.name),
      h("td", {}, policyCell(policy)),
      h("td", {}, usageCell(project, policy)),
      h("td", {}, h("button", { type: "button", class: "danger", "data-delete-project": project.name,
        onclick: (e) => { this.confirming = true;
          confirmInline(e.currentTarget, `Delete ${project.name}?`, (cancel) => this.remove(project, cancel),
            () => { this.confirming = false; }); } }, "Delete")));
  }

  async remove(project, cancel) {
    try {
      await api(`v1/projects/${encodeURIComponent(project.name)}`, { method: "DELETE" });
      toast(`Deleted project ${project.name}`);
    } catch (err) {
      cancel();
      toast(`Delete failed: ${err.message}`, "error");
    }
    this.confirming = false;
    this.load();
  }

  unmount() {
    clearInterval(this.timer);
  }
}

export function mountProjects(view) {
  const page = new ProjectsPage(view);
  return () => page.unmount();
}
