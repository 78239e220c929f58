"""Prometheus metrics of one node, on a registry of its own (never the process-global one).

Request counts come from an ASGI middleware, generation timings from the Generation object
that sees every chunk, and the node's own numbers (streams, peers, elections, runners, event
log mode) are read from the cluster port at scrape time.
"""

import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from skulk import __version__
from skulk.types import runners as rs
from skulk.types.chunks import ErrorChunk, TokenChunk
from skulk.types.tasks import TaskStatus
from skulk.api.asgi_status import StatusRecordingSend

RUNNER_STATUSES = tuple(cls.__name__ for cls in (
    rs.RunnerIdle, rs.RunnerConnecting, rs.RunnerConnected, rs.RunnerLoading, rs.RunnerLoaded, rs.RunnerWarmingUp,
    rs.RunnerReady, rs.RunnerRunning, rs.RunnerShuttingDown, rs.RunnerShutdown, rs.RunnerFailed, rs.RunnerPaused))
EVENT_LOG_MODES = ("persisting", "counting_only", "disabled", "follower")
API_EVENT_LOG_MODES = ("persisting", "counting_only", "disabled")
MALFORMED = {"gossip": "malformed_gossip", "stream": "malformed_messages", "data": "malformed_data"}
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
TPS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

disable_created_metrics()  # the *_created series would double every counter and histogram

_BY_PORT: "weakref.WeakKeyDictionary[Any, ApiMetrics]" = weakref.WeakKeyDictionary()


def metrics_for(port: Any) -> "ApiMetrics":
    """The metrics of the node behind `port` (one registry per port, made on first use)."""
    metrics = _BY_PORT.get(port)
    if metrics is None:
        metrics = _BY_PORT[port] = ApiMetrics(port)
    return metrics


class ApiMetrics:
    def __init__(self, port: Any):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("skulk_http_requests", "HTTP requests served, by route template and status",
                                ["method", "route", "status"], registry=r)
        self.generations = Counter("skulk_generations", "Generation requests owned by this API node, by outcome",
                                   ["outcome"], registry=r)
        self.tokens = Counter("skulk_generated_tokens", "Tokens streamed to clients of this API node", registry=r)
        self.ttft = Histogram("skulk_time_to_first_token_seconds", "Seconds from request to first token",
                              buckets=TTFT_BUCKETS, registry=r)
        self.decode_tps = Histogram("skulk_decode_tokens_per_second", "Decode speed of finished generations "
                                    "(tokens after the first / seconds after the first)", buckets=TPS_BUCKETS,
                                    registry=r)
        r.register(NodeCollector(port))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def meter(self, started: float) -> "GenerationMeter":
        return GenerationMeter(self, started)


class GenerationMeter:
    """One generation's timings; `now` values are trio.current_time() readings."""

    def __init__(self, metrics: ApiMetrics, started: float):
        self._m = metrics
        self._started = started
        self._first_at: float | None = None
        self._tokens = 0

    def chunk(self, chunk: TokenChunk, now: float) -> None:
        n = len(chunk.token_ids) or (1 if chunk.text else 0)
        if n and self._first_at is None:
            self._first_at = now
            self._m.ttft.observe(now - self._started)
        self._tokens += n
        self._m.tokens.inc(n)
        if chunk.finish_reason is not None:
            self._m.generations.labels("finished").inc()
            decode_s = now - self._first_at if self._first_at is not None else 0.0
            if self._tokens > 1 and decode_s > 0:
                self._m.decode_tps.observe((self._tokens - 1) / decode_s)

    def failed(self, error: ErrorChunk) -> None:
        self._m.generations.labels("cancelled" if error.error_type == "cancelled" else "failed").inc()


class NodeCollector:
    """Reads the node's numbers from the port when scraped."""

    def __init__(self, port: Any):
        self._port = weakref.ref(port)

    def describe(self) -> list:
        return []  # collected lazily: the port may not be able to answer at registration time

    def collect(self):
        port = self._port()
        if port is None:
            return
        snapshot = getattr(port, "metrics_snapshot", None)
        snap: dict[str, Any] = snapshot() if callable(snapshot) else {}
        yield _gauge("skulk_info", "Constant 1, labelled with this node's id and version",
                     {("node_id", "version"): {(port.node_id, __version__): 1}})
        yield GaugeMetricFamily("skulk_open_streams", "Generation streams open on this API node",
                                value=snap.get("open_streams", 0))
        yield GaugeMetricFamily("skulk_connected_peers", "libp2p peers this node is connected to",
                                value=snap.get("connected_peers", 0))
        yield GaugeMetricFamily("skulk_is_master", "1 while this node is the session's master",
                                value=int(bool(snap.get("is_master", port.is_master))))
        yield GaugeMetricFamily("skulk_restart_pending", "1 while an in-place restart is scheduled",
                                value=int(bool(snap.get("restart_pending", False))))
        yield GaugeMetricFamily("skulk_event_history_length", "Indexed events GET /events can serve",
                                value=snap.get("history_length", len(port.history)))
        yield CounterMetricFamily("skulk_elections", "Election results this process has handled",
                                  value=snap.get("elections", 0))
        yield CounterMetricFamily("skulk_events_indexed", "Indexed events applied to this node's state",
                                  value=snap.get("events_applied", 0))
        mode = snap.get("event_log_mode", "follower")
        yield _gauge("skulk_event_log_mode", "1 for the master event log's current mode (follower: none here)",
                     {("mode",): {(m,): int(m == mode) for m in EVENT_LOG_MODES}})
        api_mode = snap.get("api_event_log_mode", "disabled")
        yield _gauge("skulk_api_event_log_mode", "1 for the API-side event log's current mode (it backs GET /events)",
                     {("mode",): {(m,): int(m == api_mode) for m in API_EVENT_LOG_MODES}})
        counters = snap.get("counters", {})
        malformed = CounterMetricFamily("skulk_malformed_messages", "Undecodable messages dropped, by channel",
                                        labels=["channel"])
        for channel, key in MALFORMED.items():
            malformed.add_metric([channel], counters.get(key, 0))
        yield malformed
        faults = CounterMetricFamily("skulk_faults", "Units of work dropped at a per-item guard (bad input, "
                                     "refused sender, handler failure), by kind", labels=["kind"])
        for kind, n in snap.get("faults", {}).items():
            faults.add_metric([kind], n)
        yield faults
        notified = CounterMetricFamily("skulk_notifications", "Webhook notifications this node sent as master, "
                                       "by outcome (sent, failed after retries, dropped when the queue was full, "
                                       "retried attempts)", labels=["outcome"])
        for outcome, n in snap.get("notifications", {}).items():
            notified.add_metric([outcome], n)
        yield notified
        yield from _state_gauges(port)
        yield from _usage_counters(port.state)


def _gauge(name: str, doc: str, series: dict[tuple[str, ...], dict[tuple[str, ...], float]]) -> GaugeMetricFamily:
    (labels, values), = series.items()
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


USAGE_LABEL_CAP = 256  # series per label (key ids, project names): a scrape stays small
USAGE_COUNTS = (("requests", "requests admitted"), ("prompt_tokens", "prompt tokens of finished requests"),
                ("completion_tokens", "completion tokens of finished requests"),
                ("rejections", "requests refused over a project limit"))


def _usage_counters(state: Any):
    """Cluster-wide usage per key and per project (the replicated counters, the same on every node)."""
    for kind, label in (("key", "key_id"), ("project", "project")):
        series = sorted((n.partition(":")[2], s) for n, s in getattr(state, "usage", {}).items()
                        if n.startswith(f"{kind}:"))[:USAGE_LABEL_CAP]
        for field, what in USAGE_COUNTS:
            family = CounterMetricFamily(f"skulk_{kind}_{field}", f"Cluster-wide {what}, per {label}",
                                         labels=[label])
            for ident, s in series:
                family.add_metric([ident], getattr(s.total, field))
            yield family


def _state_gauges(port: Any):
    state, node_id = port.state, port.node_id
    mine = {inst.shard_assignments.node_to_runner[node_id] for inst in state.instances.values()
            if node_id in inst.shard_assignments.node_to_runner}
    runner_counts = dict.fromkeys(RUNNER_STATUSES, 0)
    for runner_id in mine:
        status = state.runners.get(runner_id)
        if status is not None:
            runner_counts[type(status).__name__] = runner_counts.get(type(status).__name__, 0) + 1
    yield _gauge("skulk_runners", "This node's runners by status", {("status",): {(s,): n for s, n in
                                                                                     runner_counts.items()}})
    task_counts = {s.value: 0 for s in TaskStatus}
    for task in state.tasks.values():
        task_counts[task.task_status.value] = task_counts.get(task.task_status.value, 0) + 1
    yield _gauge("skulk_tasks", "Cluster tasks by status (Pending is the queue depth)",
                 {("status",): {(s,): n for s, n in task_counts.items()}})
    yield GaugeMetricFamily("skulk_instances", "Model instances placed in the cluster", value=len(state.instances))
    beats, _ = port.live_telemetry()
    yield GaugeMetricFamily("skulk_live_nodes", "Nodes heard from recently (including this one)", value=len(beats))


class RequestMetricsMiddleware:
    """Counts every HTTP request by method, route template (not raw path) and status."""

    def __init__(self, app: Any, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorder = StatusRecordingSend(send)
        try:
            await self.app(scope, receive, recorder)
        finally:
            status = recorder.status
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
