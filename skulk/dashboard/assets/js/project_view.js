// How a project reads on the page: its policy limits and its live usage (meters where a limit exists).
import { h, meter } from "./dom.js";
import { chips } from "./access.js";

export const LIMITS = [
  ["max_concurrent_requests", "concurrent requests"], ["requests_per_minute", "requests / min"],
  ["tokens_per_minute", "tokens / min"], ["max_instances", "instances"]];

export function policyOf(project) {
  return project.policy && typeof project.policy === "object" ? { ...project, ...project.policy } : project;
}

/** usage is {"1m": {requests, prompt_tokens, completion_tokens, rejections}, "1h": ..., "24h": ...}. */
function tokens(counts) {
  return (counts?.prompt_tokens || 0) + (counts?.completion_tokens || 0);
}

/** The live value the server reports for each limit it enforces (absent when it reports none). */
export function liveValues(project) {
  const minute = project.usage?.["1m"];
  return {
    max_concurrent_requests: project.open_requests,
    requests_per_minute: minute?.requests,
    tokens_per_minute: minute ? tokens(minute) : undefined,
    max_instances: project.instances,
  };
}

export function policyCell(policy) {
  const set = LIMITS.filter(([k]) => policy[k] !== null && policy[k] !== undefined);
  return h("div", { class: "policy" },
    set.length ? set.map(([k, label]) => h("div", { "data-limit": k }, h("strong", {}, String(policy[k])), ` ${label}`))
      : h("div", { class: "muted" }, "no limits"),
    h("div", { class: "small" }, "models: ", chips(policy.allowed_models, "all")));
}

function windowsTable(usage) {
  const rows = Object.entries(usage || {}).filter(([, c]) => c && typeof c === "object");
  if (!rows.length) return null;
  return h("table", { class: "usage-windows small" },
    h("thead", {}, h("tr", {}, ["", "requests", "tokens", "rejected"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map(([label, c]) => h("tr", { "data-window": label },
      h("td", {}, label), h("td", { class: "num" }, c.requests ?? 0), h("td", { class: "num" }, tokens(c)),
      h("td", { class: "num" }, c.rejections ?? 0)))));
}

export function usageCell(project, policy) {
  const live = liveValues(project);
  const meters = LIMITS.filter(([k]) => typeof live[k] === "number").map(([k, label]) => {
    const limit = policy[k];
    return h("div", { class: "usage-line", "data-usage": k },
      h("span", {}, limit ? `${live[k]} / ${limit} ${label}` : `${live[k]} ${label}`), limit ? meter(live[k] / limit, label) : null);
  });
  const keys = Array.isArray(project.keys) ? h("div", { class: "muted small" },
    `${project.keys.length} key${project.keys.length === 1 ? "" : "s"}`) : null;
  if (!meters.length && !project.usage) return h("span", { class: "muted" }, "no usage yet");
  return h("div", { class: "usage" }, meters, windowsTable(project.usage), keys);
}
