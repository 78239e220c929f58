"""Warm cache by hand (admin): pause and resume a deployment; and the wake a request causes.

A paused deployment's runners free their memory but stay alive. A request for it goes to its
paused instance and wakes it there (the master sees the task); the client's stream waits with
keep-alives while the runner reloads. One dropped to cold (no instance left) is woken first and
the request waits here until the master has placed it again.
"""

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec
from skulk.errors import NotFound, Unavailable
from skulk.master.serving import instances_for_model
from skulk.master.warm_cache import WOKEN, paused_deployment_for, paused_instances
from skulk.types import commands as cmd
from skulk.types.deployments import DeploymentStatus
from skulk.types.state import State

REPLICATION_WAIT_S = 10.0
COLD_WAKE_WAIT_S = 30.0  # a cold wake is placed on the master's next reconcile tick (2 s)
_POLL_S = 0.05


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def waking(state: State, model_id: str, exclude=()) -> bool:
    """True when the model's only way to serve is a paused deployment's instance: the request should
    be sent (its task wakes the deployment) and wait in its stream, not for a ready instance here."""
    return bool(paused_instances(state, model_id, exclude))


async def wake_if_cold(port: ClusterPort, model_id: str) -> None:
    """A paused deployment of the model with no instance left: wake it and wait for its placement."""
    if instances_for_model(port.state, model_id):
        return
    dep_id = paused_deployment_for(port.state, model_id)
    if dep_id is None:
        return
    await port.send_command(cmd.SetDeploymentPaused(deployment_id=dep_id, paused=False, reason=WOKEN))
    with trio.move_on_after(COLD_WAKE_WAIT_S):
        while not instances_for_model(port.state, model_id):
            await trio.sleep(_POLL_S)
        return
    raise Unavailable(f"deployment {dep_id} of {model_id} is waking from cold but was not placed within "
                      f"{COLD_WAKE_WAIT_S:g} s; retry shortly")


def _status_body(state: State, dep_id: str) -> dict:
    d = state.deployments[dep_id]
    runners = {}
    for iid, inst in sorted(state.instances.items()):
        if inst.deployment_id == dep_id:
            runners[iid] = {r: type(state.runners.get(r)).__name__ if r in state.runners else None
                            for r in inst.shard_assignments.runner_to_shard}
    return {"deployment_id": dep_id, "status": d.status.value, "reason": d.reason, "pinned": d.pinned,
            "keep_alive_seconds": d.keep_alive_seconds, "instances": runners}


async def _set_paused(request: Request, paused: bool) -> JSONResponse:
    port, dep_id = _port(request), request.path_params["deployment_id"]
    if dep_id not in port.state.deployments:
        raise NotFound(f"Deployment not found: {dep_id[:64]}", param="deployment_id")
    reason = "paused by hand" if paused else "resumed by hand"
    await port.send_command(cmd.SetDeploymentPaused(deployment_id=dep_id, paused=paused, reason=reason))
    with trio.move_on_after(REPLICATION_WAIT_S):
        while True:
            d = port.state.deployments.get(dep_id)
            if d is None or (d.status is DeploymentStatus.paused) == paused:
                break
            await trio.sleep(_POLL_S)
        if dep_id not in port.state.deployments:
            raise NotFound(f"Deployment {dep_id[:64]} was deleted meanwhile", param="deployment_id")
        return JSONResponse(_status_body(port.state, dep_id))
    raise Unavailable("the master did not confirm the change in time; retry")


async def post_pause(request: Request) -> JSONResponse:
    return await _set_paused(request, True)


async def post_resume(request: Request) -> JSONResponse:
    return await _set_paused(request, False)


ROUTES = [
    RouteSpec("POST", "/v1/deployments/{deployment_id}/pause", post_pause,
              "Pause a deployment: its runners free their memory, the weights stay warm", "deployments",
              status_codes=(200, 404, 503)),
    RouteSpec("POST", "/v1/deployments/{deployment_id}/resume", post_resume,
              "Wake a paused deployment (a request wakes it too)", "deployments", status_codes=(200, 404, 503)),
]
