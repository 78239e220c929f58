// Builds the config form from the server's field table and reads it back into a config object.
import { h } from "./dom.js";

export function getPath(obj, path) {
  let cur = obj;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[part];
  }
  return cur;
}

function setPath(obj, path, value) {
  let cur = obj;
  for (const part of path.slice(0, -1)) {
    if (cur[part] === null || typeof cur[part] !== "object") cur[part] = {};
    cur = cur[part];
  }
  cur[path.at(-1)] = value;
}

function deletePath(obj, path) {
  const parents = [obj];
  for (const part of path.slice(0, -1)) {
    const next = parents.at(-1)?.[part];
    if (next === null || typeof next !== "object") return;
    parents.push(next);
  }
  delete parents.at(-1)[path.at(-1)];
  // Drop sections the form emptied, so an unset section falls back to its defaults.
  for (let i = parents.length - 1; i > 0; i -= 1) {
    if (Object.keys(parents[i]).length) break;
    delete parents[i - 1][path[i - 1]];
  }
}

const show = (v) => (Array.isArray(v) ? v.join(", ") : v === null || v === undefined ? "" : String(v));

function inputFor(field, value, effective) {
  const id = `cfg-${field.key}`;
  const hint = effective === undefined || effective === null || effective === "" ? "not set" : show(effective);
  if (field.kind === "boolean" || field.kind === "enum") {
    const options = field.kind === "boolean" ? [true, false] : field.options;
    return h("select", { id, name: field.key },
      h("option", { value: "" }, `default (${hint})`),
      options.map((o) => h("option", { value: JSON.stringify(o), selected: value === o }, String(o))));
  }
  const type = field.kind === "integer" || field.kind === "number" ? "number" : "text";
  return h("input", { id, name: field.key, type, step: type === "number" ? "any" : null,
    value: show(value), placeholder: hint, autocomplete: "off", spellcheck: "false" });
}

function tokenInput(hasToken) {
  return h("div", { class: "token-row" },
    h("input", { id: "cfg-hf_token", name: "hf_token", type: "password", autocomplete: "off",
      placeholder: hasToken ? "a token is configured: leave empty to keep it" : "not set" }),
    hasToken ? h("label", { class: "inline" }, h("input", { type: "checkbox", name: "hf_token_clear" }), " remove it") : null);
}

function fieldRow(field, config, effective) {
  const path = field.key.split(".");
  const shown = getPath(effective, path);
  const control = field.key === "hf_token" ? tokenInput(Boolean(effective.has_hf_token))
    : inputFor(field, getPath(config, path), shown === undefined || shown === null ? field.default : shown);
  return h("div", { class: "field", "data-key": field.key },
    h("label", { for: `cfg-${field.key}` }, path.at(-1)),
    control,
    h("div", { class: "muted small" }, field.description, field.required ? " Required." : "",
      field.live ? "" : h("span", { class: "restart-note", title: "Takes effect after the node restarts" }, " Restart to apply."),
      field.env ? h("span", { class: "mono" }, ` ${field.env}`) : null));
}

function countSet(config, key) {
  const value = key ? getPath(config, key.split(".")) : config;
  if (value === null || typeof value !== "object") return 0;
  return Object.values(value).filter((v) => v === null || typeof v !== "object").length;
}

/** A collapsible block per section (open when the file sets keys in it); maps go to the JSON editor. */
export function buildForm(fields, config, effective) {
  const groups = new Map([["", { title: "General", rows: [], open: true }]]);
  for (const field of fields) {
    if (field.kind === "section") {
      const set = countSet(config, field.key);
      groups.set(field.key, { title: field.key, description: field.description, rows: [], open: set > 0,
        note: set ? `${set} set in the file` : "" });
      continue;
    }
    const section = field.key.split(".").slice(0, -1).join(".");
    const group = groups.get(section) || groups.get("");
    group.rows.push(field.kind === "map"
      ? h("div", { class: "field muted small", "data-key": field.key }, `${field.key}: edit in JSON (${field.description})`)
      : fieldRow(field, config, effective));
  }
  return [...groups.values()].filter((g) => g.rows.length).map((g) => h("details", { class: "card section", open: g.open,
    "data-section": g.title },
  h("summary", {}, h("strong", { class: "mono" }, g.title), g.description ? h("span", { class: "muted" }, ` — ${g.description}`) : null,
    g.note ? h("span", { class: "badge accent" }, g.note) : null),
  ...g.rows));
}

function parseValue(field, raw) {
  if (field.kind === "boolean" || field.kind === "enum") return JSON.parse(raw);
  if (field.kind === "integer" || field.kind === "number") {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`${field.key}: "${raw}" is not a number`);
    return n;
  }
  if (field.kind === "list") return raw.split(",").map((x) => x.trim()).filter(Boolean);
  return raw;
}

/** The config object the form describes: the loaded one with every form key set or unset. */
export function readForm(form, fields, loaded) {
  const config = structuredClone(loaded);
  for (const field of fields) {
    if (field.kind === "section" || field.kind === "map" || field.key === "hf_token") continue;
    const control = form.elements.namedItem(field.key);
    if (!control) continue;
    const raw = control.value.trim();
    const path = field.key.split(".");
    if (raw === "") deletePath(config, path);
    else setPath(config, path, parseValue(field, raw));
  }
  const token = form.elements.namedItem("hf_token")?.value.trim();
  if (token) config.hf_token = token;
  else if (form.elements.namedItem("hf_token_clear")?.checked) config.hf_token = null;
  return config;
}
