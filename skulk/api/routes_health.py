"""Liveness and readiness: open to everyone, even when API keys are required."""

from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.routing import RouteSpec


async def get_health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def get_ready(request: Request) -> JSONResponse:
    """200 once this node is in a session (it can reach a master), else 503."""
    if request.app.state.cluster.session is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ok"})


ROUTES = [
    RouteSpec("GET", "/health", get_health, "The process answers", "node"),
    RouteSpec("GET", "/ready", get_ready, "The node is in a cluster session", "node", status_codes=(200, 503)),
]
