"""Operations routes: Prometheus metrics, in-place restart (this node or a peer), the tracing flag."""

import httpx
import trio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk.api.auth import forwarded_auth  # peers are asked with the caller's own key
from skulk.api.metrics import metrics_for
from skulk.api.peers import FANOUT_TIMEOUT_S, resolve_peer
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import Conflict, SkulkError, Unavailable
from skulk.types.commands import SetTracingEnabled

TRACING_WAIT_S = 2.0  # PUT /v1/tracing waits this long for the flag to come back replicated


class TracingBody(BaseModel):
    enabled: bool


class PeerError(SkulkError):
    status = 502


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


async def get_metrics(request: Request) -> Response:
    body, content_type = metrics_for(_port(request)).exposition()
    return Response(body, media_type=content_type)


async def post_restart(request: Request) -> JSONResponse:
    port = _port(request)
    target = request.query_params.get("node_id") or port.node_id
    if target != port.node_id:
        return await _restart_peer(port, target)
    restart = getattr(port, "request_restart", None)
    if not callable(restart):
        raise Unavailable("This node cannot restart itself")
    if not restart():
        raise Conflict("A restart of this node is already pending", code="restart_already_pending")
    return JSONResponse({"status": "restarting", "node_id": port.node_id})


async def _restart_peer(port: ClusterPort, node_id: str) -> JSONResponse:
    """Ask the peer's own API, found from its heartbeat, like the topology probe does."""
    async with httpx.AsyncClient(timeout=FANOUT_TIMEOUT_S, trust_env=False, headers=forwarded_auth()) as client:
        url = await resolve_peer(client, port, node_id)
        try:
            resp = await client.post(f"{url}/admin/restart")
        except httpx.HTTPError as exc:
            raise PeerError(f"Node {node_id} did not take the restart: {exc}", param="node_id") from exc
    if resp.status_code == 409:
        raise Conflict(f"A restart of node {node_id} is already pending", code="restart_already_pending")
    if resp.status_code != 200:
        raise PeerError(f"Node {node_id} answered {resp.status_code} to the restart", param="node_id")
    return JSONResponse({"status": "restart_sent", "node_id": node_id})


async def get_tracing(request: Request) -> JSONResponse:
    return JSONResponse({"enabled": _port(request).state.tracing_enabled})


async def put_tracing(request: Request) -> JSONResponse:
    """Set the cluster's tracing flag (new requests copy it); answers with the replicated value."""
    body = await read_json_model(request, TracingBody)
    port = _port(request)
    await port.send_command(SetTracingEnabled(enabled=body.enabled))
    with trio.move_on_after(TRACING_WAIT_S):
        while port.state.tracing_enabled != body.enabled:
            await trio.sleep(0.05)
    return JSONResponse({"enabled": port.state.tracing_enabled})


ROUTES = [
    RouteSpec("GET", "/metrics", get_metrics, "Prometheus metrics of this node (text exposition format)", "ops"),
    RouteSpec("POST", "/admin/restart", post_restart,
              "Restart this node in place (or the node in ?node_id=); it rejoins with the same id", "ops",
              status_codes=(200, 404, 409, 502)),
    RouteSpec("GET", "/v1/tracing", get_tracing, "Whether new requests are traced (cluster-wide flag)", "ops",
              response_model=TracingBody),
    RouteSpec("PUT", "/v1/tracing", put_tracing, "Turn request tracing on or off for the whole cluster", "ops",
              request_model=TracingBody, response_model=TracingBody, status_codes=(200, 400, 422)),
]
