"""Node maintenance (admin): cordon, drain, uncordon. The master decides; the answer waits for it.

A cordoned node gets no new shards. Draining also moves the deployments it hosts elsewhere first
(the deployment reconciler places replacements, then stops the old instances).
"""

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec
from skulk.errors import NotFound, Unavailable
from skulk.master.maintenance import known_node
from skulk.types import commands as cmd
from skulk.types.state import State

REPLICATION_WAIT_S = 10.0  # the master answers in milliseconds; a session change takes seconds


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _node(request: Request) -> str:
    port, node_id = _port(request), request.path_params["node_id"]
    beats, _ = port.live_telemetry()
    state = port.state
    if not (known_node(state, node_id) or node_id in beats or node_id in state.node_maintenance):
        raise NotFound(f"Node not found: {node_id[:128]}", param="node_id")
    return node_id


def maintenance_body(state: State, node_id: str) -> dict:
    mode = state.node_maintenance.get(node_id)
    hosted = sorted(i for i, inst in state.instances.items() if node_id in inst.shard_assignments.node_to_runner)
    return {"node_id": node_id, "maintenance": mode, "cordoned": mode is not None, "draining": mode == "draining",
            "instances": hosted}


async def _change(request: Request, command, wanted: str | None) -> JSONResponse:
    port = _port(request)
    await port.send_command(command)
    with trio.move_on_after(REPLICATION_WAIT_S):
        while port.state.node_maintenance.get(command.node_id) != wanted:
            await trio.sleep(0.05)
        return JSONResponse(maintenance_body(port.state, command.node_id))
    raise Unavailable("the master did not confirm the maintenance change in time; retry")


async def post_cordon(request: Request) -> JSONResponse:
    return await _change(request, cmd.CordonNode(node_id=_node(request)), "cordoned")


async def post_drain(request: Request) -> JSONResponse:
    return await _change(request, cmd.CordonNode(node_id=_node(request), drain=True), "draining")


async def post_uncordon(request: Request) -> JSONResponse:
    return await _change(request, cmd.UncordonNode(node_id=_node(request)), None)


async def get_maintenance(request: Request) -> JSONResponse:
    state = _port(request).state
    return JSONResponse({"object": "list", "data": [maintenance_body(state, n) for n in sorted(state.node_maintenance)]})


ROUTES = [
    RouteSpec("GET", "/v1/nodes/maintenance", get_maintenance, "Cordoned and draining nodes", "maintenance"),
    RouteSpec("POST", "/v1/nodes/{node_id}/cordon", post_cordon, "Give a node no new shards", "maintenance",
              status_codes=(200, 404, 503)),
    RouteSpec("POST", "/v1/nodes/{node_id}/drain", post_drain,
              "Cordon a node and move its deployments elsewhere", "maintenance", status_codes=(200, 404, 503)),
    RouteSpec("POST", "/v1/nodes/{node_id}/uncordon", post_uncordon, "Put a node back into placement",
              "maintenance", status_codes=(200, 404, 503)),
]
