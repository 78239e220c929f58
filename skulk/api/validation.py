"""Request checks shared by every inference flavour, and the error bodies each one's clients read.

Schema problems name the offending field in `param` (OpenAI chat: 422; Responses and Anthropic
Messages: 400, as those APIs answer). Checks that need the cluster (unknown model: 404; a token
budget the instance cannot hold: 400 `context_length_exceeded`) run before the task is sent.
"""

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk.api.limits import FieldNames, api_settings, check_limits
from skulk.errors import BadRequest, SkulkError
from skulk.master.serving import instances_for_model
from skulk.types.chunks import ErrorChunk
from skulk.types.state import State
from skulk.types.tasks import TextGenerationTaskParams

M = TypeVar("M", bound=BaseModel)
_TYPE_WORDS = {"str", "int", "float", "bool", "list", "dict", "none", "null"}


class RequestInvalid(BadRequest):
    """A body that does not fit the endpoint's schema; `status` is per endpoint."""

    def __init__(self, message: str, *, param: str | None, status: int):
        super().__init__(message, param=param)
        self.status = status


def field_path(loc: tuple[Any, ...]) -> str | None:
    """pydantic's error location as a client would write it: `messages[0].content`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier() and part not in _TYPE_WORDS and not part[0].isupper():
            out += f".{part}" if out else part
    return out or None


def schema_error(exc: ValidationError, status: int) -> SkulkError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return BadRequest(f"Invalid JSON body: {first.get('msg', '')}")
    param = field_path(tuple(first.get("loc", ())))
    msg = first.get("msg", "invalid value")
    return RequestInvalid(f"{param}: {msg}" if param else msg, param=param, status=status)


async def read_request(request: Request, model: type[M], *, schema_status: int = 422) -> M:
    body = await request.body()
    if not body.strip():
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise schema_error(exc, schema_status) from None


def parse_json_body(raw: bytes) -> Any:
    """json.loads for a request body: any failure (bad bytes, too deep, too long a number) is a 400."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"Invalid JSON body: {str(exc)[:200]}") from None


def check_request(port: Any, params: TextGenerationTaskParams, names: FieldNames = FieldNames()) -> None:
    """The size bounds of skulk.api.limits, with this node's `api` settings."""
    check_limits(params, api_settings(port), names)


def check_servable(state: State, params: TextGenerationTaskParams) -> None:
    """400 for empty messages or a budget that alone cannot fit any instance of the model."""
    if not params.input:
        raise BadRequest("messages must not be empty", param="messages")
    if not any(m.content.strip() or m.tool_calls for m in params.input):
        raise BadRequest("At least one message must have non-empty content", param="messages")
    ids = instances_for_model(state, params.model)
    if not ids:
        return  # the generation answers it: wakes a cold paused deployment, else 404 (503 right after a master change)
    limits = [state.instances[i].context_token_limit for i in ids]
    limit = max((x for x in limits if x), default=None)
    if limit is not None and params.max_output_tokens is not None and params.max_output_tokens >= limit:
        raise BadRequest(f"context_length_exceeded: max_tokens ({params.max_output_tokens}) must be below the "
                         f"model's context length ({limit} tokens)", code="context_length_exceeded",
                         param="max_tokens")


def chunk_error(error: ErrorChunk) -> dict[str, Any]:
    """The OpenAI error envelope for a request that failed after it was sent."""
    client_side = 400 <= error.status_code < 500
    return {"error": {"message": error.error_message,
                      "type": "invalid_request_error" if client_side else error.error_type,
                      "param": "messages" if error.error_type == "context_length_exceeded" else None,
                      "code": error.error_type, "retryable": error.retryable}}


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error", 529: "overloaded_error"}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def with_anthropic_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Anthropic's clients read `{"type": "error", "error": {"type", "message"}}`, not OpenAI's envelope."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SkulkError as exc:
            return JSONResponse(anthropic_error(exc.status, exc.message), status_code=exc.status,
                                headers=getattr(exc, "headers", None))  # a 429's Retry-After and X-RateLimit-*

    return wrapped
