// Polls GET /state and hands each snapshot to the pages; also drives the connection badge.
import { api } from "./api.js";

const POLL_MS = 1000;
const HIDDEN_POLL_MS = 5000;
const listeners = new Set();
let latest = null;
let failures = 0;
let timer = null;
let inFlight = false;

export function latestState() {
  return latest;
}

/** Calls fn(state) now (if known) and on every new snapshot; returns an unsubscribe function. */
export function onState(fn) {
  listeners.add(fn);
  if (latest) fn(latest);
  return () => listeners.delete(fn);
}

function showConnection(ok, error) {
  const badge = document.getElementById("conn");
  const banner = document.getElementById("banner");
  if (badge) {
    badge.textContent = ok ? "live" : "offline";
    badge.className = `conn ${ok ? "ok" : "err"}`;
  }
  if (banner) {
    banner.hidden = ok || failures < 2;
    banner.textContent = ok ? "" : `Reconnecting to the node… (${error?.message || "no answer"})`;
  }
}

async function poll() {
  if (inFlight) return;
  inFlight = true;
  try {
    latest = await api("state");
    failures = 0;
    showConnection(true);
    for (const fn of [...listeners]) {
      try { fn(latest); } catch (err) { console.error("state listener failed", err); }
    }
  } catch (err) {
    failures += 1;
    showConnection(false, err);
  } finally {
    inFlight = false;
    clearTimeout(timer);
    timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }
}

/** Fetch a fresh snapshot now (after an action), instead of waiting for the next tick. */
export function refreshState() {
  clearTimeout(timer);
  return poll();
}

export function startPolling() {
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshState(); });
  poll();
}
