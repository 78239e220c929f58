// Settings page extras: the webhook for notifications, and the danger zone (POST /admin/purge).
import { h } from "./dom.js";
import { api } from "./api.js";
import { confirmInline } from "./access.js";
import { refreshState } from "./store.js";
import { toast } from "./toast.js";

/** The cluster-wide notifications.webhook_url, saved by PUT /config (it applies live). */
export function notificationsCard() {
  const input = h("input", { type: "url", name: "webhook_url", class: "mono", "data-webhook-url": "",
    placeholder: "https://hooks.slack.com/services/… or any http(s) URL", "aria-label": "Webhook URL", size: 50 });
  const status = h("span", { class: "save-status", "aria-live": "polite" });
  let config = null;
  const load = async () => {
    try {
      const doc = await api("config");
      config = doc.config || {};
      input.value = doc.effective?.notifications?.webhook_url || "";
    } catch (err) {
      status.textContent = `Could not load: ${err.message}`;
    }
  };
  const save = async () => {
    if (config === null) return;
    const next = { ...config, notifications: { ...(config.notifications || {}), webhook_url: input.value.trim() } };
    try {
      await api("config", { method: "PUT", body: { config: next } });
      config = next;
      status.className = "save-status ok";
      status.textContent = input.value.trim() ? "Saved: the master sends notifications there." : "Saved: notifications are off.";
    } catch (err) {
      status.className = "save-status error";
      status.textContent = err.message;
    }
  };
  load();
  return h("section", { class: "card notifications-card", "aria-label": "Notifications" },
    h("header", { class: "card-head" }, h("h2", {}, "Notifications")),
    h("p", { class: "muted small" }, "One POST per event: deployment ready, failed, paused or woken, lease expiring or "
      + "expired, node lost or recovered. A Slack incoming-webhook URL gets Slack's message shape; empty turns them off."),
    h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); save(); } },
      input, h("button", { type: "submit", class: "primary", "data-save-webhook": "" }, "Save"), status));
}

const PURGES = [
  ["deployments", "Delete every deployment", "Stops and removes every deployment (no alert is sent)."],
  ["metrics", "Clear the metric history", "Empties the history of this node and of every live node."],
  ["nodes", "Forget gone nodes", "Drops what the cluster remembers about nodes that are no longer live."],
];

function purgeText(what, answer) {
  const part = answer[what] || {};
  if (what === "deployments") return `${(part.deleted || []).length} deployment(s) deleted`;
  if (what === "nodes") return `${(part.forgotten || []).length} node(s) forgotten`;
  const failed = Object.keys(part.failed || {});
  return `history cleared on ${Object.keys(part.cleared || {}).length} node(s)`
    + (failed.length ? `, failed on ${failed.length}` : "");
}

/** Three buttons, each asking "Really?" before its POST /admin/purge. */
export function dangerZone() {
  const result = h("p", { class: "small", "aria-live": "polite", "data-purge-result": "" });
  const rows = PURGES.map(([what, label, help]) => {
    const cell = h("div", {});
    const button = h("button", { type: "button", class: "danger", [`data-purge-${what}`]: "",
      onclick: () => confirmInline(button, "Really?", async (cancel) => {
        try {
          const answer = await api("admin/purge", { method: "POST", body: { [what]: true } });
          result.textContent = purgeText(what, answer);
          toast(result.textContent);
          refreshState();
        } catch (err) {
          result.textContent = `Purge failed: ${err.message}`;
        }
        cancel();
      }) }, label);
    cell.append(button);
    return h("div", { class: "danger-row" }, cell, h("span", { class: "muted small" }, help));
  });
  return h("section", { class: "card danger-zone", "aria-label": "Danger zone" },
    h("header", { class: "card-head" }, h("h2", {}, "Danger zone")), ...rows, result);
}
