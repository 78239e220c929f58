"""Pure master decisions: a command (or a reconciliation pass) + state -> events."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from skulk.config.sync import cluster_part
from skulk.errors import NotFound
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TaskStatus

INSTANCE_LOST = (
    "The instance executing this request was lost (node disconnected or instance deleted)"
)


def decide_create_instance(state: State, c: cmd.CreateInstance) -> list:
    return [ev.InstanceCreated(instance=c.instance)]


def decide_delete_instance(state: State, c: cmd.DeleteInstance) -> list:
    if c.instance_id not in state.instances:
        raise NotFound(f"Instance not found: {c.instance_id}")
    cancels = [
        ev.TaskStatusUpdated(task_id=tid, task_status=TaskStatus.Cancelled)
        for tid, t in state.tasks.items()
        if t.instance_id == c.instance_id
        and t.task_status in (TaskStatus.Pending, TaskStatus.Running)
    ]
    return [*cancels, ev.InstanceDeleted(instance_id=c.instance_id, reason=c.reason or "deleted")]


def decide_set_tracing(state: State, c: cmd.SetTracingEnabled) -> list:
    return [ev.TracingStateChanged(enabled=c.enabled)]


def decide_set_cluster_config(state: State, c: cmd.SetClusterConfig) -> list:
    config = cluster_part(c.config)  # hf_token and per-machine keys never leave their node
    return [] if config == state.cluster_config else [ev.ClusterConfigChanged(config=config)]


def decide_command(state: State, command) -> list:
    """Events for a command. Commands handled elsewhere (placement, serving) return []."""
    handler = _DECIDERS.get(type(command))
    return handler(state, command) if handler else []


_DECIDERS = {
    cmd.CreateInstance: decide_create_instance,
    cmd.DeleteInstance: decide_delete_instance,
    cmd.SetTracingEnabled: decide_set_tracing,
    cmd.SetClusterConfig: decide_set_cluster_config,
}


@dataclass(frozen=True)
class ReconcileParams:
    node_timeout: timedelta
    settle_grace: timedelta


def reconcile(state: State, now: datetime, master_started: datetime, p: ReconcileParams) -> list:
    """Liveness pass: fail orphaned tasks first, then drop dead instances and nodes."""
    settled = now - master_started >= p.settle_grace
    timed_out = [n for n, seen in state.last_seen.items() if now - seen > p.node_timeout] if settled else []
    gone = set(timed_out)
    if settled:
        gone |= {n for inst in state.instances.values() for n in inst.node_ids() if n not in state.topology.nodes}
    dying = {iid for iid, inst in state.instances.items() if gone & set(inst.node_ids())}
    failures = [
        ev.TaskFailed(task_id=tid, error_type="instance_lost", error_message=INSTANCE_LOST)
        for tid, t in state.tasks.items()
        if isinstance(t, SERVING_TASK_TYPES)
        and t.task_status in (TaskStatus.Pending, TaskStatus.Running)
        and (t.instance_id in dying or t.instance_id not in state.instances)
    ]
    deletions = [ev.InstanceDeleted(instance_id=iid, reason="node lost") for iid in sorted(dying)]
    return [*failures, *deletions, *(ev.NodeTimedOut(node_id=n) for n in timed_out)]
