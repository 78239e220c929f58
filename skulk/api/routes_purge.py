"""POST /admin/purge: the dashboard's danger zone. Admin only; answers what it purged."""

import json
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.peers import call_peer
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import BadRequest, SkulkError
from skulk.master.purge import gone_nodes
from skulk.types import commands as cmd

PATH = "/admin/purge"
PURGE_REASON = "purged by an operator"


class PurgeBody(BaseModel):
    deployments: bool = Field(False, description="Delete every deployment (a planned stop: no alert)")
    metrics: bool = Field(False, description="Clear the metric history of this node and every live node")
    nodes: bool = Field(False, description="Forget nodes that are gone (not live, timed out, hosting nothing)")
    this_node_only: bool = Field(False, description="Metrics: clear this node's history only (used when "
                                 "one node forwards the purge to the others)")


class PurgeAnswer(BaseModel):
    deployments: dict[str, Any] | None = Field(None, description="{deleted: [deployment ids]}")
    metrics: dict[str, Any] | None = Field(None, description="{cleared: {node id: samples removed}, "
                                           "failed: {node id: error}}")
    nodes: dict[str, Any] | None = Field(None, description="{forgotten: [node ids]}")


async def post_purge(request: Request) -> JSONResponse:
    body: PurgeBody = await read_json_model(request, PurgeBody)
    if not (body.deployments or body.metrics or body.nodes):
        raise BadRequest("Say what to purge: deployments, metrics and/or nodes (true)")
    port: ClusterPort = request.app.state.cluster
    answer: dict[str, Any] = {}
    if body.deployments:
        ids = sorted(port.state.deployments)
        for dep_id in ids:
            await port.send_command(cmd.DeleteDeployment(deployment_id=dep_id, reason=PURGE_REASON))
        answer["deployments"] = {"deleted": ids}
    if body.metrics:
        answer["metrics"] = await _purge_metrics(request, port, body.this_node_only)
    if body.nodes:
        live = set(port.live_telemetry()[0]) | {port.node_id}
        gone = gone_nodes(port.state, live)
        if gone:  # the master forgets only what is gone by its own view
            await port.send_command(cmd.ForgetNodes(node_ids=gone))
        answer["nodes"] = {"forgotten": gone}
    return JSONResponse(answer)


async def _purge_metrics(request: Request, port: ClusterPort, this_node_only: bool) -> dict[str, Any]:
    cleared: dict[str, int] = {}
    failed: dict[str, str] = {}
    store = getattr(request.app.state, "metric_history", None)
    if store is not None:
        cleared[port.node_id] = await trio.to_thread.run_sync(store.clear)
    else:
        failed[port.node_id] = "this node keeps no metric history"
    if not this_node_only:
        others = sorted(n for n in port.live_telemetry()[0] if n != port.node_id)
        payload = json.dumps({"metrics": True, "this_node_only": True}).encode()

        async def one(node_id: str) -> None:
            try:
                resp = await call_peer(port, node_id, "POST", PATH, content=payload)
                if resp.status_code != 200:
                    failed[node_id] = f"HTTP {resp.status_code}: {resp.text[:200]}"
                else:
                    cleared.update(resp.json().get("metrics", {}).get("cleared", {}))
            except (SkulkError, ValueError) as exc:
                failed[node_id] = getattr(exc, "message", None) or str(exc)

        async with trio.open_nursery() as nursery:
            for node_id in others:
                nursery.start_soon(one, node_id)
    return {"cleared": cleared, "failed": failed}


ROUTES = [
    RouteSpec("POST", PATH, post_purge, "Danger zone: delete every deployment, clear the metric history "
              "(every live node), forget gone nodes; admin only", "admin",
              request_model=PurgeBody, response_model=PurgeAnswer, status_codes=(200, 400)),
]
