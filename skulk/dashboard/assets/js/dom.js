// A tiny DOM builder and formatters; the app renders with these instead of a framework.
const SVG_NS = "http://www.w3.org/2000/svg";

function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** h("div", {class: "x", onclick}, "text", child, [more]) -> HTMLElement */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  return append(node, children);
}

/** The same for SVG elements, which need their namespace. */
export function s(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  return append(node, children);
}

export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Math.abs(bytes);
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  const digits = value >= 100 || i === 0 ? 0 : 1;
  return `${bytes < 0 ? "-" : ""}${value.toFixed(digits)} ${units[i]}`;
}

export function fmtPct(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "–";
  return `${Math.round(ratio * 100)}%`;
}

export function shortId(id) {
  if (!id) return "";
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

/** A horizontal meter; ratio in [0, 1]. */
export function meter(ratio, label) {
  const pct = Math.max(0, Math.min(1, ratio || 0)) * 100;
  const level = pct > 90 ? "err" : pct > 75 ? "warn" : "ok";
  return h("div", { class: "meter", role: "meter", "aria-valuenow": Math.round(pct),
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": label || "" },
  h("div", { class: `meter-fill ${level}`, style: { width: `${pct.toFixed(1)}%` } }));
}
