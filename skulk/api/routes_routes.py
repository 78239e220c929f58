"""GET/PUT /v1/routes, and the per-request step every inference route takes first: a route or
capability name in `model` becomes the concrete model id that will serve (skulk.api.model_routes).

PUT replaces the cluster's `routes` key the way PUT /config does (a SetClusterConfig with the
cluster-wide config, so every node gets it and rewrites its skulk.yaml), keeping every other key.
"""

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api import quota
from skulk.api.model_routes import RouteView, resolve_model, route_views, routes_of, validated_routes
from skulk.api.routes_config import config_path
from skulk.api.routing import RouteSpec
from skulk.api.validation import parse_json_body
from skulk.config.sources import read_yaml_file
from skulk.config.sync import cluster_part, validate_file_values
from skulk.errors import BadRequest, ConfigError, Unavailable
from skulk.master.limits import project_of_key

M = TypeVar("M", bound=BaseModel)
APPLY_WAIT_S = 5.0  # PUT waits this long to see its routes in the replicated state


def caller_may_use(port: Any) -> Callable[[str], bool]:
    """What the caller's key and its project allow (an open node: everything)."""
    principal = quota.caller()
    if principal is None:
        return lambda model: True
    state = port.state
    project = project_of_key(state, principal.key_id)
    policy = state.projects.get(project) if project else None
    allowed = policy.allowed_models if policy is not None else None
    return lambda model: principal.may_use(model) and (allowed is None or model in allowed)


def served_model(port: Any, requested: str) -> str:
    """The model id that serves a request naming `requested` (itself unless it is a route)."""
    return resolve_model(port.state, routes_of(port), requested, caller_may_use(port))


def resolve_request(port: Any, req: M) -> M:
    """The parsed request with its `model` resolved, so every check and the answer see that id."""
    served = served_model(port, req.model)  # type: ignore[attr-defined]
    return req if served == req.model else req.model_copy(update={"model": served})  # type: ignore[attr-defined]


def view_body(view: RouteView) -> dict[str, Any]:
    return {"name": view.name, "kind": view.kind, "models": list(view.models), "served_by": view.served_by}


def _body(port: Any) -> dict[str, Any]:
    views = route_views(port.state, routes_of(port), port.catalog.all())
    return {"routes": [view_body(v) for v in views if v.kind == "route"],
            "capabilities": [view_body(v) for v in views if v.kind == "capability"]}


async def get_routes(request: Request) -> JSONResponse:
    return JSONResponse(_body(request.app.state.cluster))


def _new_routes(raw: bytes) -> list[dict[str, Any]]:
    body = parse_json_body(raw)
    if not isinstance(body, dict) or set(body) != {"routes"} or not isinstance(body["routes"], list):
        raise BadRequest('The body must be {"routes": [{"name": ..., "models": [...]}, ...]}', param="routes")
    try:
        routes = validated_routes(body["routes"])
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"invalid routes: {str(exc).splitlines()[0][:300]}", param="routes") from None
    return [r.model_dump(mode="json") for r in routes]


def _cluster_values(port: Any) -> dict[str, Any]:
    """The cluster-wide config to keep: the replicated one, else this node's file (first PUT)."""
    if port.state.cluster_config is not None:
        return dict(port.state.cluster_config)
    path = config_path()
    return cluster_part(read_yaml_file(path, str(path))) if path.exists() else {}


async def put_routes(request: Request) -> JSONResponse:
    port = request.app.state.cluster
    routes = _new_routes(await request.body())
    broadcast = getattr(port, "broadcast_config", None)
    if not callable(broadcast):
        raise Unavailable("this node cannot change the cluster config")
    values = {**_cluster_values(port), "routes": routes}
    try:
        validate_file_values(values)
    except ConfigError as exc:  # the rest of the config is what is wrong: say so, change nothing
        raise BadRequest(f"the cluster config does not validate: {exc.message}", param="routes") from None
    result = broadcast(values)
    if inspect.isawaitable(result):
        await result
    applied = False
    with trio.move_on_after(APPLY_WAIT_S):
        while not applied:
            applied = [r.model_dump(mode="json") for r in routes_of(port)] == routes
            if not applied:
                await trio.sleep(0.05)
    return JSONResponse({**_body(port), "applied": applied})


ROUTES = [
    RouteSpec("GET", "/v1/routes", get_routes, "Model routes and capability routes, with the model each goes to now",
              "models"),
    RouteSpec("PUT", "/v1/routes", put_routes, "Replace the cluster's model routes (admin)", "models",
              status_codes=(200, 400, 503)),
]
