// Server-sent events over fetch: a line parser and the chat-completions stream reader.
import { ApiError, authFetch, errorText } from "./api.js";

/** Incremental SSE parser: push() text as it arrives, get back complete events. */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.data = [];
  }

  /** Returns [{comment}] and [{data}] items for every complete line/event in the text so far. */
  push(text) {
    this.buffer += text;
    const out = [];
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop(); // the last piece may be a partial line
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) out.push({ data: this.data.join("\n") });
        this.data = [];
      } else if (line.startsWith(":")) {
        out.push({ comment: line.slice(1).trim() });
      } else if (line.startsWith("data:")) {
        this.data.push(line.slice(5).replace(/^ /, ""));
      } // other fields (event:, id:, retry:) are not used by chat completions
    }
    return out;
  }
}

async function failure(resp) {
  const text = await resp.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON: show the text */ }
  return new ApiError(resp.status, errorText(body, text || `${resp.status} ${resp.statusText}`), body?.error?.param);
}

function handleData(data, handlers) {
  if (data === "[DONE]") return true;
  let chunk;
  try { chunk = JSON.parse(data); } catch { throw new ApiError(0, `Unreadable stream data: ${data.slice(0, 120)}`); }
  if (chunk.error) throw new ApiError(chunk.error.code || 500, errorText(chunk, "The model failed"));
  const choice = chunk.choices?.[0];
  if (choice?.delta?.content) handlers.onDelta(choice.delta.content, "content");
  if (choice?.delta?.reasoning_content) handlers.onDelta(choice.delta.reasoning_content, "reasoning");
  if (choice?.finish_reason) handlers.finishReason = choice.finish_reason;
  return false;
}

/**
 * POST /v1/chat/completions with stream: true and feed each delta to onDelta(text, kind).
 * Resolves with the finish reason; rejects with ApiError on HTTP or in-stream errors.
 */
export async function streamChat({ model, messages, signal, onDelta, onCommand }) {
  const resp = await authFetch("v1/chat/completions", {
    method: "POST", signal, headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model, messages, stream: true }),
  });
  if (!resp.ok) throw await failure(resp);
  const handlers = { onDelta, finishReason: null };
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    const events = parser.push(done ? decoder.decode() + "\n\n" : decoder.decode(value, { stream: true }));
    for (const event of events) {
      if (event.comment?.startsWith("command_id ")) onCommand?.(event.comment.slice(11).trim());
      if (event.data !== undefined && handleData(event.data, handlers)) {
        reader.cancel().catch(() => {});
        return handlers.finishReason;
      }
    }
    if (done) throw new ApiError(0, "The answer stream ended before it was complete.");
  }
}
