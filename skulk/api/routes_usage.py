"""GET /v1/usage: requests, prompt and completion tokens and rejections per key and per project,
over rolling 1 min, 1 h and 24 h windows, from the replicated usage counters. Admin only."""

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api.routing import RouteSpec
from skulk.state.usage import windows
from skulk.types.state import State


def usage_report(state: State, now: float, *, key_id: str | None = None, project: str | None = None) -> dict:
    """Every series, or only the one key's and/or project's when named."""
    out: dict[str, dict] = {"keys": {}, "projects": {}}
    for name, series in sorted(state.usage.items()):
        kind, _, ident = name.partition(":")
        if kind == "key" and (key_id is None or ident == key_id) and (project is None or key_id is not None):
            out["keys"][ident] = {**windows(series, now), "total": _total(series)}
        elif kind == "project" and (project is None or ident == project) and (key_id is None or project is not None):
            out["projects"][ident] = {**windows(series, now), "total": _total(series)}
    return out


def _total(series) -> dict[str, int]:
    t = series.total
    return {"requests": t.requests, "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
            "rejections": t.rejections}


async def get_usage(request: Request) -> JSONResponse:
    q = request.query_params
    report = usage_report(request.app.state.cluster.state, time.time(), key_id=q.get("key_id") or None,
                          project=q.get("project") or None)
    return JSONResponse({"windows": ["1m", "1h", "24h"], **report})


ROUTES = [
    RouteSpec("GET", "/v1/usage", get_usage, "Usage per key and project over 1 min, 1 h and 24 h", "access"),
]
