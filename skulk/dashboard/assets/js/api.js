// Every request goes to a URL relative to <base href>, so a proxy path prefix just works.
import { currentKey, promptForKey, withKey } from "./auth.js";

export class ApiError extends Error {
  constructor(status, message, param = null) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

/** The base path the page was served under, always ending in "/" ("/" or "/skulk/"). */
export const BASE = new URL(document.baseURI).pathname.replace(/[^/]*$/, "");

export function apiUrl(path) {
  return new URL(path.replace(/^\/+/, ""), document.baseURI).toString();
}

/** The message of an error envelope {"error": {"message"}}, or something readable. */
export function errorText(body, fallback) {
  if (body && typeof body === "object") {
    const err = body.error;
    if (err && typeof err === "object" && err.message) return String(err.message);
    if (typeof err === "string") return err;
    if (typeof body.detail === "string") return body.detail;
  }
  return fallback;
}

async function parseBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

/**
 * fetch(apiUrl(path)) with the stored key; on a 401 asks for a key and retries with it.
 * Cancelling the prompt returns the 401 response. Every API call (JSON or streamed) goes here.
 */
export async function authFetch(path, init = {}) {
  for (;;) {
    const sent = currentKey();
    const resp = await fetch(apiUrl(path), { ...init, headers: withKey(init.headers) });
    if (resp.status !== 401) return resp;
    // Another request may have got a key while this one was in flight: retry with it first.
    if (currentKey() && currentKey() !== sent) continue;
    if (!await promptForKey(Boolean(sent))) return resp;
  }
}

/** fetch + JSON; a non-2xx answer throws ApiError with the server's own message. */
export async function api(path, { method = "GET", body, signal } = {}) {
  let resp;
  try {
    resp = await authFetch(path, {
      method,
      signal,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `Cannot reach the node: ${err.message}`);
  }
  const data = await parseBody(resp);
  if (!resp.ok) {
    const fallback = `${resp.status} ${resp.statusText || "error"}`;
    throw new ApiError(resp.status, errorText(data, typeof data === "string" && data ? data : fallback),
      data?.error?.param ?? null);
  }
  return data;
}
