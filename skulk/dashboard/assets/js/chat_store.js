// Conversations kept in localStorage, so they survive reloads of the page.
const KEY = "skulk.chat.v1";
const MAX_CONVERSATIONS = 50;

export function loadChats() {
  try {
    const data = JSON.parse(localStorage.getItem(KEY) || "null");
    if (data && Array.isArray(data.conversations)) return data;
  } catch { /* corrupt or unavailable: start fresh */ }
  return { conversations: [], currentId: null };
}

export function saveChats(data) {
  data.conversations.sort((a, b) => b.updatedAt - a.updatedAt);
  data.conversations = data.conversations.slice(0, MAX_CONVERSATIONS);
  try {
    localStorage.setItem(KEY, JSON.stringify(data));
  } catch (err) {
    console.warn("could not save conversations", err);
  }
}

export function newConversation(model) {
  const id = (crypto.randomUUID && crypto.randomUUID()) || `c${Date.now()}${Math.random().toString(16).slice(2)}`;
  const now = Date.now();
  return { id, title: "New chat", model, createdAt: now, updatedAt: now, messages: [] };
}

/** The messages to send: everything said so far except failed or empty replies. */
export function toApiMessages(messages) {
  return messages.filter((m) => !m.error && m.content).map((m) => ({ role: m.role, content: m.content }));
}
