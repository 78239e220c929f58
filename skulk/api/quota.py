"""Project limits on the API node: who is calling (for the commands it sends), the master's refusals
turned into 429/403, and the X-RateLimit headers on every authorised response.

The master admits or refuses each request (skulk.master.limits); a refusal is a RequestRejected in
the replicated state, which the waiting request finds within one poll.
"""

import time
from contextvars import ContextVar

import trio
from starlette.requests import Request

from skulk.api.auth import principal_of
from skulk.errors import SkulkError
from skulk.master.limits import project_of_key, rate_headers
from skulk.types.access import Principal
from skulk.types.projects import Rejection
from skulk.types.state import State

CALLER: ContextVar[Principal | None] = ContextVar("skulk_caller", default=None)
ADMISSION_POLL_S = 0.02
ADMISSION_DEADLINE_S = 15.0  # as long as a request waits for its task to appear at all


class RateLimited(SkulkError):
    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, headers: dict[str, str]):
        super().__init__(message)
        self.headers = headers


class ProjectForbidden(SkulkError):
    status = 403
    code = "model_not_allowed"


def caller() -> Principal | None:
    """The principal of the request being served (set by QuotaMiddleware), None on an open node."""
    return CALLER.get()


def caller_key_id() -> str | None:
    principal = caller()
    return principal.key_id if principal is not None else None


def limited(state: State, key_id: str | None) -> bool:
    """Whether the master may refuse this key's requests (its project has a policy)."""
    project = project_of_key(state, key_id)
    return project is not None and project in state.projects


def check_model_allowed(state: State, key_id: str | None, model: str) -> None:
    """A model outside the project's list is refused here already (the master checks again)."""
    project = project_of_key(state, key_id)
    policy = state.projects.get(project) if project else None
    if policy is not None and policy.allowed_models is not None and model not in policy.allowed_models:
        raise ProjectForbidden(f"model {model} is not allowed in project {project}", param="model")


def rejection_error(r: Rejection) -> SkulkError:
    if r.status == 403:
        return ProjectForbidden(r.reason, param="model")
    reset = str(max(r.reset_s, 1))
    return RateLimited(r.reason, {"Retry-After": reset, "X-RateLimit-Limit": str(r.limit),
                                  "X-RateLimit-Remaining": str(r.remaining), "X-RateLimit-Reset": reset})


def _task_seen(state: State, command_id: str) -> bool:
    return any(getattr(t, "command_id", None) == command_id for t in state.tasks.values())


async def await_admission(port, command_id: str) -> None:
    """Wait until the master admitted (its task appears) or refused this command; raise on refusal.
    Past the deadline the request goes on and meets the usual never-started error."""
    with trio.move_on_after(ADMISSION_DEADLINE_S):
        while True:
            state = port.state
            rejection = state.rejections.get(command_id)
            if rejection is not None:
                raise rejection_error(rejection)
            if _task_seen(state, command_id):
                return
            await trio.sleep(ADMISSION_POLL_S)


class QuotaMiddleware:
    """Names the caller for the commands this request sends, and adds its project's limit and
    remaining to the response (approximate: this node's view of the replicated counters)."""

    def __init__(self, app, port):
        self.app = app
        self.port = port

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal = principal_of(Request(scope))
        token = CALLER.set(principal)

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start" and principal is not None:
                extra = rate_headers(self.port.state, project_of_key(self.port.state, principal.key_id), time.time())
                present = {k.lower() for k, _ in message.get("headers", [])}
                headers = [*message.get("headers", []), *((k.lower().encode(), v.encode())
                                                          for k, v in extra.items() if k.lower().encode() not in present)]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            CALLER.reset(token)
