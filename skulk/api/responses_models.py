"""OpenAI Responses request shape, its translation to task params, and the response objects.

Input is a string or items: messages (string or input_text/output_text parts), function_call
and function_call_output items (earlier tool rounds), reasoning items (skipped). Responses are
not stored, so previous_response_id is refused; only function tools are offered to the model.
"""

from typing import Any, Literal

from pydantic import Field

from skulk.api.chat_models import OpenModel, call_arguments, part_text
from skulk.api.tool_calls import ToolCall, function_tool, template_tool_call
from skulk.errors import BadRequest
from skulk.types.chunks import Usage
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

_TEXT_PARTS = ("input_text", "output_text", "text")


class InputPart(OpenModel):
    type: str
    text: str | None = None


class InputItem(OpenModel):
    type: str = "message"
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[InputPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[InputPart] | None = None


class ResponsesTool(OpenModel):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Reasoning(OpenModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: str | None = None


class ResponsesRequest(OpenModel):
    model: str
    input: str | list[InputItem]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    seed: int | None = None
    stream: bool = False
    tools: list[ResponsesTool] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    reasoning: Reasoning | None = None
    previous_response_id: str | None = None
    user: str | None = None

    @property
    def uses_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


def _require(value: Any, param: str) -> Any:
    if value is None:
        raise BadRequest(f"{param} is required for this item type", param=param)
    return value


def _add_item(messages: list[ChatMessage], i: int, item: InputItem) -> None:
    p = f"input[{i}]"
    if item.type == "message":
        role = _require(item.role, f"{p}.role")
        messages.append(ChatMessage(role=role, content=part_text(item.content, f"{p}.content", _TEXT_PARTS)))
    elif item.type == "function_call":
        call = template_tool_call(_require(item.call_id, f"{p}.call_id"), _require(item.name, f"{p}.name"),
                                  call_arguments(item.arguments or "{}", f"{p}.arguments"))
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant":  # parallel calls share one assistant turn
            messages[-1] = last.model_copy(update={"tool_calls": [*(last.tool_calls or []), call]})
        else:
            messages.append(ChatMessage(role="assistant", content="", tool_calls=[call]))
    elif item.type == "function_call_output":
        output = part_text(_require(item.output, f"{p}.output"), f"{p}.output", _TEXT_PARTS)
        messages.append(ChatMessage(role="tool", content=output, tool_call_id=_require(item.call_id, f"{p}.call_id")))
    elif item.type != "reasoning":  # our own reasoning, handed back: the template has no place for it
        raise BadRequest(f"input item type {item.type!r} is not supported", param=f"{p}.type")


def _tools(req: ResponsesRequest) -> list[dict[str, Any]] | None:
    if not req.uses_tools:
        return None
    tools = []
    for i, t in enumerate(req.tools or []):
        if t.type != "function" or not t.name:
            raise BadRequest(f"tool type {t.type!r} is not supported (function tools only)", param=f"tools[{i}].type")
        tools.append(function_tool(t.name, t.description, t.parameters))
    return tools


def to_task_params(req: ResponsesRequest) -> TextGenerationTaskParams:
    if req.previous_response_id:
        raise BadRequest("previous_response_id is not supported: responses are not stored; send the whole input",
                         param="previous_response_id")
    messages = [ChatMessage(role="system", content=req.instructions)] if req.instructions else []
    items = [InputItem(role="user", content=req.input)] if isinstance(req.input, str) else req.input
    for i, item in enumerate(items):
        _add_item(messages, i, item)
    effort = req.reasoning.effort if req.reasoning else None
    return TextGenerationTaskParams(
        model=req.model, input=messages, max_output_tokens=req.max_output_tokens, temperature=req.temperature,
        top_p=req.top_p, top_k=req.top_k, seed=req.seed, stream=req.stream, tools=_tools(req),
        reasoning_effort=effort, enable_thinking=None if effort is None else effort != "none")


def usage_body(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


def response_object(req: ResponsesRequest, resp_id: str, created: int, *, status: str,
                    output: list[dict[str, Any]], usage: Usage | None, incomplete: bool = False) -> dict[str, Any]:
    return {
        "id": resp_id, "object": "response", "created_at": created, "status": status, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": req.instructions, "max_output_tokens": req.max_output_tokens, "model": req.model,
        "output": output, "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": None, "reasoning": {"effort": req.reasoning.effort if req.reasoning else None,
                                                    "summary": None},
        "store": False, "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": {"format": {"type": "text"}}, "tool_choice": req.tool_choice or "auto",
        "tools": [t.model_dump(exclude_none=True) for t in req.tools or []],
        "top_p": 1.0 if req.top_p is None else req.top_p, "truncation": "disabled",
        "usage": usage_body(usage) if usage is not None else None, "user": req.user, "metadata": req.metadata or {},
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str | None) -> dict[str, Any]:
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": summary}


def call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call.id, "name": call.name,
            "arguments": call.arguments if status == "completed" else ""}
