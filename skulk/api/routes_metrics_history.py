"""GET /v1/metrics/history: any node answers for any node (another's is asked of its own API)."""

import math
import time
from datetime import datetime
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skulk.api.peers import call_peer
from skulk.api.port import ClusterPort
from skulk.api.routing import RouteSpec
from skulk.errors import BadRequest, Unavailable

PATH = "/v1/metrics/history"
DEFAULT_SPAN_S = 3600.0
MAX_STEP_S = 86_400.0
MAX_NODE_ID = 128


class MetricSample(BaseModel):
    at: float = Field(description="Unix seconds (with step: the start of the step averaged)")
    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    disk_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    accelerator_percent: float | None = Field(None, description="GPU load; null without an accelerator")
    accelerator_memory_used_bytes: int | None = None
    accelerator_memory_total_bytes: int | None = None
    tokens_per_second: float | None = Field(None, description="Tokens this node's runners produced")
    queue_depth: float | None = Field(None, description="Tasks waiting or running on this node's instances")


class MetricHistoryAnswer(BaseModel):
    node_id: str
    since: float
    until: float
    step: float | None = Field(description="Seconds averaged per sample; null: raw samples")
    sample_seconds: float | None = Field(description="The node's sampling interval")
    samples: list[MetricSample]


def parse_time(raw: str | None, name: str, default: float) -> float:
    """Unix seconds or an ISO 8601 time; 400 naming the parameter otherwise."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{name} must be unix seconds or an ISO 8601 time, not {raw[:60]!r}", param=name) from None
        if parsed.tzinfo is None:
            raise BadRequest(f"{name} needs a time zone (e.g. 2026-01-01T00:00:00Z)", param=name)
        value = parsed.timestamp()
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"{name} must be a finite time after 1970", param=name)
    return value


def parse_step(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        step = float(raw)
    except ValueError:
        raise BadRequest(f"step must be a number of seconds, not {raw[:60]!r}", param="step") from None
    if not math.isfinite(step) or not 1 <= step <= MAX_STEP_S:
        raise BadRequest(f"step must be between 1 and {MAX_STEP_S:.0f} seconds", param="step")
    return step


def parse_query(q: Any, now: float) -> tuple[float, float, float | None]:
    until = parse_time(q.get("until"), "until", now)
    since = parse_time(q.get("since"), "since", until - DEFAULT_SPAN_S)
    if since > until:
        raise BadRequest("since must not be after until", param="since")
    return since, until, parse_step(q.get("step"))


async def get_history(request: Request) -> Response:
    port: ClusterPort = request.app.state.cluster
    q = request.query_params
    node_id = q.get("node_id") or port.node_id
    if len(node_id) > MAX_NODE_ID or not node_id.isprintable():
        raise BadRequest("node_id is not a node id", param="node_id")
    since, until, step = parse_query(q, time.time())  # validated here, before any forwarding
    if node_id != port.node_id:
        resp = await call_peer(port, node_id, "GET", f"{PATH}?{request.url.query}")
        return Response(resp.content, status_code=resp.status_code, media_type="application/json")
    store = getattr(request.app.state, "metric_history", None)
    if store is None:
        raise Unavailable("This node keeps no metric history")
    used_step, samples = await trio.to_thread.run_sync(store.query, since, until, step)
    sampler = getattr(request.app.state, "metric_sampler", None)
    return JSONResponse({"node_id": port.node_id, "since": since, "until": until, "step": used_step,
                         "sample_seconds": getattr(sampler, "interval", None), "samples": samples})


ROUTES = [
    RouteSpec("GET", PATH, get_history, "A node's sampled CPU, memory, disk, accelerator, tokens/s and "
              "queue depth (node_id: any node, default this one; since/until: unix seconds or ISO 8601, "
              "default the last hour; step: seconds averaged per sample)", "metrics",
              response_model=MetricHistoryAnswer, status_codes=(200, 400, 404, 502, 503)),
]
