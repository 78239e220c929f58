"""Projects: named resource policies (limits and a model list) that API keys belong to. Admin only.

Each answer shows the policy with its live usage: requests, tokens and rejections over 1 min,
1 h and 24 h, the open requests and the keys in the project.
"""

import time

import trio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import Conflict, NotFound, Unavailable
from skulk.master.limits import open_requests
from skulk.state.usage import project_series, windows
from skulk.types import commands as cmd
from skulk.types.projects import LIMIT_BOUND, MAX_ALLOWED_MODELS, PROJECT_NAME_PATTERN, ProjectPolicy
from skulk.types.priority import Priority
from skulk.types.state import State

REPLICATION_WAIT_S = 10.0  # the master answers in milliseconds; a session change takes seconds
_Limit = Field(default=None, gt=0, le=LIMIT_BOUND)


class CreateProjectParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=PROJECT_NAME_PATTERN)
    max_concurrent_requests: int | None = _Limit
    requests_per_minute: int | None = _Limit
    tokens_per_minute: int | None = _Limit
    max_instances: int | None = _Limit
    allowed_models: list[str] | None = Field(default=None, max_length=MAX_ALLOWED_MODELS)
    priority: Priority | None = None  # high | normal | low: its keys' requests, and their ceiling


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def project_body(state: State, policy: ProjectPolicy, now: float) -> dict:
    keys = sorted(k for k, r in state.api_keys.items() if r.project == policy.name)
    return {**policy.public(), "usage": windows(state.usage.get(project_series(policy.name)), now),
            "open_requests": open_requests(state, policy.name), "keys": keys}


async def _wait_for(port: ClusterPort, name: str, present: bool) -> None:
    with trio.move_on_after(REPLICATION_WAIT_S):
        while (name in port.state.projects) != present:
            await trio.sleep(0.05)
        return
    raise Unavailable("the master did not confirm the project change in time; retry")


def _known(port: ClusterPort, name: str) -> ProjectPolicy:
    policy = port.state.projects.get(name)
    if policy is None:
        raise NotFound(f"project not found: {name[:64]}", param="name")
    return policy


async def post_project(request: Request) -> JSONResponse:
    port = _port(request)
    params = await read_json_model(request, CreateProjectParams)
    if params.name in port.state.projects:
        raise Conflict(f"project {params.name} already exists", param="name")
    await port.send_command(cmd.CreateProject(project=ProjectPolicy(**params.model_dump())))
    await _wait_for(port, params.name, True)
    return JSONResponse(project_body(port.state, port.state.projects[params.name], time.time()), status_code=201)


async def get_projects(request: Request) -> JSONResponse:
    state, now = _port(request).state, time.time()
    return JSONResponse({"object": "list",
                         "data": [project_body(state, p, now) for _, p in sorted(state.projects.items())]})


async def get_project(request: Request) -> JSONResponse:
    port = _port(request)
    return JSONResponse(project_body(port.state, _known(port, request.path_params["name"]), time.time()))


async def delete_project(request: Request) -> JSONResponse:
    port = _port(request)
    name = _known(port, request.path_params["name"]).name
    await port.send_command(cmd.DeleteProject(name=name))
    await _wait_for(port, name, False)
    return JSONResponse({"name": name, "deleted": True})


ROUTES = [
    RouteSpec("POST", "/v1/projects", post_project, "Create a project (limits and allowed models)", "access",
              request_model=CreateProjectParams, status_codes=(201, 409, 422)),
    RouteSpec("GET", "/v1/projects", get_projects, "List projects with their live usage", "access"),
    RouteSpec("GET", "/v1/projects/{name}", get_project, "One project with its live usage", "access",
              status_codes=(200, 404)),
    RouteSpec("DELETE", "/v1/projects/{name}", delete_project, "Delete a project (its keys become unlimited)",
              "access", status_codes=(200, 404)),
]
