"""Pure decisions for node maintenance: cordon, drain and uncordon."""

from skulk.errors import NotFound
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.ids import NodeId
from skulk.types.state import State


def known_node(state: State, node_id: NodeId) -> bool:
    return node_id in state.topology.nodes or node_id in state.last_seen


def decide_cordon(state: State, c: cmd.CordonNode) -> list:
    """Cordon (or drain) a node the cluster knows; repeating the same mode changes nothing."""
    if not known_node(state, c.node_id) and c.node_id not in state.node_maintenance:
        raise NotFound(f"Node not found: {c.node_id}")
    mode = "draining" if c.drain else "cordoned"
    if state.node_maintenance.get(c.node_id) == mode:
        return []
    return [ev.NodeCordoned(node_id=c.node_id, draining=c.drain)]


def decide_uncordon(state: State, c: cmd.UncordonNode) -> list:
    if c.node_id not in state.node_maintenance:
        if not known_node(state, c.node_id):
            raise NotFound(f"Node not found: {c.node_id}")
        return []
    return [ev.NodeUncordoned(node_id=c.node_id)]
