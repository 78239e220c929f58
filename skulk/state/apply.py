"""apply(state, indexed_event) -> state. Pure: no clock, no I/O; State is never mutated."""

from collections.abc import Callable
from typing import Any

from skulk.state.topology import add_edge, add_node, remove_edge, remove_node
from skulk.state.usage import key_series, project_series, record_all
from skulk.types import events as ev
from skulk.types.deployments import DeploymentStatus
from skulk.types.node import NodeNetworkInfo, NodeNetworkInterfaces
from skulk.types.projects import MAX_REJECTIONS
from skulk.types.runners import RunnerShutdown
from skulk.types.state import State
from skulk.types.tasks import TaskStatus


class OutOfOrderEvent(ValueError):
    """An indexed event that does not directly follow the last applied one."""


def apply(state: State, indexed: ev.IndexedEvent) -> State:
    """Fold one indexed event in; indices must be contiguous."""
    event = indexed.event
    if isinstance(event, ev.StateSnapshotHydrated):
        return event.state.model_copy(update={"last_event_applied_idx": indexed.idx})
    if indexed.idx != state.last_event_applied_idx + 1:
        raise OutOfOrderEvent(
            f"event idx {indexed.idx} after {state.last_event_applied_idx}"
        )
    new_state = apply_event(state, event)
    return new_state.model_copy(update={"last_event_applied_idx": indexed.idx})


def apply_event(state: State, event: Any) -> State:
    handler = _HANDLERS.get(type(event))
    return handler(state, event) if handler else state


def _with(state: State, **fields: Any) -> State:
    return state.model_copy(update=fields)


def _without(mapping: dict, *keys: Any) -> dict:
    return {k: v for k, v in mapping.items() if k not in keys}


def apply_task_created(state: State, e: ev.TaskCreated) -> State:
    fields: dict[str, Any] = {"tasks": {**state.tasks, e.task_id: e.task}}
    key_id = getattr(e.task, "key_id", None)
    if e.at is not None and key_id:  # one request counted for the key and its project
        fields["usage"] = record_all(state.usage, _series(key_id, e.task.project), int(e.at.timestamp()),
                                     requests=1)
    return _with(state, **fields)


def apply_task_status_updated(state: State, e: ev.TaskStatusUpdated) -> State:
    task = state.tasks.get(e.task_id)
    if task is None:
        return state
    update: dict[str, Any] = {"task_status": e.task_status}
    if e.task_status != TaskStatus.Failed and hasattr(task, "error_type"):
        update |= {"error_type": None, "error_message": None}
    return _with(state, tasks={**state.tasks, e.task_id: task.model_copy(update=update)})


def apply_task_failed(state: State, e: ev.TaskFailed) -> State:
    task = state.tasks.get(e.task_id)
    if task is None:
        return state
    update: dict[str, Any] = {"task_status": TaskStatus.Failed}
    if hasattr(task, "error_type"):
        update |= {"error_type": e.error_type, "error_message": e.error_message}
    return _with(state, tasks={**state.tasks, e.task_id: task.model_copy(update=update)})


def apply_task_deleted(state: State, e: ev.TaskDeleted) -> State:
    fields: dict[str, Any] = {"tasks": _without(state.tasks, e.task_id)}
    task = state.tasks.get(e.task_id)
    key_id = getattr(task, "key_id", None)
    if e.at is not None and key_id and (e.prompt_tokens or e.completion_tokens):  # the request's tokens
        fields["usage"] = record_all(state.usage, _series(key_id, task.project), int(e.at.timestamp()),
                                     prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens)
    return _with(state, **fields)


def apply_instance_created(state: State, e: ev.InstanceCreated) -> State:
    instance = e.instance
    fields: dict[str, Any] = {"instances": {**state.instances, instance.instance_id: instance}}
    if e.auto_placed:
        fields["auto_place_done"] = True
    if e.project is not None or state.instance_projects:  # entries of deleted instances go here too
        kept = {i: p for i, p in state.instance_projects.items() if i in state.instances}
        fields["instance_projects"] = {**kept, **({instance.instance_id: e.project} if e.project else {})}
    return _with(state, **fields)


def apply_instance_deleted(state: State, e: ev.InstanceDeleted) -> State:
    instance = state.instances.get(e.instance_id)
    if instance is None:
        return state
    runner_ids = set(instance.shard_assignments.runner_to_shard)
    return _with(
        state,
        instances=_without(state.instances, e.instance_id),
        runners=_without(state.runners, *runner_ids),
    )


def _owned_runner_ids(state: State) -> set[str]:
    return {
        rid for inst in state.instances.values() for rid in inst.shard_assignments.runner_to_shard
    }


def apply_runner_status_updated(state: State, e: ev.RunnerStatusUpdated) -> State:
    if isinstance(e.runner_status, RunnerShutdown):
        return _with(state, runners=_without(state.runners, e.runner_id))
    if e.runner_id not in _owned_runner_ids(state):
        return state  # no resurrection of runners whose instance is gone
    return _with(state, runners={**state.runners, e.runner_id: e.runner_status})


def apply_node_timed_out(state: State, e: ev.NodeTimedOut) -> State:
    node = e.node_id
    dead = {
        iid: inst for iid, inst in state.instances.items()
        if node in inst.shard_assignments.node_to_runner
    }
    dead_runners = {rid for inst in dead.values() for rid in inst.shard_assignments.runner_to_shard}
    tasks = {tid: t for tid, t in state.tasks.items() if t.instance_id not in dead}
    return _with(
        state,
        topology=remove_node(state.topology, node),
        instances=_without(state.instances, *dead),
        runners=_without(state.runners, *dead_runners),
        tasks=tasks,
        last_seen=_without(state.last_seen, node),
        downloads=_without(state.downloads, node),
        node_network=_without(state.node_network, node),
        node_thunderbolt=_without(state.node_thunderbolt, node),
        node_thunderbolt_bridge=_without(state.node_thunderbolt_bridge, node),
    )


def apply_node_gathered_info(state: State, e: ev.NodeGatheredInfo) -> State:
    fields: dict[str, Any] = {
        "topology": add_node(state.topology, e.node_id),
        "last_seen": {**state.last_seen, e.node_id: e.when},
    }
    if isinstance(e.info, NodeNetworkInterfaces):
        info = NodeNetworkInfo(interfaces=e.info.ifaces)
        fields["node_network"] = {**state.node_network, e.node_id: info}
    return _with(state, **fields)


def apply_node_download_progress(state: State, e: ev.NodeDownloadProgress) -> State:
    progress = e.download_progress
    entries = [d for d in state.downloads.get(progress.node_id, []) if d.model_id != progress.model_id]
    entries.append(progress)
    return _with(state, downloads={**state.downloads, progress.node_id: entries})


def apply_topology_edge_created(state: State, e: ev.TopologyEdgeCreated) -> State:
    return _with(state, topology=add_edge(state.topology, e.conn))


def apply_topology_edge_deleted(state: State, e: ev.TopologyEdgeDeleted) -> State:
    return _with(state, topology=remove_edge(state.topology, e.conn))


def apply_tracing_state_changed(state: State, e: ev.TracingStateChanged) -> State:
    return _with(state, tracing_enabled=e.enabled)


def apply_cluster_config_changed(state: State, e: ev.ClusterConfigChanged) -> State:
    return _with(state, cluster_config=dict(e.config))


def apply_api_key_created(state: State, e: ev.ApiKeyCreated) -> State:
    return _with(state, api_keys={**state.api_keys, e.record.id: e.record})


def apply_api_key_revoked(state: State, e: ev.ApiKeyRevoked) -> State:
    return _with(state, api_keys=_without(state.api_keys, e.key_id))


def apply_api_keys_touched(state: State, e: ev.ApiKeysTouched) -> State:
    keys = dict(state.api_keys)
    for key_id, when in e.last_used.items():
        record = keys.get(key_id)
        if record is not None and (record.last_used_at is None or when > record.last_used_at):
            keys[key_id] = record.model_copy(update={"last_used_at": when})
    return _with(state, api_keys=keys)


def apply_project_created(state: State, e: ev.ProjectCreated) -> State:
    return _with(state, projects={**state.projects, e.project.name: e.project})


def apply_project_deleted(state: State, e: ev.ProjectDeleted) -> State:
    return _with(state, projects=_without(state.projects, e.name))


def _series(key_id: str | None, project: str | None) -> list[str]:
    return [*([key_series(key_id)] if key_id else []), *([project_series(project)] if project else [])]


def apply_usage_recorded(state: State, e: ev.UsageRecorded) -> State:
    usage = record_all(state.usage, _series(e.key_id, e.project), int(e.at.timestamp()), requests=e.requests,
                       prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens)
    return _with(state, usage=usage)


def apply_request_rejected(state: State, e: ev.RequestRejected) -> State:
    r = e.rejection
    rejections = {**state.rejections, r.command_id: r}
    while len(rejections) > MAX_REJECTIONS:  # insertion order: the oldest refusal goes first
        del rejections[next(iter(rejections))]
    usage = record_all(state.usage, _series(r.key_id, r.project), int(e.at.timestamp()), rejections=1)
    return _with(state, rejections=rejections, usage=usage)


def apply_node_cordoned(state: State, e: ev.NodeCordoned) -> State:
    mode = "draining" if e.draining else "cordoned"
    return _with(state, node_maintenance={**state.node_maintenance, e.node_id: mode})


def apply_node_uncordoned(state: State, e: ev.NodeUncordoned) -> State:
    return _with(state, node_maintenance=_without(state.node_maintenance, e.node_id))


def apply_nodes_forgotten(state: State, e: ev.NodesForgotten) -> State:
    topology = state.topology
    for node in e.node_ids:
        topology = remove_node(topology, node)
    gone = e.node_ids
    return _with(state, topology=topology, last_seen=_without(state.last_seen, *gone),
                 downloads=_without(state.downloads, *gone), node_network=_without(state.node_network, *gone),
                 node_thunderbolt=_without(state.node_thunderbolt, *gone),
                 node_thunderbolt_bridge=_without(state.node_thunderbolt_bridge, *gone),
                 node_maintenance=_without(state.node_maintenance, *gone))


def apply_deployment_created(state: State, e: ev.DeploymentCreated) -> State:
    d = e.deployment
    return _with(state, deployments={**state.deployments, d.deployment_id: d})


def apply_deployment_updated(state: State, e: ev.DeploymentUpdated) -> State:
    d = e.deployment
    if d.deployment_id not in state.deployments:
        return state  # deleted meanwhile: an update never resurrects it
    return _with(state, deployments={**state.deployments, d.deployment_id: d})


def _update_deployment(state: State, deployment_id: str, **fields: Any) -> State:
    d = state.deployments.get(deployment_id)
    if d is None:
        return state
    return _with(state, deployments={**state.deployments, deployment_id: d.model_copy(update=fields)})


def apply_deployment_status_changed(state: State, e: ev.DeploymentStatusChanged) -> State:
    return _update_deployment(state, e.deployment_id, status=e.status, reason=e.reason)


def apply_deployment_deleted(state: State, e: ev.DeploymentDeleted) -> State:
    return _with(state, deployments=_without(state.deployments, e.deployment_id))


def apply_lease_expiring(state: State, e: ev.LeaseExpiring) -> State:
    return _update_deployment(state, e.deployment_id, expiry_warned=True)


def apply_lease_expired(state: State, e: ev.LeaseExpired) -> State:
    return _update_deployment(state, e.deployment_id, status=DeploymentStatus.stopping, reason="lease expired")


_HANDLERS: dict[type, Callable[[State, Any], State]] = {
    ev.TaskCreated: apply_task_created,
    ev.TaskStatusUpdated: apply_task_status_updated,
    ev.TaskFailed: apply_task_failed,
    ev.TaskDeleted: apply_task_deleted,
    ev.InstanceCreated: apply_instance_created,
    ev.InstanceDeleted: apply_instance_deleted,
    ev.RunnerStatusUpdated: apply_runner_status_updated,
    ev.NodeTimedOut: apply_node_timed_out,
    ev.NodeGatheredInfo: apply_node_gathered_info,
    ev.NodeDownloadProgress: apply_node_download_progress,
    ev.TopologyEdgeCreated: apply_topology_edge_created,
    ev.TopologyEdgeDeleted: apply_topology_edge_deleted,
    ev.TracingStateChanged: apply_tracing_state_changed,
    ev.ClusterConfigChanged: apply_cluster_config_changed,
    ev.ApiKeyCreated: apply_api_key_created,
    ev.ApiKeyRevoked: apply_api_key_revoked,
    ev.ApiKeysTouched: apply_api_keys_touched,
    ev.ProjectCreated: apply_project_created,
    ev.ProjectDeleted: apply_project_deleted,
    ev.UsageRecorded: apply_usage_recorded,
    ev.RequestRejected: apply_request_rejected,
    ev.NodeCordoned: apply_node_cordoned,
    ev.NodeUncordoned: apply_node_uncordoned,
    ev.NodesForgotten: apply_nodes_forgotten,
    ev.DeploymentCreated: apply_deployment_created,
    ev.DeploymentUpdated: apply_deployment_updated,
    ev.DeploymentStatusChanged: apply_deployment_status_changed,
    ev.DeploymentDeleted: apply_deployment_deleted,
    ev.LeaseExpiring: apply_lease_expiring,
    ev.LeaseExpired: apply_lease_expired,
}
