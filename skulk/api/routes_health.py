"""Liveness and readiness probes for load balancers: open to everyone, even when API keys are required,
and cheap (this node's own view, no round trip).

GET /health: 200 while the process serves HTTP. GET /ready: 200 once the node is in a session and
reaches its master (it is the master, or heard the master's heartbeat lately); 503 with the reason
otherwise. GET /ready?model=ID: as /ready, and 200 only while a ready instance of that model exists.
"""

from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.routing import RouteSpec
from skulk.master import admission

MASTER_FRESH_S = 5.0  # heartbeats come every second; a few missed ones mean the master is out of reach


async def get_health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def node_unready(port) -> tuple[str, str] | None:
    """(status, reason) while this node cannot serve, else None."""
    session = port.session
    if session is None:
        return "starting", "this node is not in a cluster session yet"
    if port.is_master:
        return None
    master = session.master_node_id
    age = port.live_telemetry()[1].get(master)
    if age is None or age > MASTER_FRESH_S:
        return "unreachable", f"the master {master} has not been heard from for over {MASTER_FRESH_S:g} s"
    return None


def model_unready(state, model: str) -> str | None:
    if admission.ready_instances(state, model):
        return None
    if admission.model_instances(state, model):
        return f"no instance of {model} is ready yet (loading or warming up)"
    return f"no instance of {model} is placed"


async def get_ready(request: Request) -> JSONResponse:
    port = request.app.state.cluster
    unready = node_unready(port)
    if unready is not None:
        return JSONResponse({"status": unready[0], "reason": unready[1]}, status_code=503)
    model = request.query_params.get("model")
    if model:
        reason = model_unready(port.state, model)
        if reason is not None:
            return JSONResponse({"status": "model_not_ready", "reason": reason, "model": model}, status_code=503)
        return JSONResponse({"status": "ok", "model": model})
    return JSONResponse({"status": "ok"})


ROUTES = [
    RouteSpec("GET", "/health", get_health, "The process answers", "node"),
    RouteSpec("GET", "/ready", get_ready, "The node is in a session and reaches its master; with ?model=, "
              "a ready instance of that model exists", "node", status_codes=(200, 503)),
]
