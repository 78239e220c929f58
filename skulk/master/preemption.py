"""Priority preemption, pure: when a deployment's next instance does not fit, idle instances of
lower-priority deployments may be stopped to make room.

Only deployments strictly lower in priority, not pinned, serving (ready or degraded, so their
runners hold memory), with no open task and no request for `preempt_idle_seconds` are candidates,
lowest priority and least recently used first. Just enough of them are chosen for the placement to
fit once their memory is free; the preemptor is placed on a later pass, when the nodes report that
memory free. A preempted deployment waits (`preempted_by`) until its preemptor's instances are ready,
then comes back through the normal reconcile as soon as memory allows.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from skulk.errors import SkulkError
from skulk.master.memory_estimate import estimate_shard_footprint, shard_fraction
from skulk.master.serving import instance_is_ready
from skulk.state.apply import apply_event
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus
from skulk.types.ids import InstanceId, NodeId
from skulk.types.node import MemoryUsage
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

S = DeploymentStatus
PRIORITY_ORDER = {"high": 0, "normal": 1, "low": 2}
SERVING = (S.ready, S.degraded)  # paused ones hold no runner memory; starting ones are not idle
ACTIVE = (TaskStatus.Pending, TaskStatus.Running)
SETTLE_S = 30.0  # after one preemption, none more for the same deployment while the memory frees
TryPlace = Callable[[State, object], list]  # (state, ctx) -> the placement's events, or raises


@dataclass(frozen=True)
class Uses:
    """The master's record of requests (warm_cache.UseTracker): what "idle" is measured against."""

    since: datetime  # when this master started: before it every deployment counts as used
    last_used: Mapping[str, datetime] = field(default_factory=dict)
    idle_s: float | None = 60.0  # deployments.preempt_idle_seconds; None: never preempt

    def idle_for(self, deployment_id: str, now: datetime) -> float:
        return (now - max(self.last_used.get(deployment_id, self.since), self.since)).total_seconds()


def outranks(d: Deployment, other: Deployment) -> bool:
    return PRIORITY_ORDER.get(d.priority, 1) < PRIORITY_ORDER.get(other.priority, 1)


def _busy(state: State, instance_ids: set[InstanceId]) -> bool:
    return any(t.instance_id in instance_ids and t.task_status in ACTIVE for t in state.tasks.values())


def candidates(state: State, d: Deployment, now: datetime, uses: Uses) -> list[InstanceId]:
    """Instances `d` may stop, in the order they would be stopped."""
    if uses.idle_s is None:
        return []
    ranked = []
    for other in state.deployments.values():
        if other.deployment_id == d.deployment_id or not outranks(d, other) or other.pinned:
            continue
        mine = {i for i, inst in state.instances.items() if inst.deployment_id == other.deployment_id}
        if other.status not in SERVING or not mine or _busy(state, mine):
            continue
        if uses.idle_for(other.deployment_id, now) < uses.idle_s:
            continue
        used = max(uses.last_used.get(other.deployment_id, uses.since), uses.since)
        ranked.extend((-PRIORITY_ORDER.get(other.priority, 1), used, iid) for iid in sorted(mine))
    return [iid for *_, iid in sorted(ranked)]


def freed_memory(state: State, instance_ids: Sequence[InstanceId]) -> dict[NodeId, int]:
    """What stopping these instances gives back on each node: their shards' estimated footprints."""
    freed: dict[NodeId, int] = {}
    for iid in instance_ids:
        sa = state.instances[iid].shard_assignments
        for node, rid in sa.node_to_runner.items():
            shard = sa.runner_to_shard.get(rid)
            if shard is not None:
                fraction = shard_fraction(shard) or 1
                freed[node] = freed.get(node, 0) + estimate_shard_footprint(shard.model_card, fraction)
    return freed


def with_freed(node_memory: Mapping[NodeId, MemoryUsage], freed: Mapping[NodeId, int]) -> dict[NodeId, MemoryUsage]:
    out = dict(node_memory)
    for node, extra in freed.items():
        mem = out.get(node)
        if mem is not None:
            available = min(mem.ram_available.in_bytes + extra, mem.ram_total.in_bytes)
            out[node] = mem.model_copy(update={"ram_available": type(mem.ram_available)(in_bytes=available)})
    return out


def choose_victims(state: State, d: Deployment, ctx, try_place: TryPlace, uses: Uses) -> list[InstanceId]:
    """The fewest candidates (in order) whose stopping lets `d`'s next instance fit; [] when none do."""
    chosen: list[InstanceId] = []
    scratch = state
    for iid in candidates(state, d, ctx.now, uses):
        chosen.append(iid)
        scratch = apply_event(scratch, ev.InstanceDeleted(instance_id=iid, reason="preemption trial"))
        trial = replace(ctx, node_memory=with_freed(ctx.node_memory, freed_memory(state, chosen)))
        try:
            try_place(scratch, trial)
        except SkulkError:
            continue
        return chosen
    return []


def preempted_notes(state: State, d: Deployment, victims: Sequence[InstanceId]) -> tuple[str, list]:
    """The reason the victims' instances stop, and the updates that make their deployments wait for `d`."""
    reason = f"preempted by deployment {d.deployment_id} (priority {d.priority})"
    owners = sorted({state.instances[i].deployment_id for i in victims if state.instances[i].deployment_id})
    updates = [ev.DeploymentUpdated(deployment=state.deployments[o].model_copy(update={
        "preempted_by": d.deployment_id, "status": S.pending,
        "reason": f"{reason}; placed again when memory allows"})) for o in owners if o in state.deployments]
    return reason, updates


def yields_to(state: State, d: Deployment) -> str | None:
    """The deployment `d` waits for: the one that preempted it, while that one lacks ready instances."""
    p = state.deployments.get(d.preempted_by) if d.preempted_by else None
    if p is None or p.status in (S.failed, S.paused, S.stopping):
        return None
    # Ready, not merely placed: until it has loaded, the nodes' memory reports still look free.
    ready = sum(1 for iid, inst in state.instances.items()
                if inst.deployment_id == p.deployment_id and instance_is_ready(state, iid))
    return p.deployment_id if ready < p.replicas else None
