"""Routes declared as data, so the app and its OpenAPI document come from one list."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    status_codes: tuple[int, ...] = (200,)
    extra_methods: tuple[str, ...] = field(default_factory=tuple)
    include_in_schema: bool = True
    responses: dict[int, str] = field(default_factory=dict)


async def read_json_model(request: Request, model: type[BaseModel]) -> Any:
    """Parse a request body into a model; errors become 400/422 with the offending field."""
    from skulk.errors import BadRequest
    body = await request.body()
    if not body.strip():
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        return model.model_validate_json(body)
    except ValueError as exc:
        if hasattr(exc, "errors"):
            raise
        raise BadRequest(f"Invalid JSON body: {exc}") from exc
