// How a project reads on the page: its policy limits and its live usage (meters where a limit exists).
import { h, meter } from "./dom.js";
import { chips } from "./access.js";

export const LIMITS = [
  ["max_concurrent_requests", "concurrent requests"], ["requests_per_minute", "requests / min"],
  ["tokens_per_minute", "tokens / min"], ["max_instances", "instances"]];
// Where the live value of each limit may sit in the usage object (first match wins).
const LIVE = {
  max_concurrent_requests: ["concurrent", "concurrent_requests", "open_requests", "in_flight", "active_requests"],
  requests_per_minute: ["requests_last_minute", "requests_per_minute", "1m.requests", "minute.requests", "windows.1m.requests"],
  tokens_per_minute: ["tokens_last_minute", "tokens_per_minute", "1m.tokens", "minute.tokens", "windows.1m.tokens"],
  max_instances: ["instances", "max_instances"],
};

export function policyOf(project) {
  return project.policy && typeof project.policy === "object" ? { ...project, ...project.policy } : project;
}

export function usageOf(project) {
  return project.usage || project.live_usage || project.live || {};
}

function pick(obj, path) {
  return path.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), obj);
}

/** Every number in the usage object as [dotted.path, value], in order (at most `max`). */
export function numbers(obj, prefix = "", out = [], max = 24) {
  for (const [k, v] of Object.entries(obj || {})) {
    if (out.length >= max) break;
    const path = prefix ? `${prefix}.${k}` : k;
    if (typeof v === "number") out.push([path, v]);
    else if (v && typeof v === "object" && !Array.isArray(v)) numbers(v, path, out, max);
  }
  return out;
}

export function policyCell(policy) {
  const set = LIMITS.filter(([k]) => policy[k] !== null && policy[k] !== undefined);
  return h("div", { class: "policy" },
    set.length ? set.map(([k, label]) => h("div", { "data-limit": k }, h("strong", {}, String(policy[k])), ` ${label}`))
      : h("div", { class: "muted" }, "no limits"),
    h("div", { class: "small" }, "models: ", chips(policy.allowed_models, "all")));
}

export function usageCell(policy, usage) {
  const used = new Set();
  const meters = [];
  for (const [k, label] of LIMITS) {
    const path = LIVE[k].find((p) => typeof pick(usage, p) === "number");
    if (!path) continue;
    used.add(path);
    const value = pick(usage, path);
    const limit = policy[k];
    meters.push(h("div", { class: "usage-line", "data-usage": k },
      h("span", {}, limit ? `${value} / ${limit} ${label}` : `${value} ${label}`), limit ? meter(value / limit, label) : null));
  }
  const rest = numbers(usage).filter(([p]) => !used.has(p));
  if (!meters.length && !rest.length) return h("span", { class: "muted" }, "no usage yet");
  return h("div", { class: "usage" }, meters,
    rest.length ? h("div", { class: "muted small usage-rest" }, rest.map(([p, v]) => `${p} ${v}`).join(" · ")) : null);
}
