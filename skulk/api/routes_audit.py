"""GET /v1/audit: the admin actions of every live node, newest first (`?limit=`, at most 1000;
`?scope=node` for this node's alone). Admin only."""

from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.peers import fan_out
from skulk.api.routing import RouteSpec
from skulk.errors import BadRequest

MAX_LIMIT = 1000


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}", param="limit")
    return int(raw)


async def get_audit(request: Request) -> JSONResponse:
    limit = _limit(request)
    local = request.app.state.audit.newest(limit)
    if request.query_params.get("scope") == "node":
        return JSONResponse({"object": "list", "data": local})
    entries, unreachable = [], []
    for node in await fan_out(request.app.state.cluster, f"/v1/audit?scope=node&limit={limit}",
                              {"data": local}, "body"):
        body = node.get("body") if node.get("ok") else None
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            entries.extend(e for e in body["data"] if isinstance(e, dict) and isinstance(e.get("at"), str))
        else:
            unreachable.append(node.get("nodeId"))
    entries.sort(key=lambda e: e["at"], reverse=True)
    return JSONResponse({"object": "list", "data": entries[:limit], "unreachable_nodes": unreachable})


ROUTES = [
    RouteSpec("GET", "/v1/audit", get_audit, "Admin actions of every node, newest first", "access",
              status_codes=(200, 400)),
]
