// Deployments page: desired state the master keeps placed. Status, replicas, lease countdown, and the actions.
import { h } from "../dom.js";
import { api } from "../api.js";
import { toast } from "../toast.js";
import { accessProblem, confirmInline, listOf, problemBox } from "../access.js";

const REFRESH_MS = 3000;
const EXTEND_S = 3600;

/** "1 h 02 min" / "4 min 05 s" / "12 s" for a countdown; "expired" at zero. */
export function countdown(seconds) {
  if (seconds == null) return "no lease";
  const s = Math.max(0, Math.round(seconds));
  if (s === 0) return "expired";
  const hours = Math.floor(s / 3600), minutes = Math.floor((s % 3600) / 60), rest = s % 60;
  if (hours) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  if (minutes) return `${minutes} min ${String(rest).padStart(2, "0")} s`;
  return `${rest} s`;
}

function statusCell(d) {
  return h("td", {}, h("span", { class: `status status-${d.status}`, "data-status": d.status }, d.status),
    d.reason ? h("div", { class: "muted small", "data-reason": "" }, d.reason) : null);
}

function instancesCell(d) {
  if (!d.instances.length) return h("td", { class: "muted" }, "none");
  return h("td", {}, d.instances.map((i) => h("div", { "data-instance": i.instance_id },
    `${i.nodes.map((n) => n.name).join(", ")} · ${i.ready ? "ready" : "starting"}`)));
}

class DeploymentsPage {
  constructor(view) {
    this.box = h("div", { class: "card deployment-list" }, h("p", { class: "muted" }, "Loading deployments…"));
    view.append(h("div", { class: "page-head" }, h("h1", {}, "Deployments")),
      h("p", { class: "muted" }, "Models the cluster keeps running: placed again after a node is lost or the " +
        "whole cluster restarts. Create them with POST /v1/deployments or Place on the Models page."),
      this.box);
    this.confirming = false; // a pending delete confirmation pauses the refresh so it is not redrawn away
    this.load();
    this.timer = setInterval(() => { if (!this.confirming && !document.hidden) this.load(); }, REFRESH_MS);
  }

  async load() {
    try {
      const items = listOf(await api("v1/deployments"), "deployments");
      if (this.confirming) return;
      this.box.replaceChildren(items.length ? this.table(items) : h("p", { class: "muted empty" }, "No deployments yet."));
    } catch (err) {
      this.box.replaceChildren(problemBox(accessProblem(err, "deployments")));
      if (err.status === 403 || err.status === 404) clearInterval(this.timer);
    }
  }

  table(items) {
    return h("table", { class: "deployments" },
      h("thead", {}, h("tr", {}, ["Model", "Status", "Replicas", "Instances", "Lease", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, items.map((d) => this.row(d))));
  }

  row(d) {
    const lease = d.lease_seconds == null ? h("td", { class: "muted", "data-lease": "" }, "no lease")
      : h("td", { "data-lease": "" }, countdown(d.expires_in_seconds), " ",
        this.button("Extend 1 h", "extend", d, () => this.act(d, "extend", { seconds: EXTEND_S }, "Extended")));
    const paused = d.status === "paused";
    return h("tr", { "data-deployment": d.deployment_id },
      h("td", { class: "model-name" }, d.model_id, h("div", { class: "muted small" }, d.deployment_id)),
      statusCell(d),
      h("td", { "data-replicas": "" }, `${d.ready_replicas} / ${d.replicas}`),
      instancesCell(d), lease,
      h("td", { class: "actions" },
        paused ? this.button("Resume", "resume", d, () => this.act(d, "resume", null, "Resumed"))
          : this.button("Pause", "pause", d, () => this.act(d, "pause", null, "Paused")),
        this.button("Restart", "restart", d, () => this.act(d, "restart", null, "Restarted")),
        h("button", { type: "button", class: "danger", "data-action": "delete",
          onclick: (e) => { this.confirming = true;
            confirmInline(e.currentTarget, `Delete ${d.model_id}?`, (cancel) => this.remove(d, cancel),
              () => { this.confirming = false; }); } }, "Delete")));
  }

  button(label, action, d, onclick) {
    return h("button", { type: "button", "data-action": action, onclick }, label);
  }

  async act(d, action, body, done) {
    try {
      await api(`v1/deployments/${encodeURIComponent(d.deployment_id)}/${action}`, { method: "POST", body: body || {} });
      toast(`${done} ${d.model_id}`);
    } catch (err) {
      toast(`${action} failed: ${err.message}`, "error");
    }
    this.load();
  }

  async remove(d, cancel) {
    try {
      await api(`v1/deployments/${encodeURIComponent(d.deployment_id)}`, { method: "DELETE" });
      toast(`Deleted ${d.model_id}`);
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

export function mountDeployments(view) {
  const page = new DeploymentsPage(view);
  return () => page.unmount();
}
