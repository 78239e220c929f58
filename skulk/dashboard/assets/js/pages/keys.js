// Keys page: the cluster's API keys (never their values), a New key dialog, and revoke.
import { h, shortId } from "../dom.js";
import { api } from "../api.js";
import { toast } from "../toast.js";
import { accessProblem, chips, confirmInline, fmtTime, isPast, listOf, problemBox } from "../access.js";
import { openKeyDialog } from "../key_dialog.js";

function expiry(key) {
  if (!key.expires_at) return h("span", { class: "muted" }, "never");
  return isPast(key.expires_at) ? h("span", { class: "badge err" }, "expired") : fmtTime(key.expires_at);
}

class KeysPage {
  constructor(view) {
    this.box = h("div", { class: "card key-list" }, h("p", { class: "muted" }, "Loading keys…"));
    this.projects = [];
    view.append(h("div", { class: "page-head" }, h("h1", {}, "API keys"), h("span", { class: "spacer" }),
      h("button", { type: "button", class: "primary", "data-new-key": "",
        onclick: () => openKeyDialog(this.projects, (k) => { toast(`Created key ${k.name}`); this.load(); }) }, "New key…")),
    h("p", { class: "muted" }, "Clients send a key as ", h("code", {}, "Authorization: Bearer <key>"),
      " (or ", h("code", {}, "x-api-key"), "). Only salted hashes are stored: a lost key cannot be shown again."),
    this.box);
    this.load();
    api("v1/projects").then((b) => { this.projects = listOf(b, "projects").map((p) => p.name); }).catch(() => {});
  }

  async load() {
    try {
      const keys = listOf(await api("v1/keys"), "keys");
      this.box.replaceChildren(keys.length ? this.table(keys) : h("p", { class: "muted empty" }, "No keys yet."));
    } catch (err) {
      this.box.replaceChildren(problemBox(accessProblem(err, "keys")));
    }
  }

  table(keys) {
    return h("table", { class: "keys" },
      h("thead", {}, h("tr", {}, ["Name", "Id", "Role", "Models", "Project", "Created", "Expires", "Last used", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, keys.map((k) => this.row(k))));
  }

  row(key) {
    return h("tr", { "data-key-id": key.id },
      h("td", { class: "model-name" }, key.name),
      h("td", { class: "mono small", title: key.id }, shortId(key.id)),
      h("td", {}, h("span", { class: `badge ${key.role === "admin" ? "warn" : "ok"}` }, key.role)),
      h("td", {}, chips(key.models, "all")),
      h("td", {}, key.project || h("span", { class: "muted" }, "–")),
      h("td", { class: "small" }, fmtTime(key.created_at)),
      h("td", { class: "small" }, expiry(key)),
      h("td", { class: "small" }, fmtTime(key.last_used_at, "never")),
      h("td", {}, h("button", { type: "button", class: "danger", "data-revoke": key.id,
        onclick: (e) => confirmInline(e.currentTarget, `Revoke ${key.name}?`, (cancel) => this.revoke(key, cancel)) }, "Revoke")));
  }

  async revoke(key, cancel) {
    try {
      await api(`v1/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      toast(`Revoked ${key.name}`);
    } catch (err) {
      cancel();
      toast(`Revoke failed: ${err.status === 403 ? accessProblem(err, "keys") : err.message}`, "error");
    }
    this.load();
  }
}

export function mountKeys(view) {
  new KeysPage(view);
}
