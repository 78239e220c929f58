"""Pure sender authorization: which events a peer may put into the log, judged by its peer id.

A worker may state facts about itself only: its node's info, its runners, the tasks its node
runs, its own topology edges, downloads and trace spans. Decisions that change the cluster
(instances, config, removals, snapshots) come from the master's own deciders, never from peers.
"""

from collections.abc import Callable

from skulk.types import events as ev
from skulk.types.ids import NodeId
from skulk.types.state import State

Reason = str | None


def origin_problem(peer: NodeId, origin: str) -> Reason:
    """An origin belongs to the peer whose id it starts with ("<peer>" or "<peer>/<anything>")."""
    if origin == peer or origin.startswith(f"{peer}/"):
        return None
    return f"origin {origin[:80]!r} does not belong to sender {peer}"


def _about_node(node_id: NodeId, peer: NodeId, what: str) -> Reason:
    return None if node_id == peer else f"{what} about node {node_id} sent by {peer}"


def _node_info(state: State, peer: NodeId, e: ev.NodeGatheredInfo) -> Reason:
    return _about_node(e.node_id, peer, "node info")


def _runner_status(state: State, peer: NodeId, e: ev.RunnerStatusUpdated) -> Reason:
    for inst in state.instances.values():
        if e.runner_id in inst.shard_assignments.runner_to_shard:
            if inst.shard_assignments.node_to_runner.get(peer) == e.runner_id:
                return None
            return f"runner {e.runner_id} is not assigned to {peer}"
    return None  # a runner of no instance: apply() ignores it, a late report after deletion


def _task_report(state: State, peer: NodeId, e: ev.TaskStatusUpdated | ev.TaskFailed) -> Reason:
    task = state.tasks.get(e.task_id)
    if task is None:
        return None  # unknown task: the sequencer drops stale task reports itself
    inst = state.instances.get(task.instance_id)
    if inst is None:
        return f"task {e.task_id}: its instance {task.instance_id} is gone"
    if peer not in inst.shard_assignments.node_to_runner:
        return f"task {e.task_id} does not run on {peer}"
    return None


def _edge(state: State, peer: NodeId, e: ev.TopologyEdgeCreated | ev.TopologyEdgeDeleted) -> Reason:
    return _about_node(e.conn.source, peer, "topology edge")


def _new_edge(state: State, peer: NodeId, e: ev.TopologyEdgeCreated) -> Reason:
    """An edge adds its ends to the topology: both must be nodes already known by their own info."""
    unknown = [n for n in (e.conn.source, e.conn.sink) if n not in state.topology.nodes]
    return _edge(state, peer, e) or (f"edge to unknown node {unknown[0][:64]}" if unknown else None)


def _download(state: State, peer: NodeId, e: ev.NodeDownloadProgress) -> Reason:
    return _about_node(e.download_progress.node_id, peer, "download progress")


def _traces(state: State, peer: NodeId, e: ev.TracesCollected) -> Reason:
    return _about_node(e.node_id, peer, "trace spans")


def _harmless(state: State, peer: NodeId, e) -> Reason:
    return None


_ALLOWED: dict[type, Callable[[State, NodeId, object], Reason]] = {
    ev.TestEvent: _harmless,  # the debug route's marker events; they change nothing
    ev.NodeGatheredInfo: _node_info,
    ev.RunnerStatusUpdated: _runner_status,
    ev.TaskStatusUpdated: _task_report,
    ev.TaskFailed: _task_report,
    ev.TopologyEdgeCreated: _new_edge,
    ev.TopologyEdgeDeleted: _edge,
    ev.NodeDownloadProgress: _download,
    ev.TracesCollected: _traces,
}


def authorize_event(state: State, peer: NodeId, event) -> Reason:
    """None if `peer` may say `event`, else why not. Anything not listed is a master decision."""
    check = _ALLOWED.get(type(event))
    if check is None:
        return f"{type(event).__name__} is decided by the master, not sent by peers"
    return check(state, peer, event)
