"""OpenAI chat-completions request shape and its translation to the internal task params.

Accepted and passed on: sampling (temperature, top_p, top_k, min_p, seed, repetition, frequency
and presence penalties), stop, max_tokens / max_completion_tokens, tools, enable_thinking,
reasoning_effort. Accepted, not enforced: response_format (JSON mode is not constrained),
tool_choice other than "none" (the model decides), logprobs (answered with null), user.
"""

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skulk.api.tool_calls import template_tool_call
from skulk.errors import BadRequest
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams


class OpenModel(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send fields we do not use; ignore them


class ContentPart(OpenModel):
    type: str
    text: str | None = None


class FunctionCall(OpenModel):
    name: str
    arguments: str = "{}"


class MessageToolCall(OpenModel):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatCompletionMessage(OpenModel):
    role: Literal["system", "user", "assistant", "developer", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDef(OpenModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(OpenModel):
    type: Literal["function"] = "function"
    function: FunctionDef


class NamedToolChoice(OpenModel):
    type: Literal["function"] = "function"
    function: dict[str, Any]


class ResponseFormat(OpenModel):
    type: Literal["text", "json_object", "json_schema"]


class StreamOptions(OpenModel):
    include_usage: bool = False


class ChatCompletionRequest(OpenModel):
    model: str
    messages: list[ChatCompletionMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    repetition_penalty: float | None = Field(default=None, gt=0)
    repetition_context_size: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    enable_thinking: bool | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    user: str | None = None

    @property
    def uses_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


def part_text(content: str | list[Any] | None, param: str, text_types: tuple[str, ...] = ("text",)) -> str:
    """The text of string-or-parts content; parts other than text are refused (text models only)."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for i, part in enumerate(content):
        if part.type not in text_types:
            raise BadRequest(f"content part type {part.type!r} is not supported (text only)",
                             param=f"{param}[{i}].type")
        texts.append(part.text or "")
    return "".join(texts)


def call_arguments(raw: str, param: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("tool call arguments must be a JSON object", param=param) from None
    if not isinstance(value, dict):
        raise BadRequest("tool call arguments must be a JSON object", param=param)
    return value


def _message(i: int, m: ChatCompletionMessage) -> ChatMessage:
    text = part_text(m.content, f"messages[{i}].content")
    calls = None
    if m.tool_calls:
        calls = [template_tool_call(c.id or f"call_{i}_{j}", c.function.name,
                                    call_arguments(c.function.arguments, f"messages[{i}].tool_calls[{j}].function.arguments"))
                 for j, c in enumerate(m.tool_calls)]
    role = "tool" if m.role == "function" else m.role
    return ChatMessage(role=role, content=text, tool_calls=calls, tool_call_id=m.tool_call_id, name=m.name)


def to_task_params(req: ChatCompletionRequest) -> TextGenerationTaskParams:
    if not req.messages:
        raise BadRequest("messages must not be empty", param="messages")
    stop = [req.stop] if isinstance(req.stop, str) else req.stop
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []] if req.uses_tools else None
    return TextGenerationTaskParams(
        model=req.model, input=[_message(i, m) for i, m in enumerate(req.messages)],
        max_output_tokens=req.max_completion_tokens or req.max_tokens,
        temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, min_p=req.min_p,
        stop=[s for s in stop or [] if s] or None, seed=req.seed,
        repetition_penalty=req.repetition_penalty, repetition_context_size=req.repetition_context_size,
        frequency_penalty=req.frequency_penalty, presence_penalty=req.presence_penalty,
        stream=req.stream, tools=tools, logprobs=bool(req.logprobs), top_logprobs=req.top_logprobs,
        enable_thinking=req.enable_thinking, reasoning_effort=req.reasoning_effort)
