"""Last-write-wins view of gossiped heartbeats. Pure: callers pass `now` (monotonic s)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from skulk.types.ids import NodeId
from skulk.types.wire import NodeHeartbeat

# A peer's clock may be off by minutes; beyond this its sent_at is replaced by our receive time,
# so a clock at year 9999 cannot sit in views and sort orders as if it were real.
MAX_CLOCK_SKEW = timedelta(hours=1)
# Gossip is signed by whoever holds a key, and keys are free: this many nodes, then new ones wait.
MAX_NODES = 1024


def with_sane_sent_at(hb: NodeHeartbeat, wall_now: datetime) -> tuple[NodeHeartbeat, bool]:
    """The heartbeat, its sent_at replaced by `wall_now` when absurd; and whether it was."""
    sent = hb.sent_at if hb.sent_at.tzinfo is not None else hb.sent_at.replace(tzinfo=wall_now.tzinfo)
    if abs(sent - wall_now) <= MAX_CLOCK_SKEW:
        return hb, False
    return hb.model_copy(update={"sent_at": wall_now}), True


@dataclass
class TelemetryView:
    heartbeats: dict[NodeId, NodeHeartbeat] = field(default_factory=dict)
    received_at: dict[NodeId, float] = field(default_factory=dict)

    def has_room_for(self, node: NodeId) -> bool:
        return node in self.heartbeats or len(self.heartbeats) < MAX_NODES

    def update(self, hb: NodeHeartbeat, now: float) -> bool:
        """Record a heartbeat; True if the node was not known (or had gone stale) before."""
        is_new = hb.node_id not in self.heartbeats
        self.heartbeats[hb.node_id] = hb
        self.received_at[hb.node_id] = now
        return is_new

    def prune(self, now: float, timeout: float) -> list[NodeId]:
        stale = [n for n, t in self.received_at.items() if now - t > timeout]
        for n in stale:
            self.heartbeats.pop(n, None)
            self.received_at.pop(n, None)
        return stale

    def live(self, now: float, timeout: float) -> dict[NodeId, NodeHeartbeat]:
        return {n: hb for n, hb in self.heartbeats.items() if now - self.received_at[n] <= timeout}

    def age(self, node: NodeId, now: float) -> float | None:
        t = self.received_at.get(node)
        return None if t is None else now - t
