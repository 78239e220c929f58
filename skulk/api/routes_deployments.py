"""Deployments: desired state the master keeps placed (replicas, leases, restarts). Admin only.

A change is answered once this node's replica shows it (the master decides in milliseconds), so
a client can read its own write; a refusal the API can foresee is answered before any command.
"""

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

import trio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api import quota
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import BadRequest, NotFound, Unavailable
from skulk.master.limits import placement_project
from skulk.master.serving import instance_is_ready
from skulk.master.validate import deployment_refusal
from skulk.types import commands as cmd
from skulk.types.deployments import (
    MAX_LEASE_SECONDS, MAX_NODES, MAX_REPLICAS, MAX_RESTARTS_KEPT, Deployment, Priority,
)
from skulk.types.ids import SafeModelId
from skulk.types.instances import InstanceMeta, Sharding
from skulk.types.state import State

REPLICATION_WAIT_S = 10.0


class CreateDeploymentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: SafeModelId
    sharding: Sharding = Sharding.Pipeline
    instance_meta: InstanceMeta = InstanceMeta.MlxRing
    min_nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    excluded_nodes: list[str] = Field(default_factory=list, max_length=MAX_NODES)
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    priority: Priority = "normal"
    lease_seconds: int | None = Field(default=None, gt=0, le=MAX_LEASE_SECONDS)
    keep_alive_seconds: int | None = Field(default=None, ge=0, le=MAX_LEASE_SECONDS)
    pinned: bool = False
    max_restarts: int | None = Field(default=None, ge=0, le=MAX_RESTARTS_KEPT)


class ExtendParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: int = Field(gt=0, le=MAX_LEASE_SECONDS)


def new_deployment_id() -> str:
    return f"dep-{uuid4().hex[:12]}"


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _instances_body(state: State, deployment_id: str, names: dict[str, str]) -> list[dict]:
    out = []
    for inst in sorted(state.instances.values(), key=lambda i: i.instance_id):
        if inst.deployment_id != deployment_id:
            continue
        runners = inst.shard_assignments.runner_to_shard
        out.append({"instance_id": inst.instance_id, "ready": instance_is_ready(state, inst.instance_id),
                    "nodes": [{"node_id": n, "name": names.get(n, n)} for n in inst.node_ids()],
                    "runners": {r: type(state.runners[r]).__name__ if r in state.runners else None for r in runners}})
    return out


def deployment_body(state: State, d: Deployment, names: dict[str, str], now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    instances = _instances_body(state, d.deployment_id, names)
    expires_in = max((d.expires_at - now).total_seconds(), 0.0) if d.expires_at else None
    return {
        "deployment_id": d.deployment_id, "model_id": d.model_id, "status": d.status.value, "reason": d.reason,
        "replicas": d.replicas, "ready_replicas": sum(i["ready"] for i in instances),
        "sharding": d.sharding.value, "instance_meta": d.instance_meta.value, "min_nodes": d.min_nodes,
        "excluded_nodes": list(d.excluded_nodes), "priority": d.priority, "pinned": d.pinned,
        "lease_seconds": d.lease_seconds, "expires_at": d.expires_at.isoformat() if d.expires_at else None,
        "expires_in_seconds": expires_in, "expiry_warned": d.expiry_warned,
        "keep_alive_seconds": d.keep_alive_seconds, "max_restarts": d.max_restarts,
        "recent_restarts": len(d.restarts), "created_at": d.created_at.isoformat() if d.created_at else None,
        "auto_placed": d.auto_placed, "project": d.project, "preempted_by": d.preempted_by, "instances": instances,
    }


async def wait_for(port: ClusterPort, done: Callable[[State], bool], what: str) -> None:
    with trio.move_on_after(REPLICATION_WAIT_S):
        while not done(port.state):
            await trio.sleep(0.05)
        return
    raise Unavailable(f"the master did not confirm {what} in time; retry")


def _known(port: ClusterPort, deployment_id: str) -> Deployment:
    d = port.state.deployments.get(deployment_id)
    if d is None:
        raise NotFound(f"Deployment not found: {deployment_id[:64]}", param="deployment_id")
    return d


def new_deployment(port: ClusterPort, deployment: Deployment) -> cmd.CreateDeployment:
    """The command for `deployment`, refused here (400, 429) when the master would refuse it."""
    refusal = deployment_refusal(port.state, deployment)
    if refusal is not None:
        raise BadRequest(refusal, param="model_id")
    placement_project(port.state, deployment.key_id)  # over the project's max_instances: 429
    return cmd.CreateDeployment(deployment=deployment)


async def post_deployment(request: Request) -> JSONResponse:
    port = _port(request)
    params = await read_json_model(request, CreateDeploymentParams)
    card = port.catalog.require(params.model_id)
    d = Deployment(deployment_id=new_deployment_id(), model_card=card, key_id=quota.caller_key_id(),
                   **params.model_dump())
    await port.send_command(new_deployment(port, d))
    await wait_for(port, lambda s: d.deployment_id in s.deployments, "the deployment")
    body = deployment_body(port.state, port.state.deployments[d.deployment_id], port.node_names())
    return JSONResponse(body, status_code=201)


async def get_deployments(request: Request) -> JSONResponse:
    port = _port(request)
    state, names = port.state, port.node_names()
    data = [deployment_body(state, d, names) for _, d in sorted(state.deployments.items())]
    return JSONResponse({"object": "list", "data": data})


async def get_deployment(request: Request) -> JSONResponse:
    port = _port(request)
    d = _known(port, request.path_params["deployment_id"])
    return JSONResponse(deployment_body(port.state, d, port.node_names()))


async def delete_deployment(request: Request) -> JSONResponse:
    port = _port(request)
    d = _known(port, request.path_params["deployment_id"])
    await port.send_command(cmd.DeleteDeployment(deployment_id=d.deployment_id))
    await wait_for(port, lambda s: d.deployment_id not in s.deployments, "the deletion")
    return JSONResponse({"deployment_id": d.deployment_id, "deleted": True})


async def restart_deployment(request: Request) -> JSONResponse:
    port = _port(request)
    d = _known(port, request.path_params["deployment_id"])
    await port.send_command(cmd.RestartDeployment(deployment_id=d.deployment_id))
    await wait_for(port, lambda s: s.deployments.get(d.deployment_id) != d, "the restart")
    return JSONResponse({"deployment_id": d.deployment_id, "restarted": True})


async def extend_deployment(request: Request) -> JSONResponse:
    port = _port(request)
    d = _known(port, request.path_params["deployment_id"])
    params = await read_json_model(request, ExtendParams)
    if d.expires_at is None:
        raise BadRequest(f"deployment {d.deployment_id} has no lease to extend", param="deployment_id")
    await port.send_command(cmd.ExtendDeploymentLease(deployment_id=d.deployment_id, seconds=params.seconds))
    moved = lambda s: (x := s.deployments.get(d.deployment_id)) is None or x.expires_at != d.expires_at  # noqa: E731
    await wait_for(port, moved, "the new expiry")
    return JSONResponse(deployment_body(port.state, _known(port, d.deployment_id), port.node_names()))


_ONE = "/v1/deployments/{deployment_id}"
ROUTES = [
    RouteSpec("POST", "/v1/deployments", post_deployment, "Create a deployment (desired state the master keeps placed)",
              "deployments", request_model=CreateDeploymentParams, status_codes=(201, 400, 404, 429, 503)),
    RouteSpec("GET", "/v1/deployments", get_deployments, "List deployments with status, lease and instances",
              "deployments"),
    RouteSpec("GET", _ONE, get_deployment, "One deployment", "deployments", status_codes=(200, 404)),
    RouteSpec("DELETE", _ONE, delete_deployment, "Delete a deployment and its instances", "deployments",
              status_codes=(200, 404, 503)),
    RouteSpec("POST", f"{_ONE}/restart", restart_deployment, "Replace its instances; clears a failed status",
              "deployments", status_codes=(200, 404, 503)),
    RouteSpec("POST", f"{_ONE}/extend", extend_deployment, "Extend the lease by `seconds`", "deployments",
              request_model=ExtendParams, status_codes=(200, 400, 404, 503)),
]
