"""OpenAI chat-completions request shape and its translation to the internal task params."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skulk.errors import BadRequest
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatCompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatCompletionMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = Field(default=None, gt=0)
    repetition_context_size: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    enable_thinking: bool | None = None
    reasoning_effort: str | None = None
    user: str | None = None


def _text_of(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text or "" for p in content if p.type in ("text", "input_text"))


def to_task_params(req: ChatCompletionRequest) -> TextGenerationTaskParams:
    if not req.messages:
        raise BadRequest("messages must not be empty", param="messages")
    messages = [
        ChatMessage(role="tool" if m.role == "function" else m.role, content=_text_of(m.content))
        for m in req.messages
    ]
    stop = [req.stop] if isinstance(req.stop, str) else req.stop
    return TextGenerationTaskParams(
        model=req.model, input=messages, max_output_tokens=req.max_completion_tokens or req.max_tokens,
        temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, min_p=req.min_p, stop=stop,
        seed=req.seed, repetition_penalty=req.repetition_penalty,
        repetition_context_size=req.repetition_context_size, stream=req.stream, tools=req.tools,
        logprobs=req.logprobs, top_logprobs=req.top_logprobs, enable_thinking=req.enable_thinking,
        reasoning_effort=req.reasoning_effort)
