// Settings page: this node's skulk.yaml as a form (or raw JSON), loaded by GET and saved by PUT /config.
import { h } from "../dom.js";
import { api } from "../api.js";
import { currentTheme, setTheme } from "../theme.js";
import { buildForm, readForm } from "../settings_form.js";
import { dangerZone, notificationsCard } from "../settings_extras.js";

class SettingsPage {
  constructor(view) {
    this.doc = null;
    this.mode = "form";
    this.head = h("div", { class: "card file-card" }, h("p", { class: "muted" }, "Loading configuration…"));
    this.form = h("form", { class: "settings-form", onsubmit: (e) => { e.preventDefault(); this.save(); } });
    this.status = h("div", { class: "save-status", "aria-live": "polite" });
    this.modeButtons = h("div", { class: "segmented", role: "tablist", "aria-label": "Editor" });
    view.append(h("div", { class: "page-head" }, h("h1", {}, "Settings")),
      this.appearance(), this.head,
      h("div", { class: "toolbar" }, this.modeButtons, h("span", { class: "spacer" }),
        h("button", { type: "button", onclick: () => this.load() }, "Reload"),
        h("button", { type: "button", class: "primary", onclick: () => this.save() }, "Save")),
      this.status, this.form, notificationsCard(), dangerZone());
    this.load();
  }

  appearance() {
    const box = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Theme" });
    const draw = () => box.replaceChildren(...["light", "dark"].map((t) => h("button", { type: "button",
      role: "radio", "aria-checked": String(currentTheme() === t), class: currentTheme() === t ? "on" : "",
      onclick: () => setTheme(t) }, t === "light" ? "Light" : "Dark")));
    draw();
    this.onTheme = draw;
    document.addEventListener("skulk:theme", draw);
    return h("div", { class: "card row" }, h("strong", {}, "Appearance"), box);
  }

  async load() {
    this.setStatus("");
    try {
      this.doc = await api("config");
    } catch (err) {
      this.head.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load the config: ${err.message}`));
      return;
    }
    const d = this.doc;
    const fromEnv = d.effectiveSource === "file+env"
      ? " Placeholders show the file and SKULK_* env values; command-line flags are not shown." : "";
    this.head.replaceChildren(
      h("div", {}, h("strong", {}, "Config file "), h("span", { class: "mono", "data-config-path": "" }, d.configPath)),
      h("div", { class: "muted small" }, (d.fileExists ? "Empty fields are not in the file and keep their defaults."
        : "No file yet: every key has its default. Saving creates it.") + fromEnv),
      ...(d.error ? [h("p", { class: "error", role: "alert" }, d.error)] : []));
    this.draw(d.config);
  }

  draw(config) {
    this.working = config;
    this.modeButtons.replaceChildren(...[["form", "Form"], ["json", "JSON"]].map(([m, label]) => h("button", {
      type: "button", role: "tab", "aria-selected": String(this.mode === m), class: this.mode === m ? "on" : "",
      onclick: () => this.switchMode(m) }, label)));
    if (this.mode === "form") {
      this.form.replaceChildren(...buildForm(this.doc.fields, config, this.doc.effective || {}));
    } else {
      this.form.replaceChildren(h("textarea", { class: "json-editor mono", name: "json", rows: 22, spellcheck: "false",
        "aria-label": "skulk.yaml as JSON" }, JSON.stringify(config, null, 2)));
    }
  }

  /** The config the editor shows now; throws with a readable message on bad input. */
  current() {
    if (this.mode === "form") return readForm(this.form, this.doc.fields, this.working);
    const text = this.form.elements.namedItem("json").value;
    try { return JSON.parse(text || "{}"); } catch (err) { throw new Error(`Invalid JSON: ${err.message}`); }
  }

  switchMode(mode) {
    if (mode === this.mode || !this.doc) return;
    try {
      const config = this.current();
      this.mode = mode;
      this.draw(config);
    } catch (err) {
      this.setStatus(err.message, "error");
    }
  }

  setStatus(message, kind = "info") {
    this.status.className = `save-status ${kind}`;
    this.status.setAttribute("role", kind === "error" ? "alert" : "status");
    this.status.textContent = message;
  }

  async save() {
    if (!this.doc) return;
    for (const marked of this.form.querySelectorAll(".field.invalid")) marked.classList.remove("invalid");
    let config;
    try { config = this.current(); } catch (err) { this.setStatus(err.message, "error"); return; }
    try {
      const result = await api("config", { method: "PUT", body: { config } });
      await this.load();
      this.setStatus(result.message + (result.requiresRestart ? "" : " No restart needed."),
        result.requiresRestart ? "warn" : "ok");
    } catch (err) {
      this.setStatus(err.message, "error");
      this.form.querySelector(`.field[data-key="${CSS.escape(err.param || "")}"]`)?.classList.add("invalid");
    }
  }
}

export function mountSettings(view) {
  const page = new SettingsPage(view);
  return () => document.removeEventListener("skulk:theme", page.onTheme);
}
