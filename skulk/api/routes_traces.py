"""Request traces: this node's trace files, and the cluster's through every peer's API."""

from pathlib import Path
from typing import Any

import httpx
import trio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from skulk.api.auth import forwarded_auth  # peers are asked with the caller's own key
from skulk.api.peers import FANOUT_TIMEOUT_S, fan_out, resolve_peer
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import NotFound
from skulk.node.trace_stats import source_nodes, spans_of, trace_stats
from skulk.node.traces import delete_traces, list_traces, load_trace, trace_path, valid_task_id

PEER_JSON_TIMEOUT_S = 10.0
PEER_RAW_TIMEOUT_S = 30.0


class DeleteTracesBody(BaseModel):
    taskIds: list[str]


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _dir(request: Request) -> Path | None:
    found = getattr(_port(request), "traces_dir", None)
    return Path(found) if found is not None else None


def _not_found(task_id: str) -> NotFound:
    return NotFound(f"Trace not found: {task_id}", param="task_id")


def _events(request: Request, task_id: str) -> list[dict[str, Any]]:
    events = load_trace(_dir(request), task_id)
    if events is None:
        raise _not_found(task_id)
    return events


def _named(request: Request, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank spans carry only node ids: name them from the live cluster where we can."""
    names = _port(request).node_names()
    return [{**n, "friendlyName": names.get(n["nodeId"], n["friendlyName"])} if n["friendlyName"] == n["nodeId"]
            else n for n in nodes]


async def get_traces(request: Request) -> JSONResponse:
    rows = await trio.to_thread.run_sync(list_traces, _dir(request))
    return JSONResponse({"traces": [{**r, "sourceNodes": _named(request, r["sourceNodes"])} for r in rows]})


async def get_trace(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    events = _events(request, task_id)
    return JSONResponse({"taskId": task_id, "traces": spans_of(events),
                         "sourceNodes": _named(request, source_nodes(events))})


async def get_trace_stats(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    events = _events(request, task_id)
    return JSONResponse({**trace_stats(task_id, events), "sourceNodes": _named(request, source_nodes(events))})


async def get_trace_raw(request: Request) -> Response:
    task_id = request.path_params["task_id"]
    traces_dir = _dir(request)
    path = trace_path(traces_dir, task_id) if traces_dir is not None else None
    if path is None or not path.is_file():
        raise _not_found(task_id)
    return FileResponse(path, media_type="application/json", filename=path.name)


async def post_delete_traces(request: Request) -> JSONResponse:
    body = await read_json_model(request, DeleteTracesBody)
    deleted, not_found = delete_traces(_dir(request), body.taskIds)
    return JSONResponse({"deleted": deleted, "notFound": not_found})


async def get_cluster_traces(request: Request) -> JSONResponse:
    """Local + every reachable peer's list; a task seen on several nodes is listed once."""
    port = _port(request)
    local = await trio.to_thread.run_sync(list_traces, _dir(request))
    merged: dict[str, dict[str, Any]] = {}
    for entry in await fan_out(port, "/v1/traces", {"traces": local}, "body"):
        for row in ((entry.get("body") or {}).get("traces") or []) if entry["ok"] else []:
            merged.setdefault(row.get("taskId"), row)
    rows = sorted(merged.values(), key=lambda r: r.get("createdAt") or "", reverse=True)
    return JSONResponse({"traces": rows})


async def _from_peers(port: ClusterPort, path: str, timeout: float) -> httpx.Response | None:
    """The first live peer that answers `path` with 200."""
    beats, _ = port.live_telemetry()
    async with httpx.AsyncClient(timeout=timeout, trust_env=False, headers=forwarded_auth()) as client:
        for node_id in sorted(n for n in beats if n != port.node_id):
            with trio.move_on_after(timeout):
                try:
                    url = await resolve_peer(client, port, node_id)
                    resp = await client.get(url + path)
                except (NotFound, httpx.HTTPError):
                    continue
                if resp.status_code == 200:
                    return resp
    return None


def _cluster_handler(local_handler, suffix: str, timeout: float):
    async def handler(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        traces_dir = _dir(request)
        path = trace_path(traces_dir, task_id) if traces_dir is not None else None
        if path is not None and path.is_file():
            return await local_handler(request)
        if not valid_task_id(task_id):
            raise _not_found(task_id)
        resp = await _from_peers(_port(request), f"/v1/traces/{task_id}{suffix}", timeout)
        if resp is None:
            raise _not_found(task_id)
        return Response(resp.content, media_type=resp.headers.get("content-type", "application/json"))
    return handler


get_cluster_trace = _cluster_handler(get_trace, "", PEER_JSON_TIMEOUT_S)
get_cluster_trace_stats = _cluster_handler(get_trace_stats, "/stats", PEER_JSON_TIMEOUT_S)
get_cluster_trace_raw = _cluster_handler(get_trace_raw, "/raw", PEER_RAW_TIMEOUT_S)

_FOUND = (200, 404)
# Fixed paths before the {task_id} ones: the first matching route wins.
ROUTES = [
    RouteSpec("GET", "/v1/traces", get_traces, "This node's request traces, newest first", "ops"),
    RouteSpec("GET", "/v1/traces/cluster", get_cluster_traces,
              f"Every reachable node's traces, deduplicated by task ({FANOUT_TIMEOUT_S:.0f} s per peer)", "ops"),
    RouteSpec("POST", "/v1/traces/delete", post_delete_traces, "Delete this node's traces of these tasks", "ops",
              request_model=DeleteTracesBody, status_codes=(200, 400, 422)),
    RouteSpec("GET", "/v1/traces/cluster/{task_id}", get_cluster_trace,
              "A task's trace from this node, else the first peer that has it", "ops", status_codes=_FOUND),
    RouteSpec("GET", "/v1/traces/cluster/{task_id}/stats", get_cluster_trace_stats,
              "A task's trace statistics from this node, else the first peer that has it", "ops", status_codes=_FOUND),
    RouteSpec("GET", "/v1/traces/cluster/{task_id}/raw", get_cluster_trace_raw,
              "A task's raw Chrome trace file from this node, else the first peer that has it", "ops",
              status_codes=_FOUND),
    RouteSpec("GET", "/v1/traces/{task_id}", get_trace, "One task's trace events", "ops", status_codes=_FOUND),
    RouteSpec("GET", "/v1/traces/{task_id}/stats", get_trace_stats,
              "Wall time and per-category / per-rank timings of one task's trace", "ops", status_codes=_FOUND),
    RouteSpec("GET", "/v1/traces/{task_id}/raw", get_trace_raw, "One task's Chrome trace file (chrome://tracing)",
              "ops", status_codes=_FOUND),
]
