"""One place that turns errors into responses with the envelope clients expect."""

import logging
from http import HTTPStatus

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.errors import SkulkError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, *, param: str | None = None,
                   code: str | int | None = None) -> JSONResponse:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body = {"error": {"message": message, "type": reason, "param": param,
                      "code": code if code is not None else status}}
    return JSONResponse(body, status_code=status)


async def skulk_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SkulkError)
    response = error_response(exc.status, exc.message, param=exc.param, code=exc.code)
    response.headers.update(getattr(exc, "headers", None) or {})  # a 429's Retry-After and X-RateLimit-*
    return response


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    return error_response(422, f"{param}: {first.get('msg', 'invalid')}" if param else str(exc), param=param)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, f"Internal error: {type(exc).__name__}")


EXCEPTION_HANDLERS = {
    SkulkError: skulk_error,
    HTTPException: http_error,
    ValidationError: validation_error,
    Exception: unexpected_error,
}
