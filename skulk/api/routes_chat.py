"""OpenAI chat completions (streamed as SSE or whole), cancel, and the bench variant.

Stream: `: keep-alive`, `: command_id <id>`, `data:` chunks (content / reasoning_content deltas,
tool calls whole in one delta with finish_reason `tool_calls`), a usage chunk when
stream_options.include_usage, `: generation_stats {json}`, `data: [DONE]`. A failure after the
stream started is `data: {"error": ...}` then `[DONE]`. Logprobs are accepted and answered null.
"""

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk.api.chat_models import ChatCompletionRequest, to_task_params
from skulk.api.failover import FailoverGeneration
from skulk.api.generation import GenerationFailed
from skulk.api.output import Finish, ParsedOutput, collect_unless_disconnected
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec
from skulk.api.sse import DONE, comment, data, sse_response, stats_comment, stats_dict
from skulk.api.tool_calls import Piece, ToolCall
from skulk.api.limits import FieldNames
from skulk.api.validation import check_request, check_servable, chunk_error, read_request
from skulk.api.routes_routes import resolve_request
from skulk.errors import NotFound
from skulk.types.chunks import Usage


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def usage_body(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def openai_tool_call(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": call.id, "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments}}
    return body if index is None else {"index": index, **body}


def completion_body(out: ParsedOutput, model: str, finish: Finish) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": out.text or (None if finish.tool_calls else "")}
    if out.reasoning:
        message["reasoning_content"] = out.reasoning
    if finish.tool_calls:
        message["tool_calls"] = [openai_tool_call(c) for c in finish.tool_calls]
    return {"id": out.gen.command_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish.reason}],
            "usage": usage_body(finish.usage)}


def _delta(event: Piece | Finish) -> tuple[dict[str, Any], str | None]:
    if isinstance(event, Piece):
        return {"content" if event.kind == "text" else "reasoning_content": event.text}, None
    calls = [openai_tool_call(c, i) for i, c in enumerate(event.tool_calls)]
    return ({"tool_calls": calls} if calls else {}), event.reason


async def _sse(out: ParsedOutput, req: ChatCompletionRequest) -> AsyncIterator[str]:
    gen, created = out.gen, int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        return data({"id": gen.command_id, "object": "chat.completion.chunk", "created": created,
                     "model": req.model,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    yield comment("keep-alive")
    yield comment(f"command_id {gen.command_id}")
    role_sent = False
    try:
        async for event in out.events():
            if event is None:
                yield comment("keep-alive")
                continue
            delta, finish = _delta(event)
            if not role_sent:
                delta, role_sent = {"role": "assistant", **delta}, True
            yield chunk(delta, finish)
        if req.stream_options and req.stream_options.include_usage and out.finish is not None:
            yield data({"id": gen.command_id, "object": "chat.completion.chunk", "created": created,
                        "model": req.model, "choices": [], "usage": usage_body(out.finish.usage)})
        yield stats_comment(gen)
    except GenerationFailed as exc:
        yield data(chunk_error(exc.error))
    yield DONE


async def _start(request: Request, *, bench: bool = False) -> tuple[ChatCompletionRequest, ParsedOutput]:
    req = resolve_request(_port(request), await read_request(request, ChatCompletionRequest))
    if bench:
        req = req.model_copy(update={"stream": False})
    params = to_task_params(req)
    port = _port(request)
    check_request(port, params, FieldNames(max_tokens="max_completion_tokens" if req.max_completion_tokens
                                           else "max_tokens"))
    check_servable(port.state, params)
    gen = await FailoverGeneration(port, params).start()
    return req, ParsedOutput(gen, parse_tools=req.uses_tools)


async def _whole(request: Request, req: ChatCompletionRequest, out: ParsedOutput, *, bench: bool) -> Response:
    try:
        finish = await collect_unless_disconnected(request, out)
    except GenerationFailed as exc:
        return JSONResponse(chunk_error(exc.error), status_code=exc.error.status_code)
    finally:
        await out.gen.close()
    if finish is None:
        return Response(status_code=499)  # nobody is listening any more
    body = completion_body(out, req.model, finish)
    if bench:
        body["generation_stats"] = stats_dict(out.gen)
    return JSONResponse(body)


async def chat_completions(request: Request) -> Response:
    req, out = await _start(request)
    if req.stream:
        return sse_response(_sse(out, req), out.gen)
    return await _whole(request, req, out, bench=False)


async def bench_chat_completions(request: Request) -> Response:
    req, out = await _start(request, bench=True)
    return await _whole(request, req, out, bench=True)


async def cancel_command(request: Request) -> Response:
    port = _port(request)
    command_id = request.path_params["command_id"]
    if not port.cancel_stream(command_id):
        raise NotFound("Command not found or already completed")
    return JSONResponse({"message": "Command cancelled.", "command_id": command_id})


ROUTES = [
    RouteSpec("POST", "/v1/chat/completions", chat_completions, "OpenAI chat completions (SSE when stream)",
              "inference", request_model=ChatCompletionRequest, status_codes=(200, 400, 404, 422)),
    RouteSpec("POST", "/bench/chat/completions", bench_chat_completions, "Chat completion with generation stats",
              "inference", request_model=ChatCompletionRequest, status_codes=(200, 400, 404, 422)),
    RouteSpec("POST", "/v1/cancel/{command_id}", cancel_command, "Cancel a request owned by this node",
              "inference", status_codes=(200, 404)),
]
