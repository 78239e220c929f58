// Short-lived notices for finished actions; errors stay until clicked.
import { h } from "./dom.js";

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const node = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status",
    onclick: () => node.remove() }, message);
  box.append(node);
  if (kind !== "error") setTimeout(() => node.remove(), 4000);
}
