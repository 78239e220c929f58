"""Reading generated text: reasoning between <think> tags, and tool calls the model wrote.

A generic format that covers most open chat models: `<tool_call>{"name": ..., "arguments": {...}}
</tool_call>` blocks, or (when the request offered tools) a reply that is nothing but such a JSON
object or a list of them. The splitter works on a stream: text that could still turn into a tag
or a call is held back until it is known not to, so clients never see half a tag.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text of an object, as OpenAI clients expect it

    @property
    def input(self) -> dict[str, Any]:
        return json.loads(self.arguments)


class Piece(NamedTuple):
    kind: Literal["text", "reasoning"]
    text: str


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _one_call(item: Any) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # OpenAI-shaped {"type": "function", "function": {...}}
        item = item["function"]
    name = item.get("name")
    args = item.get("arguments", item.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        return None
    return ToolCall(new_id("call_"), name, json.dumps(args, ensure_ascii=False))


def parse_calls(text: str) -> list[ToolCall] | None:
    """A call object or a list of them; None when the text is anything else."""
    try:
        obj = json.loads(text.strip())
    except ValueError:
        return None
    items = obj if isinstance(obj, list) else [obj]
    calls = [_one_call(i) for i in items]
    if not calls or any(c is None for c in calls):
        return None
    return calls  # type: ignore[return-value]


def _partial_tag(buf: str, tags: tuple[str, ...]) -> int:
    """Length of the longest suffix of buf that begins one of the tags."""
    best = 0
    for tag in tags:
        for k in range(min(len(tag) - 1, len(buf)), best, -1):
            if buf.endswith(tag[:k]):
                best = k
                break
    return best


class OutputParser:
    """Feed generated text in; get visible text and reasoning out, tool calls collected."""

    def __init__(self, *, parse_tools: bool):
        self.parse_tools = parse_tools
        self.tool_calls: list[ToolCall] = []
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self._buf = ""
        self._mode: Literal["text", "think", "call"] = "text"
        self._visible = False  # some text was emitted: a bare JSON reply is no longer possible

    def feed(self, text: str) -> list[Piece]:
        self._buf += text
        out: list[Piece] = []
        while self._step(out, final=False):
            pass
        return self._record(out)

    def finish(self) -> list[Piece]:
        """End of output: flush what was held back, reading a whole-JSON reply as tool calls."""
        out: list[Piece] = []
        while self._step(out, final=True):
            pass
        bare = self._bare_possible()
        buf, self._buf = self._buf, ""
        if self._mode == "think":
            out.append(Piece("reasoning", buf))
        elif self._mode == "call":
            self._close_call(buf, out)
        elif buf:
            calls = parse_calls(buf) if bare else None
            if calls:
                self.tool_calls += calls
            elif buf.strip() or not self.tool_calls:
                out.append(Piece("text", buf))
        return self._record(out)

    def _record(self, out: list[Piece]) -> list[Piece]:
        kept = []
        for p in out:
            if p.kind == "text" and self.reasoning and not self._visible:  # the answer starts after </think>
                p = Piece("text", p.text.lstrip())
            if not p.text:
                continue
            kept.append(p)
            (self.text if p.kind == "text" else self.reasoning).append(p.text)
            self._visible = self._visible or (p.kind == "text" and bool(p.text.strip()))
        return kept

    def _bare_possible(self) -> bool:
        return self.parse_tools and not self._visible and self._buf.lstrip()[:1] in ("{", "[")

    def _tags(self) -> tuple[str, ...]:
        return (THINK_OPEN, CALL_OPEN) if self.parse_tools else (THINK_OPEN,)

    def _step(self, out: list[Piece], *, final: bool) -> bool:
        """Consume one tag or safe stretch of the buffer; False when nothing more can move now."""
        if self._mode == "think":
            return self._think_step(out, final)
        if self._mode == "call":
            i = self._buf.find(CALL_CLOSE)
            if i < 0:
                return False
            body, self._buf, self._mode = self._buf[:i], self._buf[i + len(CALL_CLOSE):], "text"
            self._close_call(body, out)
            return True
        return self._text_step(out, final)

    def _text_step(self, out: list[Piece], final: bool) -> bool:
        hits = [(i, t) for t in self._tags() if (i := self._buf.find(t)) >= 0]
        if hits:
            i, tag = min(hits)
            if self._buf[:i].strip() or not self.tool_calls:  # whitespace between calls is not an answer
                out.append(Piece("text", self._buf[:i]))
            self._buf = self._buf[i + len(tag):]
            self._mode = "think" if tag == THINK_OPEN else "call"
            return True
        if final or self._bare_possible() or (self.parse_tools and not self._buf.strip()):
            return False  # held until finish() or until the reply shows it is plain text
        cut = len(self._buf) - _partial_tag(self._buf, self._tags())
        if cut <= 0 or (self.tool_calls and not self._buf[:cut].strip()):
            return False
        out.append(Piece("text", self._buf[:cut]))
        self._buf = self._buf[cut:]
        return False

    def _think_step(self, out: list[Piece], final: bool) -> bool:
        i = self._buf.find(THINK_CLOSE)
        if i >= 0:
            out.append(Piece("reasoning", self._buf[:i]))
            self._buf, self._mode = self._buf[i + len(THINK_CLOSE):].lstrip("\n"), "text"
            return True
        if final:
            return False
        cut = len(self._buf) - _partial_tag(self._buf, (THINK_CLOSE,))
        if cut > 0:
            out.append(Piece("reasoning", self._buf[:cut]))
            self._buf = self._buf[cut:]
        return False

    def _close_call(self, body: str, out: list[Piece]) -> None:
        calls = parse_calls(body)
        if calls:
            self.tool_calls += calls
        else:  # not a call we can read: show it as the model wrote it
            out.append(Piece("text", CALL_OPEN + body + (CALL_CLOSE if self._mode == "text" else "")))
        self._mode = "text"


def template_tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An earlier call as chat templates expect it in an assistant message (arguments as a dict)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def function_tool(name: str, description: str | None, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """A tool definition in the chat-completions shape that chat templates render."""
    fn: dict[str, Any] = {"name": name, "parameters": parameters or {"type": "object", "properties": {}}}
    if description:
        fn["description"] = description
    return {"type": "function", "function": fn}
