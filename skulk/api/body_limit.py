"""An ASGI middleware that refuses request bodies over `api.max_body_bytes` before they are buffered.

A declared Content-Length over the limit is answered 413 at once, without reading a byte. A body
of unknown length (chunked) is counted as it arrives: the first chunk that passes the limit ends
the request with PayloadTooLarge, so no reader ever holds more than the limit.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import JSONResponse

from skulk.api.errors import error_response
from skulk.api.validation import anthropic_error
from skulk.errors import SkulkError
from skulk.faults import count

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PayloadTooLarge(SkulkError):
    status = 413
    code = "request_too_large"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body exceeds the {limit}-byte limit (api.max_body_bytes)")


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; -1 when it is present but not a number."""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else -1
    return None


def refusal(path: str, status: int, message: str, code: str | None) -> JSONResponse:
    """The error in the shape the route's clients read (routes answer later refusals themselves)."""
    if path.startswith("/ollama/"):
        return JSONResponse({"error": message}, status_code=status)
    if path == "/v1/messages":
        return JSONResponse(anthropic_error(status, message), status_code=status)
    return error_response(status, message, code=code, param="Content-Length" if status == 400 else None)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: Callable[[], int]):
        self.app = app
        self.limit = limit  # read per request, so a changed setting applies to the next one

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        length = declared_length(scope)
        if length is not None and (length < 0 or length > limit):
            path = scope.get("path", "")
            if length < 0:
                count("api.bad_content_length", path)
                response = refusal(path, 400, "Content-Length is not a number", None)
            else:
                count("api.body_too_large", path)
                response = refusal(path, 413, too_large(limit).message, PayloadTooLarge.code)
            response.headers["Connection"] = "close"  # the unread body makes the connection unusable
            await response(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit, scope.get("path", "")), send)


def _counting(receive: Receive, limit: int, path: str) -> Receive:
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                count("api.body_too_large", path)
                raise too_large(limit)  # the route's error handling answers 413 in its API's shape
        return message

    return limited
