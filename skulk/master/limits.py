"""Project admission, pure: (state, who, what, now) -> a Rejection or None.

The master decides every GenerateText/EmbedText in order, so counting here is exact cluster-wide:
requests per minute and concurrency never overshoot; tokens are known only when a request ends,
so tokens_per_minute can be passed by the requests admitted before the last completion was counted.
"""

from datetime import datetime

from skulk.errors import BadRequest, Conflict, NotFound, SkulkError
from skulk.state.usage import project_series, seconds_until_room, window
from skulk.types import events as ev
from skulk.types.projects import MAX_PROJECTS, ProjectPolicy, Rejection
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TaskStatus

ACTIVE = (TaskStatus.Pending, TaskStatus.Running)
TOKENS = ("prompt_tokens", "completion_tokens")
TOKEN_BOUND = 10**9  # one request's reported tokens; a member's report is believed, within reason


def project_of_key(state: State, key_id: str | None) -> str | None:
    """The project a key belongs to, from the replicated key records (never the sender's word)."""
    record = state.api_keys.get(key_id) if key_id else None
    return record.project if record is not None else None


def open_requests(state: State, project: str) -> int:
    return sum(1 for t in state.tasks.values()
               if isinstance(t, SERVING_TASK_TYPES) and t.project == project and t.task_status in ACTIVE)


def _refuse(c_id: str, owner, key_id, project, reason: str, *, status: int = 429, limit: int = 0,
            remaining: int = 0, reset: int = 0) -> Rejection:
    return Rejection(command_id=c_id, owner_node=owner, key_id=key_id, project=project, status=status,
                     reason=reason, limit=limit, remaining=remaining, reset_s=reset, retry_after_s=reset)


def admission(state: State, *, command_id: str, owner_node: str | None, key_id: str | None,
              model: str, now: datetime) -> Rejection | None:
    """None when the request may run; otherwise why not (429 over a limit, 403 a model outside)."""
    project = project_of_key(state, key_id)
    policy = state.projects.get(project) if project else None
    if policy is None:
        return None
    refuse = lambda reason, **kw: _refuse(command_id, owner_node, key_id, project, reason, **kw)  # noqa: E731
    if policy.allowed_models is not None and model not in policy.allowed_models:
        return refuse(f"model {model} is not allowed in project {project}", status=403)
    t = now.timestamp()
    usage = state.usage.get(project_series(project))
    minute = window(usage, t, 60)
    if policy.requests_per_minute is not None and minute["requests"] >= policy.requests_per_minute:
        over = minute["requests"] - policy.requests_per_minute + 1
        return refuse(f"project {project} is over its {policy.requests_per_minute} requests per minute",
                      limit=policy.requests_per_minute, reset=seconds_until_room(usage, t, ("requests",), over))
    tokens = minute["prompt_tokens"] + minute["completion_tokens"]
    if policy.tokens_per_minute is not None and tokens >= policy.tokens_per_minute:
        return refuse(f"project {project} is over its {policy.tokens_per_minute} tokens per minute",
                      limit=policy.tokens_per_minute, reset=seconds_until_room(usage, t, TOKENS, tokens - policy.tokens_per_minute + 1))
    if policy.max_concurrent_requests is not None and open_requests(state, project) >= policy.max_concurrent_requests:
        return refuse(f"project {project} already runs {policy.max_concurrent_requests} concurrent requests",
                      limit=policy.max_concurrent_requests, reset=1)
    return None


def rate_headers(state: State, project: str | None, now: float) -> dict[str, str]:
    """Limit and remaining of the project's tightest per-minute limit, as this node's state sees it."""
    policy: ProjectPolicy | None = state.projects.get(project) if project else None
    if policy is None or policy.requests_per_minute is None and policy.tokens_per_minute is None:
        return {}
    minute = window(state.usage.get(project_series(project)), now, 60)
    if policy.requests_per_minute is not None:
        limit, used = policy.requests_per_minute, minute["requests"]
    else:
        limit, used = policy.tokens_per_minute, minute["prompt_tokens"] + minute["completion_tokens"]
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(limit - used, 0))}


def decide_create_project(state: State, c, now: datetime) -> list:
    if c.project.name in state.projects:
        raise Conflict(f"project {c.project.name} already exists", param="name")
    if len(state.projects) >= MAX_PROJECTS:
        raise BadRequest(f"the cluster already holds {MAX_PROJECTS} projects")
    return [ev.ProjectCreated(project=c.project.model_copy(update={"created_at": c.project.created_at or now}))]


def decide_delete_project(state: State, c) -> list:
    if c.name not in state.projects:
        raise NotFound(f"project not found: {c.name}", param="name")
    return [ev.ProjectDeleted(name=c.name)]


def admit(state: State, c, now: datetime, decide_task) -> list:
    """A serving command's events: refused over its project's policy, else its task tagged with the key
    and project, and one request counted for both."""
    rejection = admission(state, command_id=c.command_id, owner_node=c.owner_node, key_id=c.key_id,
                          model=c.model, now=now)
    if rejection is not None:
        return [ev.RequestRejected(rejection=rejection, at=now)]
    project = project_of_key(state, c.key_id)
    return [_tagged(e, c.key_id, project, now) for e in decide_task()]


def _tagged(e, key_id: str | None, project: str | None, now: datetime):
    """The task carries its key and project; `at` makes its TaskCreated count one request for both."""
    if not isinstance(e, ev.TaskCreated) or key_id is None:
        return e
    task = e.task.model_copy(update={"key_id": key_id, "project": project})
    return e.model_copy(update={"task": task, "at": now})


def finish_usage(task, usage, now: datetime) -> dict:
    """TaskDeleted fields that count a finished request's tokens for its key and project."""
    if getattr(task, "key_id", None) is None or usage is None:
        return {}
    return {"at": now, "prompt_tokens": min(usage.prompt_tokens, TOKEN_BOUND),
            "completion_tokens": min(usage.completion_tokens, TOKEN_BOUND)}


def project_instances(state: State, project: str) -> int:
    return sum(1 for iid, p in state.instance_projects.items() if p == project and iid in state.instances)


def placement_project(state: State, key_id: str | None) -> str | None:
    """The project a placement counts for; raises when that project already has its max_instances."""
    project = project_of_key(state, key_id)
    policy = state.projects.get(project) if project else None
    if policy is not None and policy.max_instances is not None and project_instances(state, project) >= policy.max_instances:
        raise InstancesExceeded(f"project {project} already has its {policy.max_instances} instances")
    return project


class InstancesExceeded(SkulkError):
    status = 429
    code = "max_instances_reached"
