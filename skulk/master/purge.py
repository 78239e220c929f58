"""Forgetting nodes that are gone (the danger zone's purge). Pure."""

from collections.abc import Collection

from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.state import State


def known_nodes(state: State) -> set[str]:
    """Every node the replicated state still holds something about."""
    nodes = {*state.topology.nodes, *state.last_seen, *state.node_network, *state.downloads,
             *state.node_thunderbolt, *state.node_thunderbolt_bridge, *state.node_maintenance}
    for source, sinks in state.topology.connections.items():
        nodes.update((source, *sinks))
    return nodes


def gone_nodes(state: State, live: Collection[str]) -> list[str]:
    """Known nodes that are not live, no longer tracked for liveness (their timeout already came)
    and host no shard: forgetting them changes nothing that runs."""
    hosting = {n for inst in state.instances.values() for n in inst.shard_assignments.node_to_runner}
    return sorted(known_nodes(state) - set(live) - set(state.last_seen) - hosting)


def decide_forget_nodes(state: State, c: cmd.ForgetNodes, live: Collection[str]) -> list:
    """The master forgets only what is gone by its own view, whatever the caller listed."""
    asked = set(c.node_ids) if c.node_ids is not None else None
    gone = [n for n in gone_nodes(state, live) if asked is None or n in asked]
    return [ev.NodesForgotten(node_ids=gone)] if gone else []
