"""Anthropic Messages request shape and its translation to task params.

Content blocks read: text, tool_use (an earlier call, rendered through the chat template),
tool_result (the tool's answer, as a `tool` message), thinking/redacted_thinking (dropped: the
template has no place for them). Images are refused: the models served here read text only.
"""

from typing import Any, Literal

from pydantic import Field

from skulk.api.chat_models import OpenModel
from skulk.api.tool_calls import function_tool, template_tool_call
from skulk.errors import BadRequest
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams


class Block(OpenModel):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list["Block"] | None = None
    is_error: bool | None = None


class AnthropicMessage(OpenModel):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class TextBlock(OpenModel):
    type: Literal["text"] = "text"
    text: str


class AnthropicTool(OpenModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    type: str | None = None


class ToolChoice(OpenModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class Thinking(OpenModel):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None


class MessagesRequest(OpenModel):
    model: str
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage]
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    tools: list[AnthropicTool] | None = None
    tool_choice: ToolChoice | None = None
    metadata: dict[str, Any] | None = None
    thinking: Thinking | None = None

    @property
    def uses_tools(self) -> bool:
        return bool(self.tools) and (self.tool_choice is None or self.tool_choice.type != "none")


def _result_text(block: Block, param: str) -> str:
    if block.content is None or isinstance(block.content, str):
        return block.content or ""
    parts = []
    for i, b in enumerate(block.content):
        if b.type != "text":
            raise BadRequest(f"tool_result content type {b.type!r} is not supported (text only)",
                             param=f"{param}.content[{i}].type")
        parts.append(b.text or "")
    return "".join(parts)


def _turn(i: int, m: AnthropicMessage) -> list[ChatMessage]:
    """One Anthropic turn as chat messages: tool results first (they answer the previous turn)."""
    blocks = [Block(type="text", text=m.content)] if isinstance(m.content, str) else m.content
    texts, calls, results = [], [], []
    for j, b in enumerate(blocks):
        p = f"messages[{i}].content[{j}]"
        if b.type == "text":
            texts.append(b.text or "")
        elif b.type == "tool_use" and m.role == "assistant":
            if not b.id or not b.name:
                raise BadRequest("tool_use blocks need id and name", param=p)
            calls.append(template_tool_call(b.id, b.name, b.input or {}))
        elif b.type == "tool_result" and m.role == "user":
            if not b.tool_use_id:
                raise BadRequest("tool_result blocks need tool_use_id", param=f"{p}.tool_use_id")
            results.append(ChatMessage(role="tool", content=_result_text(b, p), tool_call_id=b.tool_use_id))
        elif b.type not in ("thinking", "redacted_thinking"):
            raise BadRequest(f"content block type {b.type!r} is not supported in a {m.role} message",
                             param=f"{p}.type")
    text = "".join(texts)
    if m.role == "assistant":
        return [ChatMessage(role="assistant", content=text, tool_calls=calls or None)]
    return results + ([ChatMessage(role="user", content=text)] if text or not results else [])


def _system(req: MessagesRequest) -> list[ChatMessage]:
    if not req.system:
        return []
    text = req.system if isinstance(req.system, str) else "\n\n".join(b.text for b in req.system)
    return [ChatMessage(role="system", content=text)]


def to_task_params(req: MessagesRequest) -> TextGenerationTaskParams:
    if not req.messages:
        raise BadRequest("messages: at least one message is required", param="messages")
    messages = _system(req) + [msg for i, m in enumerate(req.messages) for msg in _turn(i, m)]
    tools = [function_tool(t.name, t.description, t.input_schema) for t in req.tools or []] if req.uses_tools else None
    thinking = None if req.thinking is None else req.thinking.type != "disabled"
    return TextGenerationTaskParams(
        model=req.model, input=messages, max_output_tokens=req.max_tokens, temperature=req.temperature,
        top_p=req.top_p, top_k=req.top_k, stop=[s for s in req.stop_sequences or [] if s] or None,
        stream=req.stream, tools=tools, enable_thinking=thinking)
