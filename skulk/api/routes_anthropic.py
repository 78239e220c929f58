"""Anthropic Messages API: POST /v1/messages, whole or as Anthropic's SSE events.

Stream: message_start, then per content block content_block_start / content_block_delta
(text_delta, thinking_delta, input_json_delta) / content_block_stop, then message_delta
(stop_reason end_turn | max_tokens | stop_sequence | tool_use, usage) and message_stop; `event:
ping` while the model is silent; `event: error` on a failure. Errors use Anthropic's shape.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk.api.anthropic_models import MessagesRequest, to_task_params
from skulk.api.failover import FailoverGeneration
from skulk.api.generation import GenerationFailed
from skulk.api.output import Finish, ParsedOutput, collect_unless_disconnected
from skulk.api.routing import RouteSpec
from skulk.api.sse import comment, event, sse_response
from skulk.api.tool_calls import Piece, ToolCall
from skulk.api.limits import FieldNames
from skulk.api.validation import anthropic_error, check_request, check_servable, read_request, with_anthropic_errors
from skulk.api.routes_routes import resolve_request


def _tool_id(call: ToolCall) -> str:
    return "toolu_" + call.id.removeprefix("call_")


def stop_reason(finish: Finish) -> str:
    if finish.tool_calls:
        return "tool_use"
    if finish.reason == "length":
        return "max_tokens"
    return "stop_sequence" if finish.stop_sequence else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def message_body(msg_id: str, model: str, out: ParsedOutput, finish: Finish) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if out.reasoning:
        content.append({"type": "thinking", "thinking": out.reasoning, "signature": ""})
    if out.text or not finish.tool_calls:
        content.append({"type": "text", "text": out.text})
    content += [{"type": "tool_use", "id": _tool_id(c), "name": c.name, "input": c.input} for c in finish.tool_calls]
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(finish), "stop_sequence": finish.stop_sequence,
            "usage": _usage(finish.usage.prompt_tokens, finish.usage.completion_tokens)}


@dataclass
class _Blocks:
    """Content blocks numbered in order; one text or thinking block is open at a time."""

    index: int = 0
    open_kind: str | None = None

    def piece(self, p: Piece) -> list[str]:
        kind = "text" if p.kind == "text" else "thinking"
        out = []
        if self.open_kind != kind:
            out = self.close()
            start = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
            out.append(event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                     "content_block": start}))
            self.open_kind = kind
        delta = {"type": "text_delta", "text": p.text} if kind == "text" else {"type": "thinking_delta", "thinking": p.text}
        return out + [event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})]

    def close(self) -> list[str]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        self.index += 1
        return [event("content_block_stop", {"type": "content_block_stop", "index": self.index - 1})]

    def tool_use(self, call: ToolCall) -> list[str]:
        block = {"type": "tool_use", "id": _tool_id(call), "name": call.name, "input": {}}
        i, self.index = self.index, self.index + 1
        return [event("content_block_start", {"type": "content_block_start", "index": i, "content_block": block}),
                event("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta", "partial_json": call.arguments}}),
                event("content_block_stop", {"type": "content_block_stop", "index": i})]


def _message_start(msg_id: str, model: str, input_tokens: int) -> str:
    message = {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": _usage(input_tokens, 0)}
    return event("message_start", {"type": "message_start", "message": message})


def _end(blocks: _Blocks, finish: Finish) -> list[str]:
    lines = blocks.close()
    for call in finish.tool_calls:
        lines += blocks.tool_use(call)
    delta = {"stop_reason": stop_reason(finish), "stop_sequence": finish.stop_sequence}
    usage = _usage(finish.usage.prompt_tokens, finish.usage.completion_tokens)
    return lines + [event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
                    event("message_stop", {"type": "message_stop"})]


async def _sse(out: ParsedOutput, msg_id: str, model: str) -> AsyncIterator[str]:
    yield comment(f"command_id {out.gen.command_id}")
    blocks, started = _Blocks(), False
    try:
        async for ev in out.events():
            if not started:  # after the first token, so input_tokens is known
                yield _message_start(msg_id, model, out.prompt_tokens)
                started = True
            if ev is None:
                yield event("ping", {"type": "ping"})
                continue
            for line in (blocks.piece(ev) if isinstance(ev, Piece) else _end(blocks, ev)):
                yield line
    except GenerationFailed as exc:
        yield event("error", anthropic_error(exc.error.status_code, exc.error.error_message))


@with_anthropic_errors
async def create_message(request: Request) -> Response:
    req = resolve_request(request.app.state.cluster, await read_request(request, MessagesRequest, schema_status=400))
    params = to_task_params(req)
    port = request.app.state.cluster
    check_request(port, params, FieldNames(stop="stop_sequences"))
    check_servable(port.state, params)
    gen = await FailoverGeneration(port, params).start()
    out = ParsedOutput(gen, parse_tools=req.uses_tools)
    msg_id = "msg_" + gen.command_id.replace("-", "")
    if req.stream:
        return sse_response(_sse(out, msg_id, req.model), gen)
    try:
        finish = await collect_unless_disconnected(request, out)
    except GenerationFailed as exc:
        return JSONResponse(anthropic_error(exc.error.status_code, exc.error.error_message),
                            status_code=exc.error.status_code)
    finally:
        await gen.close()
    if finish is None:
        return Response(status_code=499)
    return JSONResponse(message_body(msg_id, req.model, out, finish))


ROUTES = [
    RouteSpec("POST", "/v1/messages", create_message, "Anthropic Messages API (SSE events when stream)",
              "inference", request_model=MessagesRequest, status_codes=(200, 400, 404)),
]
