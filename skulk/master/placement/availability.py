"""Nodes placement must skip, each with the sentence a refusal shows: cordoned, draining, no worker."""

from collections.abc import Iterable, Mapping

from skulk.master.placement.errors import PlacementError, PlacementInfoPendingError
from skulk.types.ids import NodeId

MAX_NAMED = 5  # a refusal names a few blocked nodes, then counts the rest
Unavailable = Mapping[NodeId, str]


def unavailable_nodes(maintenance: Mapping[NodeId, str], no_worker: Iterable[NodeId] = ()) -> dict[NodeId, str]:
    """node -> why it takes no shards; an operator's cordon wins over the missing worker."""
    out = {n: f"node {n} runs without a worker (--no-worker)" for n in sorted(no_worker)}
    for node, mode in sorted(maintenance.items()):
        out[node] = f"node {node} is cordoned" + (" (draining)" if mode == "draining" else "")
    return out


def no_worker_nodes(systems: Mapping[NodeId, object]) -> frozenset[NodeId]:
    """Nodes whose heartbeat says they run no worker (SystemPerformanceProfile.has_worker)."""
    return frozenset(n for n, s in systems.items() if not getattr(s, "has_worker", True))


def blocked_note(blocked: Unavailable) -> str:
    named = [blocked[n] for n in sorted(blocked)[:MAX_NAMED]]
    more = len(blocked) - len(named)
    return "; ".join(named) + (f"; and {more} more" if more else "") + " (no new shards go there)"


def with_reason(exc: PlacementError | PlacementInfoPendingError, blocked: Unavailable):
    """The same refusal (still a 503 when info is pending), saying first which nodes were skipped and why."""
    return type(exc)(f"{blocked_note(blocked)}. {exc.message}")
