"""Diagnostics: this node's (document, flight recorder, runner cancel, capture) and the cluster's,
through each peer's own API: fanned out to every node, or proxied to one."""

import os
import socket
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk import __version__
from skulk.api.peers import FANOUT_TIMEOUT_S, call_peer, fan_out
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec
from skulk.api.validation import read_request
from skulk.errors import NotFound, Unavailable
from skulk.node.diagnostics import runner_synopses
from skulk.node.flight_recorder import merge_timelines
from skulk.probe.processes import sample_processes

SAMPLE_INTERVAL_S = 0.5


class RunnerCancelBody(BaseModel):
    taskId: str = Field(min_length=1, description="The task to stop on this runner")


class RunnerCancelResult(BaseModel):
    nodeId: str
    runnerId: str
    taskId: str
    status: Literal["cancel_requested", "already_completed", "already_cancelled"]
    message: str


class CaptureBody(BaseModel):
    runnerId: str | None = Field(default=None, description="A runner this node supervises (404 if not)")
    taskId: str | None = Field(default=None, description="A task to match a runner by, and to filter entries")
    includeProcessSamples: bool = True
    sampleDurationSeconds: float = Field(default=3.0, ge=1, le=10)


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def _master(port: ClusterPort) -> str | None:
    session = port.session
    return session.master_node_id if session else None


def node_diagnostics(port: ClusterPort) -> dict[str, Any]:
    session = port.session
    runtime = {
        "nodeId": port.node_id,
        "hostname": socket.gethostname(),
        "friendlyName": port.friendly_name,
        "isMaster": port.is_master,
        "masterNodeId": session.master_node_id if session else None,
        "sessionId": _dump(session) if session else None,
        "cwd": os.getcwd(),
        "skulkVersion": __version__,
        "skulkCommit": None,
        "pythonUnbuffered": bool(os.environ.get("PYTHONUNBUFFERED")),
        "tracingEnabled": port.state.tracing_enabled,
        "lastEventAppliedIdx": port.state.last_event_applied_idx,
        "pid": os.getpid(),
    }
    extra = port.diagnostics()
    runtime.update(extra.pop("runtime", {}))
    return {"generatedAt": _now(), "runtime": runtime, **extra}


def timeline_document(port: ClusterPort) -> dict[str, Any]:
    recorder = getattr(port, "flight_recorder", None)
    if recorder is None:
        return {"nodeId": port.node_id, "capacity": 0, "recorded": 0, "entries": []}
    return recorder.document()


async def get_node_diagnostics(request: Request) -> JSONResponse:
    return JSONResponse(node_diagnostics(_port(request)))


async def get_node_timeline(request: Request) -> JSONResponse:
    return JSONResponse({"generatedAt": _now(), **timeline_document(_port(request))})


async def get_cluster_diagnostics(request: Request) -> JSONResponse:
    port = _port(request)
    nodes = await fan_out(port, "/v1/diagnostics/node", node_diagnostics(port), key="diagnostics")
    return JSONResponse({"generatedAt": _now(), "localNodeId": port.node_id, "masterNodeId": _master(port),
                         "nodes": nodes})


async def get_cluster_timeline(request: Request) -> JSONResponse:
    """Every reachable node's flight recorder in one list ordered by time; the others are named."""
    port = _port(request)
    nodes = await fan_out(port, "/v1/diagnostics/node/timeline", timeline_document(port), key="timeline")
    timeline = merge_timelines([e["timeline"] for e in nodes if e["ok"] and isinstance(e["timeline"], dict)])
    unreachable = [{"nodeId": e["nodeId"], "url": e["url"], "error": e["error"]} for e in nodes if not e["ok"]]
    return JSONResponse({"generatedAt": _now(), "localNodeId": port.node_id, "masterNodeId": _master(port),
                         "runners": runner_synopses(port.state, timeline), "timeline": timeline,
                         "unreachableNodes": unreachable})


async def post_runner_cancel(request: Request) -> JSONResponse:
    body = await read_request(request, RunnerCancelBody)
    cancel = getattr(_port(request), "cancel_runner_task", None)
    if cancel is None:
        raise Unavailable("This node has no worker: it supervises no runners")
    return JSONResponse(await cancel(request.path_params["runner_id"], body.taskId))


def _match_runner(port: ClusterPort, rows: list[dict[str, Any]], body: CaptureBody) -> dict[str, Any] | None:
    if body.runnerId is not None:
        row = next((r for r in rows if r.get("runnerId") == body.runnerId), None)
        if row is None:
            raise NotFound(f"Runner {body.runnerId} is not supervised by this node", param="runnerId")
        return row
    if body.taskId is None:
        return None
    task = port.state.tasks.get(body.taskId)
    return next((r for r in rows if body.taskId in (r.get("activeTasks") or [])
                 or (task is not None and r.get("instanceId") == task.instance_id)), None)


async def _samples(diagnostics: dict[str, Any], runner: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    """The node process and the matched runner's (or every runner's), sampled in a thread."""
    wanted = {"node"} if runner is not None else {"node", "runner"}
    roles = {p["pid"]: p["role"] for p in diagnostics.get("processes") or []
             if p.get("role") in wanted or (runner is not None and p.get("pid") == runner.get("pid"))}
    try:
        return await trio.to_thread.run_sync(sample_processes, roles, seconds, SAMPLE_INTERVAL_S)
    except Exception as exc:  # noqa: BLE001 - a capture is best effort: keep what else it has
        return {"durationSeconds": seconds, "intervalSeconds": SAMPLE_INTERVAL_S, "samples": [],
                "errors": [f"sampling failed: {type(exc).__name__}: {exc}"]}


async def post_capture(request: Request) -> JSONResponse:
    """Everything one node can say about a runner or task now, plus a few seconds of samples."""
    body = await read_request(request, CaptureBody)
    port = _port(request)
    diagnostics = node_diagnostics(port)
    runner = _match_runner(port, diagnostics.get("supervisorRunners") or [], body)
    task = port.state.tasks.get(body.taskId) if body.taskId else None
    recorder = timeline_document(port)
    runner_id = runner.get("runnerId") if runner else None
    matched = [e for e in recorder["entries"] if (runner_id and e.get("runnerId") == runner_id)
               or (body.taskId and e.get("taskId") == body.taskId)]
    samples = await _samples(diagnostics, runner, body.sampleDurationSeconds) if body.includeProcessSamples else None
    return JSONResponse({"generatedAt": _now(), "nodeId": port.node_id, "request": body.model_dump(),
                         "diagnostics": diagnostics, "runner": runner, "task": _dump(task) if task else None,
                         "flightRecorder": recorder, "matchedEntries": matched, "processSamples": samples,
                         "mlxMemory": None})  # MLX memory lives in the runner process; not reported yet


async def _proxy(request: Request, method: str, local, path: str, timeout: float = FANOUT_TIMEOUT_S) -> Response:
    """Answer from this node when it is the target, else relay the peer's own answer verbatim."""
    port, node_id = _port(request), request.path_params["node_id"]
    if node_id == port.node_id:
        return await local(request)
    body = await request.body() if method == "POST" else None
    resp = await call_peer(port, node_id, method, path, content=body, timeout=timeout)
    return Response(resp.content, status_code=resp.status_code,
                    media_type=resp.headers.get("content-type", "application/json"))


async def get_cluster_node(request: Request) -> Response:
    return await _proxy(request, "GET", get_node_diagnostics, "/v1/diagnostics/node")


async def post_cluster_capture(request: Request) -> Response:
    # The peer samples for up to 10 s before it answers.
    return await _proxy(request, "POST", post_capture, "/v1/diagnostics/node/capture", timeout=30.0)


async def post_cluster_runner_cancel(request: Request) -> Response:
    runner = quote(request.path_params["runner_id"], safe="")
    return await _proxy(request, "POST", post_runner_cancel, f"/v1/diagnostics/node/runners/{runner}/cancel",
                        timeout=15.0)


_BODY = (200, 400, 404, 422)
# Fixed paths before {node_id}: the first matching route wins.
ROUTES = [
    RouteSpec("GET", "/v1/diagnostics/node", get_node_diagnostics, "This node's diagnostics", "diagnostics"),
    RouteSpec("GET", "/v1/diagnostics/node/timeline", get_node_timeline,
              "This node's flight recorder: its latest notable happenings, oldest first", "diagnostics"),
    RouteSpec("POST", "/v1/diagnostics/node/capture", post_capture,
              "Diagnostics of this node, a runner and a task, with a few seconds of process samples",
              "diagnostics", request_model=CaptureBody, status_codes=_BODY),
    RouteSpec("POST", "/v1/diagnostics/node/runners/{runner_id}/cancel", post_runner_cancel,
              "Stop one task on one of this node's runners", "diagnostics", request_model=RunnerCancelBody,
              response_model=RunnerCancelResult, status_codes=(*_BODY, 409, 503)),
    RouteSpec("GET", "/v1/diagnostics/cluster", get_cluster_diagnostics,
              "Every live node's diagnostics (partial failures are reported per node)", "diagnostics"),
    RouteSpec("GET", "/v1/diagnostics/cluster/timeline", get_cluster_timeline,
              "Every reachable node's flight recorder merged by time, with a synopsis of every runner",
              "diagnostics"),
    RouteSpec("GET", "/v1/diagnostics/cluster/{node_id}", get_cluster_node,
              "One node's diagnostics (this node's, or proxied to the peer)", "diagnostics",
              status_codes=(200, 404, 502)),
    RouteSpec("POST", "/v1/diagnostics/cluster/{node_id}/capture", post_cluster_capture,
              "A capture on one node (this one, or proxied to the peer)", "diagnostics",
              request_model=CaptureBody, status_codes=(*_BODY, 502)),
    RouteSpec("POST", "/v1/diagnostics/cluster/{node_id}/runners/{runner_id}/cancel", post_cluster_runner_cancel,
              "Stop one task on a runner of one node (this one, or proxied to the peer)", "diagnostics",
              request_model=RunnerCancelBody, response_model=RunnerCancelResult,
              status_codes=(*_BODY, 409, 502, 503)),
]
