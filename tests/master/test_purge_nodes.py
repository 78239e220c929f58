"""Forgetting gone nodes: only nodes that are not live, no longer tracked and host nothing."""

from datetime import datetime, timezone

from tests.factories import ring_instance
from skulk.master.dispatch import DecideContext, decide
from skulk.master.purge import gone_nodes
from skulk.state.apply import apply_event
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.ids import Memory
from skulk.types.node import MemoryUsage
from skulk.types.state import State
from skulk.types.topology import TopologySnapshot

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
MEM = MemoryUsage(ram_total=Memory(in_bytes=1), ram_available=Memory(in_bytes=1), swap_total=Memory(in_bytes=0),
                  swap_available=Memory(in_bytes=0))


def state() -> State:
    # n1 live; n2 timed out long ago but a live node still reports an edge to it and it was cordoned;
    # n3 still in last_seen (its timeout has not come); n4 gone but hosts a shard
    return State(
        topology=TopologySnapshot(nodes=["n1", "n2", "n3", "n4"], connections={"n1": {"n2": []}}),
        last_seen={"n1": NOW, "n3": NOW}, node_maintenance={"n2": "cordoned"},
        instances={"i1": ring_instance("i1", ["n4"])})


def test_gone_nodes_keeps_live_tracked_and_hosting_ones() -> None:
    assert gone_nodes(state(), live={"n1"}) == ["n2"]


def test_forget_nodes_removes_every_trace_and_keeps_live_ones() -> None:
    ctx = DecideContext(node_memory={"n1": MEM}, now=NOW)
    events = decide(state(), cmd.ForgetNodes(), ctx)
    assert events == [ev.NodesForgotten(node_ids=["n2"], event_id=events[0].event_id)]
    after = apply_event(state(), events[0])
    assert "n2" not in after.topology.nodes and "n2" not in after.node_maintenance
    assert after.topology.connections == {} and after.topology.nodes == ["n1", "n3", "n4"]
    # naming a live node forgets nothing; forgetting twice is a no-op
    assert decide(state(), cmd.ForgetNodes(node_ids=["n1", "n3"]), ctx) == []
    assert decide(after, cmd.ForgetNodes(), ctx) == []
