"""The Ollama API under /ollama: chat and generate (NDJSON streams), embed, tags, show, ps, version.

Ollama clients expect `{"error": "message"}` bodies rather than the OpenAI envelope, so these
handlers turn Skulk errors into that shape themselves.
"""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from skulk.api.failover import FailoverGeneration
from skulk.api.generation import KEEPALIVE_S, Generation, GenerationFailed
from skulk.api.limits import FieldNames
from skulk.api.ollama_models import (
    OllamaChatRequest, OllamaEmbedRequest, OllamaGenerateRequest, chat_params, generate_params, now_rfc3339,
    ps_entry, show_body, tag_entry,
)
from skulk.api.port import ClusterPort
from skulk.api.routes_embeddings import card_for, compute_embeddings, input_texts
from skulk.api.routing import RouteSpec
from skulk.api.validation import check_request, parse_json_body
from skulk.api.routes_routes import resolve_request
from skulk.api.model_routes import route_views, routes_of
from skulk.errors import BadRequest, NotFound, SkulkError
from skulk.master.serving import instances_for_model
from skulk.types.downloads import DownloadCompleted

# The Ollama API version we mirror; clients gate features on it, so it is Ollama's, not Skulk's.
OLLAMA_VERSION = "0.6.0"
NDJSON_HEADERS = {"Cache-Control": "no-cache", "Connection": "close", "X-Accel-Buffering": "no"}
DONE_REASONS = {"stop": "stop", "length": "length"}


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def ollama_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SkulkError as exc:
            response = _error(exc.status, exc.message)
            response.headers.update(getattr(exc, "headers", None) or {})  # a 429's Retry-After and X-RateLimit-*
            return response
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _error(400, f"{where}: {first.get('msg', 'invalid')}" if where else str(exc))
    return wrapped


async def _json_object(request: Request) -> dict[str, Any]:
    """Ollama clients may send any Content-Type (or none): always parse the body as JSON."""
    raw = await request.body()
    data = parse_json_body(raw or b"{}")
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


async def _read(request: Request, model: type[BaseModel]) -> Any:
    return model.model_validate(await _json_object(request))


def _require_instance(port: ClusterPort, model_id: str) -> None:
    if not instances_for_model(port.state, model_id):
        raise NotFound(f"model '{model_id}' not found: no instance is running it")


def _require_generator(port: ClusterPort, model_id: str) -> None:
    card = card_for(port, model_id)
    if card is not None and "TextGeneration" not in card.tasks:
        raise BadRequest(f"model '{model_id}' does not generate text (it is an embedding model)")


# ----- chat and generate -----

@dataclass
class _Clock:
    """When the request started and its first token arrived: Ollama reports prompt and eval time."""

    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None

    def saw_token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()


def _ns(seconds: float) -> int:
    return max(1, int(seconds * 1e9))


def _stats(gen: Generation, clock: _Clock) -> dict[str, Any]:
    """Ollama's final-line counters; durations are in nanoseconds, from the runner's rates when it
    reports them, else as seen from here (prompt = time to first token)."""
    now, first = time.monotonic(), clock.first_token or time.monotonic()
    prompt = gen.usage.prompt_tokens if gen.usage else 0
    completion = gen.usage.completion_tokens if gen.usage else 0
    prompt_tps = getattr(gen.stats, "prompt_tps", 0.0) or 0.0
    eval_tps = getattr(gen.stats, "generation_tps", 0.0) or 0.0
    return {"done_reason": DONE_REASONS.get(gen.finish_reason or "stop", gen.finish_reason),
            "total_duration": _ns(now - clock.started), "load_duration": 0,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": _ns(prompt / prompt_tps if prompt_tps else first - clock.started),
            "eval_count": completion, "eval_duration": _ns(completion / eval_tps if eval_tps else now - first)}


def _piece(kind: str, model: str, text: str, done: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "created_at": now_rfc3339()}
    if kind == "chat":
        body["message"] = {"role": "assistant", "content": text}
    else:
        body["response"] = text
    body["done"] = done
    return body


async def _texts(gen: Generation, clock: _Clock, keepalive: float = KEEPALIVE_S) -> AsyncIterator[str]:
    async for chunk in gen.events(keepalive):
        if chunk is not None and chunk.text:
            clock.saw_token()
            yield chunk.text


async def _ndjson(gen: Generation, kind: str, model: str, clock: _Clock) -> AsyncIterator[str]:
    try:
        async for text in _texts(gen, clock):
            yield json.dumps(_piece(kind, model, text, False)) + "\n"
        yield json.dumps({**_piece(kind, model, "", True), **_stats(gen, clock)}) + "\n"
    except GenerationFailed as exc:
        yield json.dumps({"error": exc.error.error_message}) + "\n"
    finally:
        await gen.close()


async def _respond(gen: Generation, kind: str, model: str, stream: bool) -> Response:
    clock = _Clock()
    await gen.start()
    if stream:
        return StreamingResponse(_ndjson(gen, kind, model, clock), media_type="application/x-ndjson",
                                 headers=NDJSON_HEADERS)
    try:
        text = "".join([t async for t in _texts(gen, clock, keepalive=3600.0)])
    except GenerationFailed as exc:
        return _error(exc.error.status_code, exc.error.error_message)
    finally:
        await gen.close()
    return JSONResponse({**_piece(kind, model, text, True), **_stats(gen, clock)})


def _names(prompt_field: str) -> FieldNames:
    return FieldNames(messages=prompt_field, stop="options.stop", max_tokens="options.num_predict",
                      options="options.")


def _loaded(kind: str, model: str) -> JSONResponse:
    """Ollama answers an empty request by loading the model; ours is loaded once it is placed."""
    return JSONResponse({**_piece(kind, model, "", True), "done_reason": "load"})


@ollama_errors
async def chat(request: Request) -> Response:
    req = resolve_request(_port(request), await _read(request, OllamaChatRequest))
    if not req.messages:
        _require_instance(_port(request), req.model)
        return _loaded("chat", req.model)
    _require_generator(_port(request), req.model)
    params = chat_params(req)
    check_request(_port(request), params, _names("messages"))
    gen = FailoverGeneration(_port(request), params)
    return await _respond(gen, "chat", req.model, req.stream)


@ollama_errors
async def generate(request: Request) -> Response:
    req = resolve_request(_port(request), await _read(request, OllamaGenerateRequest))
    if not req.prompt:
        _require_instance(_port(request), req.model)
        return _loaded("generate", req.model)
    _require_generator(_port(request), req.model)
    params = generate_params(req)
    check_request(_port(request), params, _names("prompt"))
    gen = FailoverGeneration(_port(request), params)
    return await _respond(gen, "generate", req.model, req.stream)


# ----- embeddings -----

@ollama_errors
async def embed(request: Request) -> Response:
    req = resolve_request(_port(request), await _read(request, OllamaEmbedRequest))
    if req.dimensions is not None:
        raise BadRequest("'dimensions' is not supported: this model has a fixed size")
    started = time.monotonic()
    chunk = await compute_embeddings(_port(request), req.model, input_texts(req.input))
    return JSONResponse({"model": req.model, "embeddings": chunk.embeddings,
                         "total_duration": int((time.monotonic() - started) * 1e9), "load_duration": 0,
                         "prompt_eval_count": chunk.token_count})


@ollama_errors
async def embeddings_legacy(request: Request) -> Response:
    req = resolve_request(_port(request), await _read(request, OllamaEmbedRequest))
    chunk = await compute_embeddings(_port(request), req.model, input_texts(req.prompt or "", "prompt"))
    return JSONResponse({"embedding": chunk.embeddings[0]})


# ----- models -----

def _listed_models(port: ClusterPort) -> list[str]:
    """Models with an instance or a completed download anywhere in the cluster."""
    running = {inst.shard_assignments.model_id for inst in port.state.instances.values()}
    downloaded = {d.model_id for ds in port.state.downloads.values() for d in ds if isinstance(d, DownloadCompleted)}
    return sorted(running | downloaded)


async def tags(request: Request) -> JSONResponse:
    port = _port(request)
    models = [tag_entry(m, card_for(port, m)) for m in _listed_models(port)]
    # Configured routes that can serve now, under their own name, described by the model they go to
    # (capability routes stay out: a client's model picker would list every capability twice).
    routes = [tag_entry(v.name, card_for(port, v.served_by)) for v in route_views(port.state, routes_of(port))
              if v.kind == "route" and v.served_by is not None]
    return JSONResponse({"models": models + routes})


async def ps(request: Request) -> JSONResponse:
    port = _port(request)
    running = sorted({inst.shard_assignments.model_id for inst in port.state.instances.values()})
    return JSONResponse({"models": [ps_entry(m, card_for(port, m)) for m in running]})


@ollama_errors
async def show(request: Request) -> Response:
    body = await _json_object(request)
    name = body.get("model") or body.get("name")
    if not name or not isinstance(name, str):
        raise BadRequest("model is required")
    card = card_for(_port(request), name)
    if card is None:
        raise NotFound(f"model '{name}' not found")
    return JSONResponse(show_body(card))


async def version(request: Request) -> JSONResponse:
    return JSONResponse({"version": OLLAMA_VERSION})


async def root(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Ollama is running")


def _aliases(method: str, name: str, handler: Any, summary: str, codes: tuple[int, ...]) -> list[RouteSpec]:
    """The documented path plus the doubled prefixes some clients build (/api/api/x, /api/v1/x)."""
    main = RouteSpec(method, f"/ollama/api/{name}", handler, summary, "ollama", status_codes=codes)
    extra = [RouteSpec(method, f"/ollama/api/{p}/{name}", handler, summary, "ollama", status_codes=codes,
                       include_in_schema=False) for p in ("api", "v1")]
    return [main, *extra]


# GET routes answer HEAD too (starlette adds it), which Ollama's liveness checks use.
ROUTES = [
    RouteSpec("GET", "/ollama/", root, "Ollama liveness", "ollama"),
    RouteSpec("GET", "/ollama/api/version", version, "Ollama API version", "ollama"),
    *_aliases("POST", "chat", chat, "Ollama chat (NDJSON stream unless stream=false)", (200, 400, 404)),
    *_aliases("POST", "generate", generate, "Ollama generate (NDJSON stream unless stream=false)", (200, 400, 404)),
    *_aliases("GET", "tags", tags, "Models with an instance or a completed download", (200,)),
    RouteSpec("POST", "/ollama/api/show", show, "One model's description", "ollama", status_codes=(200, 400, 404)),
    RouteSpec("GET", "/ollama/api/ps", ps, "Running models", "ollama"),
    RouteSpec("POST", "/ollama/api/embed", embed, "Ollama embeddings (batch)", "ollama",
              status_codes=(200, 400, 404)),
    RouteSpec("POST", "/ollama/api/embeddings", embeddings_legacy, "Ollama embeddings (one prompt, legacy)",
              "ollama", status_codes=(200, 400, 404)),
]
