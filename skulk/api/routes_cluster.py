"""Cluster routes: node id, replicated state with merged telemetry, events (diagnostics: routes_diagnostics)."""

import os
from typing import Any

import anyio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api import routes_diagnostics
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import NotFound
from skulk.state.health import node_health
from skulk.types.events import TestEvent


EVENT_LOG_MODE_HEADER = "X-Skulk-Event-Log-Mode"


class TestEventsRequest(BaseModel):
    __test__ = False
    count: int = Field(default=1, ge=1, le=10_000)
    note: str = ""


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


async def get_node_id(request: Request) -> JSONResponse:
    return JSONResponse(_port(request).node_id)


def state_document(port: ClusterPort) -> dict[str, Any]:
    """The replicated State plus the telemetry of live nodes, as /state serves it."""
    state = port.state
    beats, ages = port.live_telemetry()
    doc = _dump(state)
    doc["nodeIdentities"] = {n: _dump(hb.identity) for n, hb in beats.items()}
    doc["nodeMemory"] = {n: _dump(hb.memory) for n, hb in beats.items()}
    doc["nodeSystem"] = {n: _dump(hb.system) for n, hb in beats.items()}
    doc["nodeDisk"] = {n: _dump(hb.disk) for n, hb in beats.items() if hb.disk is not None}
    doc["nodeHealth"] = node_health(state, beats, ages)
    session = port.session
    doc["sessionId"] = _dump(session) if session else None
    doc["masterNodeId"] = session.master_node_id if session else None
    return doc


async def get_state(request: Request) -> JSONResponse:
    return JSONResponse(state_document(_port(request)))


async def get_events(request: Request) -> JSONResponse:
    port = _port(request)
    # The node's API-side disk log when it has one (OperationsPort), else the in-memory history.
    read_events = getattr(port, "read_events", None)
    events = await read_events() if read_events is not None else list(port.history)
    # Whether the log behind this answer is persisting or only counting (disk trouble, low space).
    mode = getattr(port, "api_event_log_mode", None) or getattr(port, "event_log_mode", None) or "unknown"
    # Up to a whole log's worth of events: dump and encode them off the event loop.
    return await anyio.to_thread.run_sync(
        lambda: JSONResponse([_dump(ie)["event"] for ie in events], headers={EVENT_LOG_MODE_HEADER: mode}))


async def post_test_events(request: Request) -> JSONResponse:
    if os.environ.get("SKULK_DEBUG_ROUTES") != "1":
        raise NotFound("Not Found")
    body = await read_json_model(request, TestEventsRequest)
    port = _port(request)
    for i in range(body.count):
        port.send_event(TestEvent(note=f"{body.note}{i}"))
    return JSONResponse({"queued": body.count})


ROUTES = [
    RouteSpec("GET", "/node_id", get_node_id, "This node's id (a JSON string)", "cluster"),
    RouteSpec("GET", "/state", get_state, "Replicated cluster state with live telemetry", "cluster"),
    RouteSpec("GET", "/events", get_events, "Indexed events of the current session", "cluster"),
    RouteSpec("POST", "/debug/test_events", post_test_events, "Emit test events (debug builds)",
              "debug", request_model=TestEventsRequest, include_in_schema=False),
    *routes_diagnostics.ROUTES,  # its own module; served with this group
]
