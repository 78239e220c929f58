"""Admission on the API node: who is calling (for the commands it sends), waiting for a ready
instance, a quick local 429 when the instances are plainly full, the master's refusals turned into
429/403/503, and the X-RateLimit headers on every authorised response.

The master admits or refuses each request (skulk.master.limits, skulk.master.admission); a refusal is
a RequestRejected in the replicated state, which the waiting request finds within one poll.
"""

import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import trio
from starlette.requests import Request

from skulk.api.auth import principal_of
from skulk.api.limits import api_settings
from skulk.api.routes_warm import waking
from skulk.config.model import InferenceSettings
from skulk.errors import NotFound, SkulkError
from skulk.faults import count
from skulk.master import admission
from skulk.master.limits import project_of_key, rate_headers
from skulk.types.access import Principal
from skulk.types.projects import Rejection
from skulk.types.state import State
from skulk.types.tasks import Task

CALLER: ContextVar[Principal | None] = ContextVar("skulk_caller", default=None)
ADMISSION_POLL_S = 0.02
ADMISSION_DEADLINE_S = 15.0  # as long as a request waits for its task to appear at all
READY_POLL_S = 0.1
MASTER_CHANGE_SETTLE_S = 15.0  # after a new session, "no instance" may be this node still catching up
_OUTSTANDING: "weakref.WeakKeyDictionary[object, dict[str, set[str]]]" = weakref.WeakKeyDictionary()  # per port


class RateLimited(SkulkError):
    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, headers: dict[str, str]):
        super().__init__(message)
        self.headers = headers


class ProjectForbidden(SkulkError):
    status = 403
    code = "model_not_allowed"


class SessionChanged(SkulkError):
    """A new master took over while the request waited for admission; the client retries."""

    status = 503
    code = "session_changed"

    def __init__(self, message: str):
        super().__init__(message)
        self.headers = {"Retry-After": "1"}


class NotReady(SkulkError):
    """No instance of the model can take the request yet (loading, warming up): retry later."""

    status = 503
    code = "model_not_ready"

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


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
    if r.status == 503:
        return NotReady(r.reason, max(r.retry_after_s, 1))
    reset = str(max(r.reset_s, 1))
    return RateLimited(r.reason, {"Retry-After": reset, "X-RateLimit-Limit": str(r.limit),
                                  "X-RateLimit-Remaining": str(r.remaining), "X-RateLimit-Reset": reset})


def _task_of(state: State, command_id: str) -> Task | None:
    return next((t for t in state.tasks.values() if getattr(t, "command_id", None) == command_id), None)


async def await_admission(port, command_id: str, session) -> Task | None:
    """Wait until the master admitted (its task appears: returned) or refused this command (raised).
    Past the deadline the request goes on (None) and meets the usual never-started error.
    `session`: the one the command was sent in; a change from it is a retryable 503 at once."""
    with trio.move_on_after(ADMISSION_DEADLINE_S):
        while True:
            if port.session != session:  # the master that had the command is gone: fail fast, retryable
                raise SessionChanged("The cluster session changed (master failover) before this request was "
                                     "admitted; please retry")
            state = port.state
            rejection = state.rejections.get(command_id)
            if rejection is not None:
                raise rejection_error(rejection)
            task = _task_of(state, command_id)
            if task is not None:
                return task
            await trio.sleep(ADMISSION_POLL_S)
    return None


def inference_settings(port) -> InferenceSettings:
    """The node's `inference` settings (live); defaults for a port without settings (a test fake)."""
    inference = getattr(getattr(port, "settings", None), "inference", None)
    return inference if isinstance(inference, InferenceSettings) else InferenceSettings()


def not_found_or_settling(port, model: str) -> SkulkError:
    """404, except just after a master change: this node's view may still lack the instances the new
    master carried over, so the client is told to retry (503) rather than that the model has none."""
    since = port.since_master_change_s()
    if since is not None and since < MASTER_CHANGE_SETTLE_S:
        return NotReady(f"the cluster changed masters {since:.0f} s ago and this node has no instance of {model} "
                        "in view yet; retry shortly", 2)
    return NotFound(f"No instance found for model {model}", code="model_not_found", param="model")


async def await_ready(port, model: str, exclude: Iterable[str] = ()) -> None:
    """Return once an instance of `model` is ready; 503 with Retry-After past api.queue_timeout_seconds
    (loading or warming up), 404 should the model's last instance go away meanwhile."""
    if not admission.ready_instances(port.state, model, exclude) and waking(port.state, model, exclude):
        return  # a paused deployment: the task wakes it and the stream waits on it (keep-alives), not here
    timeout = api_settings(port).queue_timeout_seconds
    with trio.move_on_after(timeout):
        while not admission.ready_instances(port.state, model, exclude):
            if not admission.model_instances(port.state, model, exclude):
                raise not_found_or_settling(port, model)
            await trio.sleep(READY_POLL_S)
        return
    count("api.queue_timeout", model[:64])
    raise NotReady(f"No instance of {model} became ready within {timeout:g} s (api.queue_timeout_seconds); "
                   "it may still be loading", admission.NOT_READY_RETRY_S)


def _outstanding(port) -> dict[str, set[str]]:
    return _OUTSTANDING.setdefault(port, {})


@contextmanager
def outstanding(port, model: str, command_id: str) -> Iterator[None]:
    """Counts a request of this node between sending it and seeing the master's answer, so a burst
    through one node sees its own earlier requests before they reach the state."""
    pending = _outstanding(port).setdefault(model, set())
    pending.add(command_id)
    try:
        yield
    finally:
        pending.discard(command_id)
        if not pending:
            _outstanding(port).pop(model, None)


def _on_the_way(port, model: str) -> int:
    """This node's requests for `model` whose task is not in its state yet (those are counted there)."""
    pending = _outstanding(port).get(model, ())
    if not pending:
        return 0
    seen = {getattr(t, "command_id", None) for t in port.state.tasks.values()}
    return sum(1 for c in pending if c not in seen)


def precheck(port, model: str, exclude: Iterable[str] = ()) -> None:
    """429 at once, without asking the master, when this node's view says every ready instance of the
    model is full (the master decides the rest exactly)."""
    state, limit = port.state, inference_settings(port).pending_limit
    ready = admission.ready_instances(state, model, exclude)
    if not ready:
        return
    depths = admission.depths(state)
    if sum(depths[i] for i in ready) + _on_the_way(port, model) < limit * len(ready):
        return
    count("api.pending_limit", model[:64])
    raise RateLimited(f"{admission.PENDING_LIMIT}: every ready instance of {model} already holds {limit} "
                      "open requests", {"Retry-After": str(admission.FULL_RETRY_S), "X-RateLimit-Limit": str(limit),
                                        "X-RateLimit-Remaining": "0",
                                        "X-RateLimit-Reset": str(admission.FULL_RETRY_S)})


async def admit_here(port, model: str, exclude: Iterable[str] = ()) -> None:
    """What this node checks before it sends a request: a ready instance (waiting for one up to the
    queue timeout), then room on it as far as it can tell."""
    await await_ready(port, model, exclude)
    precheck(port, model, exclude)


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
