"""Cluster routes: node id, replicated state with merged telemetry, events (diagnostics: routes_diagnostics)."""

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from skulk.api import routes_diagnostics
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import BadRequest, NotFound
from skulk.state.health import node_health
from skulk.types.events import TestEvent


EVENT_LOG_MODE_HEADER = "X-Skulk-Event-Log-Mode"
NEXT_SINCE_HEADER = "X-Skulk-Next-Since"  # set when `limit` cut the page: the `since` of the next one
EVENTS_PER_CHUNK = 256  # events dumped and encoded per worker-thread hop while streaming /events
MAX_EVENTS_LIMIT = 100_000


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
    return _state_doc(port.state, *port.live_telemetry(), port.session)


def _state_doc(state: Any, beats: dict, ages: dict, session: Any) -> dict[str, Any]:
    doc = _dump(state)
    doc.pop("apiKeys", None)  # salted key hashes stay inside the cluster; GET /v1/keys lists keys
    doc.pop("usage", None)  # per-key usage buckets: up to megabytes; GET /v1/usage serves them to admins
    doc["nodeIdentities"] = {n: _dump(hb.identity) for n, hb in beats.items()}
    doc["nodeMemory"] = {n: _dump(hb.memory) for n, hb in beats.items()}
    doc["nodeSystem"] = {n: _dump(hb.system) for n, hb in beats.items()}
    doc["nodeDisk"] = {n: _dump(hb.disk) for n, hb in beats.items() if hb.disk is not None}
    doc["nodeHealth"] = node_health(state, beats, ages)
    doc["sessionId"] = _dump(session) if session else None
    doc["masterNodeId"] = session.master_node_id if session else None
    return doc


async def get_state(request: Request) -> JSONResponse:
    port = _port(request)
    # Read on the loop (telemetry ages need trio's clock), dump and encode the immutable snapshot off it.
    parts = (port.state, *port.live_telemetry(), port.session)
    return await anyio.to_thread.run_sync(lambda: JSONResponse(_state_doc(*parts)))


def _paging(request: Request) -> tuple[int, int | None]:
    """`?since=<event idx>&limit=<n>`: both optional, whole numbers."""
    def number(name: str, low: int, high: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise BadRequest(f"{name} must be a whole number from {low} to {high}", param=name)
        return int(raw)
    return number("since", 0, 2**63 - 1) or 0, number("limit", 1, MAX_EVENTS_LIMIT)


def _encode_events(events: list[Any], first: bool) -> bytes:
    body = ",".join(json.dumps(public_event(_dump(ie)["event"]), ensure_ascii=False, allow_nan=False, separators=(",", ":")) for ie in events)
    return ((b"" if first or not body else b",") + body.encode())


def public_event(doc: dict[str, Any]) -> dict[str, Any]:
    """An event as /events shows it: key records without their salt and hash."""
    (tag, body), = doc.items() if len(doc) == 1 else ((None, None),)
    if tag == "ApiKeyCreated" and isinstance(body, dict):
        record = {k: v for k, v in (body.get("record") or {}).items() if k not in ("salt", "keyHash")}
        return {tag: {**body, "record": record}}
    if tag == "StateSnapshotHydrated" and isinstance(body, dict) and isinstance(body.get("state"), dict):
        return {tag: {**body, "state": {k: v for k, v in body["state"].items() if k != "apiKeys"}}}
    return doc


async def _event_array(events: list[Any]) -> AsyncIterator[bytes]:
    """The JSON array of events, encoded a chunk at a time in a worker thread."""
    yield b"["
    for start in range(0, len(events), EVENTS_PER_CHUNK):
        chunk = events[start:start + EVENTS_PER_CHUNK]
        yield await anyio.to_thread.run_sync(_encode_events, chunk, start == 0)
    yield b"]"


async def get_events(request: Request) -> Response:
    port = _port(request)
    since, limit = _paging(request)
    # The node's API-side disk log when it has one (OperationsPort), else the in-memory history.
    read_events = getattr(port, "read_events", None)
    events = await read_events() if read_events is not None else list(port.history)
    # Whether the log behind this answer is persisting or only counting (disk trouble, low space).
    mode = getattr(port, "api_event_log_mode", None) or getattr(port, "event_log_mode", None) or "unknown"
    page = [ie for ie in events if ie.idx >= since] if since else events
    headers = {EVENT_LOG_MODE_HEADER: mode}
    if limit is not None and len(page) > limit:
        page = page[:limit]
        headers[NEXT_SINCE_HEADER] = str(page[-1].idx + 1)
    return StreamingResponse(_event_array(page), media_type="application/json", headers=headers)


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
