// Shared by the Keys and Projects pages: list shapes, access errors, times, a modal dialog.
import { h } from "./dom.js";

/** A list from a bare array or {data: [...]} / {<field>: [...]} (the servers differ). */
export function listOf(body, field) {
  if (Array.isArray(body)) return body;
  for (const name of ["data", field]) if (Array.isArray(body?.[name])) return body[name];
  return [];
}

/** What a failed admin call means to the reader: no such routes, not an admin, no key, or the message. */
export function accessProblem(err, what) {
  if (err.status === 404) return `This node does not support ${what} yet (it has no /v1/${what} routes).`;
  if (err.status === 403) return `Your key is not an admin key: only an admin key can manage ${what}.`;
  if (err.status === 401) return "This node needs an API key: use “Enter key” at the top right.";
  return `Could not load ${what}: ${err.message}`;
}

export function problemBox(text) {
  return h("p", { class: "error access-problem", role: "alert" }, text);
}

function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value); // seconds or ms
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function fmtTime(value, none = "–") {
  const date = toDate(value);
  return date ? date.toLocaleString() : none;
}

export function isPast(value) {
  const date = toDate(value);
  return Boolean(date && date.getTime() <= Date.now());
}

/** "a, b" -> ["a", "b"]; empty -> undefined (the field is left out of the request). */
export function splitList(text) {
  const items = String(text || "").split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
  return items.length ? items : undefined;
}

export function chips(items, none) {
  return items?.length ? items.map((m) => h("span", { class: "chip mono" }, m)) : h("span", { class: "muted" }, none);
}

/** A modal <dialog> with a title and a close button, removed from the page when closed. */
export function modal(title, className, ...body) {
  const dialog = h("dialog", { class: `dialog ${className}`, "aria-label": title },
    h("header", { class: "card-head" }, h("h2", {}, title), h("span", { class: "spacer" }),
      h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
    ...body);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Replace a button with "Really?" + confirm/cancel; onConfirm runs only on the second click. */
export function confirmInline(button, question, onConfirm, onCancel) {
  const cell = button.parentElement;
  const before = [...cell.childNodes];
  const cancel = () => { cell.replaceChildren(...before); onCancel?.(); };
  cell.replaceChildren(h("span", { class: "confirm" }, question, " ",
    h("button", { type: "button", class: "danger", "data-confirm": "", onclick: () => onConfirm(cancel) }, button.textContent),
    h("button", { type: "button", onclick: cancel }, "Cancel")));
}
