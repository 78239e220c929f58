"""A request's priority: from the caller key's project, else the X-Skulk-Priority header.

Rules (`effective_priority`, pure): on an open node, or with an admin key, the header decides
(default: the project's priority, else normal). A user key runs at its project's priority
(normal without one) and that is also its ceiling: the header may lower it, and a higher value
is clamped to it, never an error, so a client that always sends `high` keeps working. A value
other than high / normal / low is 400 in the shape of the API called.
"""

from contextvars import ContextVar

from starlette.responses import JSONResponse

from skulk.api.access_policy import is_inference_path
from skulk.api.errors import error_response
from skulk.api.validation import anthropic_error
from skulk.errors import BadRequest
from skulk.faults import count
from skulk.master.limits import project_of_key
from skulk.types.access import Principal
from skulk.types.priority import DEFAULT_PRIORITY, PRIORITIES, Priority, rank
from skulk.types.projects import ProjectPolicy

HEADER = "x-skulk-priority"
PRIORITY: ContextVar[Priority] = ContextVar("skulk_priority", default=DEFAULT_PRIORITY)


def current_priority() -> Priority:
    """The priority of the request being served (normal outside a request)."""
    return PRIORITY.get()


def parse_header(value: str | None) -> Priority | None:
    if value is None:
        return None
    value = value.strip().lower()
    if value not in PRIORITIES:
        raise BadRequest("X-Skulk-Priority must be one of high, normal, low", param="X-Skulk-Priority",
                         code="invalid_priority")
    return value  # type: ignore[return-value]


def effective_priority(asked: Priority | None, principal: Principal | None, project: ProjectPolicy | None) -> Priority:
    own = project.priority if project is not None and project.priority is not None else DEFAULT_PRIORITY
    if principal is None or principal.is_admin:
        return asked or own
    if asked is None or rank(asked) < rank(own):
        return own  # a user key never rises above its project's priority
    return asked


def _refusal(path: str, exc: BadRequest) -> JSONResponse:
    if path.startswith("/ollama/"):
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    if path == "/v1/messages":
        return JSONResponse(anthropic_error(exc.status, exc.message), status_code=exc.status)
    return error_response(exc.status, exc.message, code=exc.code, param=exc.param)


class PriorityMiddleware:
    """Sets PRIORITY for inference requests (after AccessMiddleware, which names the principal)."""

    def __init__(self, app, port):
        self.app = app
        self.port = port

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not is_inference_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers") or ())
        principal = (scope.get("state") or {}).get("principal")
        try:
            asked = parse_header(headers.get(HEADER))
        except BadRequest as exc:
            count("api.priority_refused", headers.get(HEADER, "")[:16])
            await _refusal(scope.get("path", ""), exc)(scope, receive, send)
            return
        state = self.port.state
        project = project_of_key(state, principal.key_id) if principal is not None else None
        token = PRIORITY.set(effective_priority(asked, principal, state.projects.get(project) if project else None))
        try:
            await self.app(scope, receive, send)
        finally:
            PRIORITY.reset(token)
