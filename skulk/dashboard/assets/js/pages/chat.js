// Chat page: pick a placed model, stream answers token by token, keep conversations locally.
import { h } from "../dom.js";
import { api } from "../api.js";
import { onState } from "../store.js";
import { servedModels } from "../model.js";
import { streamChat } from "../sse.js";
import { loadChats, newConversation, saveChats, toApiMessages } from "../chat_store.js";

function bubble(message) {
  const text = h("div", { class: "bubble-text" }, message.content);
  const node = h("div", { class: ["bubble", message.role, message.error ? "failed" : ""], "data-role": message.role },
    h("div", { class: "bubble-role" }, message.role === "user" ? "You" : message.model || "Assistant"),
    message.reasoning ? h("details", { class: "reasoning" }, h("summary", {}, "Thinking"), message.reasoning) : null,
    text,
    message.error ? h("div", { class: "error", role: "alert" }, `Error: ${message.error}`) : null,
    message.stopped ? h("div", { class: "muted small" }, "Stopped.") : null);
  return { node, text };
}

class ChatPage {
  constructor(view) {
    this.data = loadChats();
    this.models = null; // null until the first /state, so the first one always draws
    this.streaming = null; // {controller, commandId}
    this.modelSelect = h("select", { "aria-label": "Model", onchange: () => this.onModelPicked() });
    this.modelHint = h("span", { class: "muted small" });
    this.list = h("ul", { class: "conversations", "aria-label": "Conversations" });
    this.messages = h("div", { class: "messages", "aria-live": "polite" });
    this.input = h("textarea", { rows: 3, placeholder: "Send a message (Enter to send, Shift+Enter for a new line)",
      "aria-label": "Message", onkeydown: (e) => this.onKey(e) });
    this.sendButton = h("button", { class: "primary", type: "submit", disabled: true }, "Send");
    view.append(h("div", { class: "chat-layout" },
      h("aside", { class: "chat-side" },
        h("button", { type: "button", class: "new-chat", onclick: () => this.newChat() }, "+ New chat"), this.list),
      h("section", { class: "chat-main" },
        h("div", { class: "chat-toolbar" }, h("label", {}, "Model ", this.modelSelect), this.modelHint),
        this.messages,
        h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.onSubmit(); } },
          this.input, this.sendButton))));
    this.drawList();
    this.drawMessages();
  }

  get current() {
    return this.data.conversations.find((c) => c.id === this.data.currentId) || null;
  }

  onState(state) {
    const models = servedModels(state);
    if (JSON.stringify(models) === JSON.stringify(this.models)) return;
    this.models = models;
    if (!this.streaming) this.sendButton.disabled = !models.length;
    const wanted = this.modelSelect.value || this.current?.model;
    this.modelSelect.replaceChildren(...(models.length ? models.map((m) => h("option", { value: m.id },
      `${m.id}${m.ready ? "" : " (starting)"}`)) : [h("option", { value: "" }, "No model placed")]));
    if (models.some((m) => m.id === wanted)) this.modelSelect.value = wanted;
    this.modelHint.replaceChildren(models.length ? ""
      : h("span", {}, "Place a model on the ", h("a", { href: "models", "data-link": "" }, "Models page"), " to chat."));
  }

  onModelPicked() {
    if (this.current && !this.streaming) { this.current.model = this.modelSelect.value; saveChats(this.data); }
  }

  onKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); this.onSubmit(); }
  }

  newChat() {
    if (this.streaming) return;
    this.data.currentId = null;
    saveChats(this.data);
    this.drawList();
    this.drawMessages();
    this.input.focus();
  }

  select(id) {
    if (this.streaming) return;
    this.data.currentId = id;
    const conv = this.current;
    if (conv?.model && (this.models || []).some((m) => m.id === conv.model)) this.modelSelect.value = conv.model;
    saveChats(this.data);
    this.drawList();
    this.drawMessages();
  }

  remove(id) {
    if (this.streaming && this.data.currentId === id) return;
    this.data.conversations = this.data.conversations.filter((c) => c.id !== id);
    if (this.data.currentId === id) this.data.currentId = null;
    saveChats(this.data);
    this.drawList();
    this.drawMessages();
  }

  drawList() {
    const items = this.data.conversations.map((c) => h("li", { class: c.id === this.data.currentId ? "active" : "" },
      h("button", { type: "button", class: "conv-title", title: c.title, onclick: () => this.select(c.id) }, c.title),
      h("button", { type: "button", class: "icon-button", "aria-label": `Delete ${c.title}`, onclick: () => this.remove(c.id) }, "✕")));
    this.list.replaceChildren(...(items.length ? items : [h("li", { class: "muted small" }, "No conversations yet.")]));
  }

  drawMessages() {
    const conv = this.current;
    const bubbles = (conv?.messages || []).map((m) => bubble(m).node);
    this.messages.replaceChildren(...(bubbles.length ? bubbles : [h("p", { class: "muted empty" }, "Ask something to start.")]));
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  onSubmit() {
    if (this.streaming) this.stop();
    else this.send();
  }

  stop() {
    const { controller, commandId } = this.streaming;
    controller.abort();
    if (commandId) api(`v1/cancel/${encodeURIComponent(commandId)}`, { method: "POST" }).catch(() => {});
  }

  startConversation(model, text) {
    let conv = this.current;
    if (!conv) {
      conv = newConversation(model);
      this.data.conversations.unshift(conv);
      this.data.currentId = conv.id;
    }
    if (conv.title === "New chat") conv.title = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    conv.model = model;
    conv.messages.push({ role: "user", content: text });
    return conv;
  }

  async send() {
    const text = this.input.value.trim();
    const model = this.modelSelect.value;
    if (!text || !model) return;
    const conv = this.startConversation(model, text);
    const history = toApiMessages(conv.messages);
    const reply = { role: "assistant", content: "", model };
    conv.messages.push(reply);
    this.input.value = "";
    this.drawList();
    this.drawMessages();
    const view = this.messages.lastElementChild;
    const textNode = view.querySelector(".bubble-text");
    view.classList.add("streaming");
    this.streaming = { controller: new AbortController(), commandId: null };
    this.sendButton.textContent = "Stop";
    try {
      await streamChat({ model, messages: history, signal: this.streaming.controller.signal,
        onCommand: (id) => { this.streaming.commandId = id; },
        onDelta: (delta, kind) => {
          if (kind === "reasoning") reply.reasoning = (reply.reasoning || "") + delta;
          else { reply.content += delta; textNode.textContent = reply.content; }
          this.messages.scrollTop = this.messages.scrollHeight;
        } });
    } catch (err) {
      if (err.name === "AbortError") reply.stopped = true;
      else reply.error = err.message;
    } finally {
      this.streaming = null;
      this.sendButton.textContent = "Send";
      this.sendButton.disabled = !this.models?.length;
      conv.updatedAt = Date.now();
      saveChats(this.data);
      this.drawMessages();
    }
  }
}

export function mountChat(view) {
  const page = new ChatPage(view);
  const unsubscribe = onState((state) => page.onState(state));
  return () => {
    unsubscribe();
    if (page.streaming) page.stop();
  };
}
