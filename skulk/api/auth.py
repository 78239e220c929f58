"""The access middleware: Host check (DNS rebinding), JSON-only state changes, then API keys.

Each request gets `scope["state"]["principal"]`: the caller's Principal, or None when the node
is open (no key exists in the cluster and the API binds loopback only). Refusals use the error
envelope of the API being called (OpenAI, Anthropic or Ollama).
"""

import contextvars
import ipaddress
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request

from skulk.api.access_policy import is_inference_path, level_for
from skulk.api.body_limit import ASGIApp, Message, Receive, Scope, Send, refusal
from skulk.state.api_keys import KeyUsage, KeyVerifier
from skulk.errors import SkulkError
from skulk.faults import count
from skulk.types.access import Principal

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_caller_auth: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("skulk_caller_auth", default={})


class Unauthorized(SkulkError):
    status = 401
    code = "invalid_api_key"


class Forbidden(SkulkError):
    status = 403
    code = "permission_denied"


def is_loopback_bind(host: str) -> bool:
    """True when an API bound to `host` is reachable from this machine only."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_name(host_header: str) -> bool:
    """A Host header naming this machine: localhost, 127.x.x.x or [::1], with or without a port."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".") in ("localhost",) or host.endswith(".localhost") or is_loopback_bind(host)


def principal_of(request: Request) -> Principal | None:
    """The caller of this request; None when the node is open (no keys, loopback bind)."""
    return getattr(request.state, "principal", None)


def require_model(request: Request, model_id: str) -> None:
    """403 when the caller's key may not use `model_id` (the middleware checks body models too)."""
    principal = principal_of(request)
    if principal is not None and not principal.may_use(model_id):
        raise Forbidden(f"this API key may not use model {model_id[:160]!r}", param="model")


def require_admin(request: Request) -> None:
    principal = principal_of(request)
    if principal is not None and not principal.is_admin:
        raise Forbidden("this action needs an admin API key")


def forwarded_auth() -> dict[str, str]:
    """The caller's own key headers, for a request this node makes to a peer on its behalf."""
    return dict(_caller_auth.get())


def presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key", "").strip() or None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}


def _has_body(method: str, headers: dict[str, str]) -> bool:
    if method not in STATE_CHANGING:
        return False
    length = headers.get("content-length", "").strip()
    return (length.isdigit() and int(length) > 0) or "chunked" in headers.get("transfer-encoding", "").lower()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


# The types a web page may send to another origin without a CORS preflight (which we deny).
SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def _json_or_untyped(headers: dict[str, str], path: str = "") -> bool:
    """Not a body a page could post cross-site: JSON, a type that needs a preflight, or no type
    from a non-browser client (a page's fetch always carries Origin). Ollama's own examples post
    with `curl -d` (form-typed), so its routes refuse a simple type only from a browser."""
    content_type = headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if not media or (path.startswith("/ollama/") and "origin" not in headers):
        return "origin" not in headers
    return _is_json(content_type) or media not in SIMPLE_TYPES


class AccessMiddleware:
    def __init__(self, app: ASGIApp, *, state: Callable[[], Any], bind_host: str | None,
                 verifier: KeyVerifier | None = None, now: Callable[[], datetime] | None = None,
                 usage: KeyUsage | None = None, is_route: Callable[[str], bool] | None = None):
        self.app = app
        self.is_route = is_route or (lambda name: False)  # route names: the allow-list meets the resolved model
        self.state = state  # the replicated State, read per request
        self.bind_host = bind_host  # None: an in-process app (tests) that no browser can reach
        self.loopback = bind_host is None or is_loopback_bind(bind_host)
        self.verifier = verifier or KeyVerifier()
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.usage = usage  # last-used times, sent to the master in batches by the node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = _headers(scope)
        try:
            principal = self._check(path, method, headers)
        except SkulkError as exc:
            await refusal(path, exc.status, exc.message, exc.code)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        if principal is not None and principal.models is not None and method == "POST" and is_inference_path(path):
            receive = await self._check_model(scope, receive, send, principal)
            if receive is None:
                return
        token = _caller_auth.set(_auth_headers(headers))
        try:
            await self.app(scope, receive, send)
        finally:
            _caller_auth.reset(token)

    def _check(self, path: str, method: str, headers: dict[str, str]) -> Principal | None:
        if self.bind_host is not None and self.loopback and not is_loopback_name(headers.get("host", "")):
            count("api.host_refused", headers.get("host", "")[:64])
            raise _Misdirected("this node answers to localhost names only (api_host is loopback)")
        if _has_body(method, headers) and not _json_or_untyped(headers, path):
            count("api.content_type_refused", path[:64])
            raise _Unsupported("a request body must be sent as Content-Type: application/json")
        records = getattr(self.state(), "api_keys", None) or {}
        level = level_for(method, path, headers.get("accept", ""))
        if not records and self.loopback:
            return None  # open node: no key anywhere in the cluster, reachable from here only
        key = presented_key(headers)
        record = self.verifier.verify(key, records, self.now()) if key else None
        if level == "public":
            return Principal.of(record) if record is not None else None
        if record is None:
            count("api.key_refused", "missing" if key is None else "invalid")
            raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or x-api-key)"
                               if key is None else "invalid, expired or revoked API key")
        principal = Principal.of(record)
        if self.usage is not None:
            self.usage.note(record.id, self.now())
        if level == "admin" and not principal.is_admin:
            count("api.role_refused", path[:64])
            raise Forbidden("this route needs an admin API key")
        return principal

    async def _check_model(self, scope: Scope, receive: Receive, send: Send, principal: Principal):
        """Read the body (already bounded by BodyLimitMiddleware), check its model, replay it."""
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
        except SkulkError as exc:  # the body was over the limit
            await refusal(scope.get("path", ""), exc.status, exc.message, exc.code)(scope, receive, send)
            return None
        model = _model_of(b"".join(m.get("body", b"") for m in messages))
        if model is not None and not principal.may_use(model) and not self.is_route(model):
            count("api.model_refused", principal.key_id)
            exc = Forbidden(f"this API key may not use model {model[:160]!r}")
            await refusal(scope.get("path", ""), exc.status, exc.message, exc.code)(scope, receive, send)
            return None
        return _replay(messages, receive)


class _Misdirected(SkulkError):
    status = 421
    code = "misdirected_request"


class _Unsupported(SkulkError):
    status = 415
    code = "unsupported_media_type"


def _auth_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in ("authorization", "x-api-key")}


def _model_of(body: bytes) -> str | None:
    try:
        value = json.loads(body) if body.strip() else None
    except ValueError:
        return None  # the route answers the bad JSON in its own words
    model = value.get("model") if isinstance(value, dict) else None
    return model if isinstance(model, str) else None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
