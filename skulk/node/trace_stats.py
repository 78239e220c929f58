"""Pure trace math: a request's timings as Chrome trace events, and per-category statistics.

No I/O here, so the API, the file store and the tests share one definition of a trace.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skulk.types.events import TraceEventData

US = 1_000_000


@dataclass(frozen=True)
class RequestTimes:
    """Wall-clock seconds of one request's milestones on the API node that owns it."""

    sent: float
    closed: float
    task_seen: float | None = None
    first_token: float | None = None
    last_token: float | None = None


def span(name: str, cat: str, start_s: float, end_s: float, rank: int, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "cat": cat, "ph": "X", "ts": int(start_s * US), "dur": max(int((end_s - start_s) * US), 0),
            "pid": rank, "tid": rank, "args": {"rank": rank, **args}}


def request_events(t: RequestTimes, args: Mapping[str, Any], rank: int = 0) -> list[dict[str, Any]]:
    """Spans for the request as a whole and its phases; a phase never reached is left out."""
    events = [span("request", "api", t.sent, t.closed, rank, args)]
    # The first token proves the task existed even if we never saw it in the state.
    seen = t.task_seen if t.task_seen is not None else t.first_token
    if seen is not None:
        events.append(span("queue_wait", "queue", t.sent, seen, rank, args))
    if t.first_token is not None:
        events.append(span("time_to_first_token", "api", t.sent, t.first_token, rank, args))
        events.append(span("prefill", "prefill", seen if seen is not None else t.sent, t.first_token, rank, args))
        events.append(span("decode", "decode", t.first_token, t.last_token or t.first_token, rank, args))
    events.append({"name": "thread_name", "ph": "M", "pid": rank, "tid": rank, "args": {"name": f"Rank {rank}"}})
    return events


def thread_name(rank: int) -> dict[str, Any]:
    return {"name": "thread_name", "ph": "M", "pid": 0, "tid": rank, "args": {"name": f"Rank {rank}"}}


def rank_events(traces: Iterable[TraceEventData]) -> list[dict[str, Any]]:
    """The runners' spans of a task (TracesMerged) as Chrome trace events: one thread per rank."""
    events = [{"name": t.name, "cat": t.category, "ph": "X", "ts": t.start_us, "dur": t.duration_us, "pid": 0,
               "tid": t.rank, "args": {"rank": t.rank, "node_id": t.node_id, "model_id": t.model_id,
                                       "task_kind": t.task_kind, "tags": list(t.tags), "attrs": dict(t.attrs)}}
              for t in traces]
    return events + [thread_name(rank) for rank in sorted({e["tid"] for e in events})]


def spans_of(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("ph") == "X"]


def _summary(durations: list[int]) -> dict[str, Any]:
    return {"totalUs": sum(durations), "count": len(durations), "minUs": min(durations),
            "maxUs": max(durations), "avgUs": sum(durations) / len(durations)}


def _by_category(spans: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for e in spans:
        groups[str(e.get("cat", ""))].append(int(e.get("dur", 0)))
    return {cat: _summary(durs) for cat, durs in sorted(groups.items())}


def trace_stats(task_id: str, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Wall time = last end - first start; totals per category and per rank x category."""
    spans = spans_of(events)
    wall = max(e["ts"] + e.get("dur", 0) for e in spans) - min(e["ts"] for e in spans) if spans else 0
    ranks: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in spans:
        ranks[str(e.get("tid", 0))].append(e)
    return {"taskId": task_id, "totalWallTimeUs": wall, "byCategory": _by_category(spans),
            "byRank": {rank: {"byCategory": _by_category(group)} for rank, group in sorted(ranks.items())}}


def source_nodes(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The nodes that contributed spans (the API's and the ranks'), in order of first appearance."""
    nodes: dict[str, Any] = {}
    for e in spans_of(events):
        args = e.get("args") or {}
        node = args.get("nodeId") or args.get("node_id")
        if node and (node not in nodes or nodes[node] == node):
            nodes[node] = args.get("friendlyName") or node
    return [{"nodeId": n, "friendlyName": name} for n, name in nodes.items()]
