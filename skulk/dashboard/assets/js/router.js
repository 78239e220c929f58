// Client-side routing with the history API; paths are relative to the base path.
import { BASE } from "./api.js";

const pages = new Map();
let current = null; // {name, unmount}
const DEFAULT_PAGE = "cluster";
// Deep links of older Skulk dashboards (served by routes_dashboard.LEGACY_PAGES).
const ALIASES = { "model-store": "models", operator: "cluster" };

export function registerPage(name, mount) {
  pages.set(name, mount);
}

export function pageFromLocation() {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "";
  const segment = path.split("/")[0];
  const name = ALIASES[segment] ?? segment;
  return pages.has(name) ? name : DEFAULT_PAGE;
}

function highlight(name) {
  for (const link of document.querySelectorAll(".nav a[data-page]")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function render() {
  const name = pageFromLocation();
  if (current?.name === name) return;
  current?.unmount?.();
  const view = document.getElementById("view");
  view.replaceChildren();
  view.dataset.page = name;
  highlight(name);
  document.title = `Skulk · ${name[0].toUpperCase()}${name.slice(1)}`;
  current = { name, unmount: pages.get(name)(view) };
}

export function navigate(name) {
  const target = BASE + name;
  if (location.pathname !== target) history.pushState({}, "", target);
  render();
}

export function startRouter() {
  window.addEventListener("popstate", render);
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-link]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  render();
}
