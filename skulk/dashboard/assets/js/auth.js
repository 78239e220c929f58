// The API key: kept in localStorage when remembered (else for this tab only), asked for on a 401.
import { h } from "./dom.js";

const KEY = "skulk.apiKey";
let memory = null; // a key not remembered: lives until the tab closes or reloads
let pending = null; // one prompt answers every request that got a 401 meanwhile
let declined = false; // cancelled once: background polls stop asking until the header button is used

function stored() {
  try { return localStorage.getItem(KEY) || sessionStorage.getItem(KEY); } catch { return null; }
}

export function currentKey() {
  return memory || stored();
}

function remember(key, persist) {
  memory = key;
  try {
    // Not remembered: sessionStorage survives a reload of this tab, not the browser.
    (persist ? sessionStorage : localStorage).removeItem(KEY);
    (persist ? localStorage : sessionStorage).setItem(KEY, key);
  } catch { /* storage disabled: the key stays in memory */ }
  showSignOut();
}

export function forgetKey() {
  memory = null;
  try { localStorage.removeItem(KEY); sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
  showSignOut();
}

/** Headers for a request: adds the Bearer key when there is one. */
export function withKey(headers = {}) {
  const key = currentKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

function buildPrompt(message, resolve) {
  const input = h("input", { type: "password", name: "api_key", autocomplete: "current-password",
    "aria-label": "API key", placeholder: "sk-…", required: true });
  const persist = h("input", { type: "checkbox", name: "remember", checked: true });
  const done = (key) => { dialog.close(); resolve(key); };
  const form = h("form", { method: "dialog", onsubmit: (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    remember(key, persist.checked);
    done(key);
  } },
  h("h2", {}, "API key needed"),
  h("p", { class: "muted" }, message),
  h("div", { class: "form-grid" }, h("label", {}, "Key"), input,
    h("span"), h("label", { class: "inline" }, persist, " Remember on this browser")),
  h("footer", { class: "dialog-foot" },
    h("button", { type: "button", onclick: () => done(null) }, "Cancel"),
    h("button", { type: "submit", class: "primary" }, "Use key")));
  const dialog = h("dialog", { class: "dialog key-prompt", "aria-label": "API key needed" }, form);
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(null); });
  dialog.addEventListener("close", () => dialog.remove());
  return { dialog, input };
}

/** Ask for a key (once, however many requests wait); resolves with the key or null if cancelled. */
export function promptForKey(refused) {
  if (pending) return pending;
  if (refused) forgetKey(); // the stored key no longer works (revoked, expired)
  if (declined) return Promise.resolve(null);
  const message = refused ? "This node refused the key (revoked or expired?). Enter another one."
    : "This node requires an API key. Enter an admin or user key.";
  pending = new Promise((resolve) => {
    const { dialog, input } = buildPrompt(message, resolve);
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  }).then((key) => { declined = !key; showSignOut(); return key; })
    .finally(() => { pending = null; });
  return pending;
}

/** The header button: "Sign out" with a key, "Enter key" after a cancelled prompt, else hidden. */
export function showSignOut() {
  const button = document.getElementById("sign-out");
  if (!button) return;
  button.hidden = !currentKey() && !declined;
  button.textContent = currentKey() ? "Sign out" : "Enter key";
  button.title = currentKey() ? "Forget the API key on this browser" : "Enter an API key";
}

async function onAuthButton() {
  if (currentKey()) {
    forgetKey();
  } else {
    declined = false;
    if (!await promptForKey(false)) return;
  }
  location.reload(); // every page and poll starts again with (or without) the key
}

export function initAuth() {
  document.getElementById("sign-out")?.addEventListener("click", onAuthButton);
  showSignOut();
}
