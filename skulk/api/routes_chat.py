"""OpenAI chat completions (streamed as SSE or whole), cancel, and the bench variant."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from skulk.api.chat_models import ChatCompletionRequest, to_task_params
from skulk.api.generation import Generation, GenerationFailed
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import NotFound

SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "close", "X-Accel-Buffering": "no"}


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _usage(gen: Generation) -> dict[str, int] | None:
    if gen.usage is None:
        return None
    return {"prompt_tokens": gen.usage.prompt_tokens, "completion_tokens": gen.usage.completion_tokens,
            "total_tokens": gen.usage.total_tokens}


def _error_body(exc: GenerationFailed) -> dict[str, Any]:
    e = exc.error
    return {"error": {"message": e.error_message, "type": e.error_type, "param": None, "code": e.status_code,
                      "retryable": e.retryable}}


def completion_body(gen: Generation, model: str, created: int) -> dict[str, Any]:
    return {
        "id": gen.command_id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(gen.text)},
                     "logprobs": None, "finish_reason": gen.finish_reason}],
        "usage": _usage(gen),
    }


def _chunk(gen: Generation, model: str, created: int, delta: dict, finish: str | None, usage=None) -> str:
    body = {"id": gen.command_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage is not None:
        body["usage"], body["choices"] = usage, []
    return f"data: {json.dumps(body)}\n\n"


async def _sse(gen: Generation, req: ChatCompletionRequest) -> AsyncIterator[str]:
    created = int(time.time())
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    try:
        yield ": keep-alive\n\n"
        yield f": command_id {gen.command_id}\n\n"
        first = True
        async for chunk in gen.events():
            if chunk is None:
                yield ": keep-alive\n\n"
                continue
            delta = {"role": "assistant", "content": chunk.text} if first else {"content": chunk.text}
            first = False
            if chunk.text or chunk.finish_reason is None:
                yield _chunk(gen, req.model, created, delta, None)
            if chunk.finish_reason is not None:
                yield _chunk(gen, req.model, created, {}, chunk.finish_reason)
        if include_usage:
            yield _chunk(gen, req.model, created, {}, None, usage=_usage(gen))
        if gen.stats is not None:
            yield f": generation_stats {json.dumps(gen.stats.model_dump())}\n\n"
    except GenerationFailed as exc:
        yield f"data: {json.dumps(_error_body(exc))}\n\n"
    finally:
        await gen.close()
    yield "data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    req = await read_json_model(request, ChatCompletionRequest)
    gen = await Generation(_port(request), to_task_params(req)).start()
    if req.stream:
        return StreamingResponse(_sse(gen, req), media_type="text/event-stream", headers=SSE_HEADERS)
    try:
        await gen.collect()
    except GenerationFailed as exc:
        body = _error_body(exc)
        return JSONResponse(body, status_code=exc.error.status_code)
    finally:
        await gen.close()
    return JSONResponse(completion_body(gen, req.model, int(time.time())))


async def bench_chat_completions(request: Request) -> Response:
    req = await read_json_model(request, ChatCompletionRequest)
    req = req.model_copy(update={"stream": False})
    gen = await Generation(_port(request), to_task_params(req)).start()
    try:
        await gen.collect()
    except GenerationFailed as exc:
        return JSONResponse(_error_body(exc), status_code=exc.error.status_code)
    finally:
        await gen.close()
    body = completion_body(gen, req.model, int(time.time()))
    body["generation_stats"] = gen.stats.model_dump() if gen.stats is not None else None
    return JSONResponse(body)


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
