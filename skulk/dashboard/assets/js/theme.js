// Light/dark theme: an explicit choice is remembered; until then the system setting rules.
const KEY = "skulk.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");

function saved() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

export function currentTheme() {
  return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
}

function apply(theme) {
  document.documentElement.dataset.theme = theme;
  const button = document.getElementById("theme-toggle");
  if (button) {
    button.textContent = theme === "dark" ? "☀" : "☾";
    button.setAttribute("aria-pressed", String(theme === "dark"));
  }
  document.dispatchEvent(new CustomEvent("skulk:theme", { detail: theme }));
}

export function setTheme(theme) {
  try { localStorage.setItem(KEY, theme); } catch { /* not remembered, still applied */ }
  apply(theme);
}

export function initTheme() {
  apply(saved() || (media.matches ? "dark" : "light"));
  media.addEventListener("change", (e) => { if (!saved()) apply(e.matches ? "dark" : "light"); });
  document.getElementById("theme-toggle")
    ?.addEventListener("click", () => setTheme(currentTheme() === "dark" ? "light" : "dark"));
}
