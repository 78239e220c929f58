"""The worker's planner. PURE: replicated state + this node's runners -> what to do next.

Rules run in priority order: stop what must stop, then create, then warm up (gated on every
rank of the instance having loaded), then forward and cancel tasks. A serving task is forwarded
only once its params (sent by its API node, never replicated) are here; without them it fails,
retryably, after a bounded wait. A runner process connects
its ring and loads its shard by itself as soon as it starts; warmup runs in lockstep across ranks.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from skulk.types.priority import rank
from skulk.types.ids import InstanceId, NodeId, RunnerId, TaskId
from skulk.types.deployments import DeploymentStatus
from skulk.types.runners import (
    RunnerFailed, RunnerLoaded, RunnerPaused, RunnerReady, RunnerRunning, RunnerWarmingUp,
)
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TaskStatus
from skulk.worker.params import PARAMS_WAIT_S

ACTIVE = (TaskStatus.Pending, TaskStatus.Running)
SERVING = (RunnerReady, RunnerRunning)


@dataclass(frozen=True)
class LocalRunner:
    """What this node's supervisor knows about one of its runner processes."""

    runner_id: RunnerId
    instance_id: InstanceId
    status: object  # a RunnerStatus
    forwarded: frozenset[TaskId] = frozenset()  # ever handed to the runner (this session)
    active: frozenset[TaskId] = frozenset()  # still generating in the runner
    requested: str | None = None  # the lifecycle step already asked for, not yet reported
    stopping: bool = False
    breaker_open: bool = False


@dataclass(frozen=True)
class Spawn:
    instance_id: InstanceId
    runner_id: RunnerId


@dataclass(frozen=True)
class Stop:
    runner_id: RunnerId
    reason: str


@dataclass(frozen=True)
class Step:
    """Ask a runner for its next lifecycle step: "warmup", or "pause" / "resume" (warm cache)."""

    runner_id: RunnerId
    step: str


@dataclass(frozen=True)
class Forward:
    runner_id: RunnerId
    task_id: TaskId


@dataclass(frozen=True)
class Cancel:
    runner_id: RunnerId
    task_id: TaskId


@dataclass(frozen=True)
class FailTask:
    """A task that cannot run here (its params never came): fail it with a retryable error."""

    task_id: TaskId
    error_type: str
    reason: str


@dataclass(frozen=True)
class WorkerPlanInput:
    node_id: NodeId
    state: State
    local: dict[RunnerId, LocalRunner] = field(default_factory=dict)
    params: frozenset[TaskId] = frozenset()  # serving tasks whose params this node holds
    waiting: Mapping[TaskId, float] = field(default_factory=dict)  # first seen here without params
    now: float = 0.0
    params_wait_s: float = PARAMS_WAIT_S


def plan(inp: WorkerPlanInput) -> list:
    """Every action due now, in priority order."""
    return [*_stops(inp), *_spawns(inp), *_steps(inp), *_forwards(inp), *_cancels(inp), *_params_late(inp)]


def my_runners(node_id: NodeId, state: State) -> dict[RunnerId, InstanceId]:
    return {
        inst.shard_assignments.node_to_runner[node_id]: iid
        for iid, inst in state.instances.items() if node_id in inst.shard_assignments.node_to_runner
    }


def _sibling_statuses(state: State, instance_id: InstanceId) -> list:
    inst = state.instances[instance_id]
    return [state.runners.get(rid) for rid in inst.shard_assignments.runner_to_shard]


def _stops(inp: WorkerPlanInput) -> list:
    mine = my_runners(inp.node_id, inp.state)
    actions = []
    for rid, local in inp.local.items():
        if local.stopping:
            continue
        if rid not in mine:
            actions.append(Stop(rid, "instance deleted"))
        elif not isinstance(local.status, RunnerFailed) and any(
            isinstance(s, RunnerFailed) for s in _sibling_statuses(inp.state, local.instance_id)
        ):
            actions.append(Stop(rid, "another rank of this instance failed"))
    return actions


def _spawns(inp: WorkerPlanInput) -> list:
    return [
        Spawn(iid, rid) for rid, iid in my_runners(inp.node_id, inp.state).items()
        if rid not in inp.local
    ]


def _next_step(local: LocalRunner, siblings: list) -> str | None:
    if isinstance(local.status, RunnerLoaded):
        ok = (RunnerLoaded, RunnerWarmingUp, RunnerReady, RunnerRunning)
        return "warmup" if all(isinstance(s, ok) for s in siblings) else None
    return None


def _warm_step(inp: WorkerPlanInput, local: LocalRunner) -> str | None:
    """A paused deployment's idle ready runner frees its model; once awake again, it reloads."""
    inst = inp.state.instances[local.instance_id]
    dep = inp.state.deployments.get(inst.deployment_id) if inst.deployment_id else None
    paused = dep is not None and dep.status is DeploymentStatus.paused
    if paused and isinstance(local.status, RunnerReady) and not local.active:
        open_tasks = any(t.instance_id == local.instance_id and t.task_status in ACTIVE for t in inp.state.tasks.values())
        return None if open_tasks else "pause"
    return "resume" if not paused and isinstance(local.status, RunnerPaused) else None


def _steps(inp: WorkerPlanInput) -> list:
    actions = []
    for rid, local in inp.local.items():
        if local.stopping or local.breaker_open or local.instance_id not in inp.state.instances:
            continue
        step = _warm_step(inp, local) or _next_step(local, _sibling_statuses(inp.state, local.instance_id))
        if step is not None and step != local.requested:
            actions.append(Step(rid, step))
    return actions


def _forwards(inp: WorkerPlanInput) -> list:
    actions = []
    for rid, local in inp.local.items():
        if local.stopping or local.instance_id not in inp.state.instances:
            continue
        if not all(isinstance(s, SERVING) for s in _sibling_statuses(inp.state, local.instance_id)):
            continue
        if not isinstance(local.status, SERVING):
            continue
        for tid, task in inp.state.tasks.items():
            if (isinstance(task, SERVING_TASK_TYPES) and task.instance_id == local.instance_id
                    and task.task_status in ACTIVE and tid not in local.forwarded and tid in inp.params):
                actions.append(Forward(rid, tid))
    # Sent in one go: high priority first (stable: FIFO within one) so the runner's queue sees them so.
    return sorted(actions, key=lambda a: rank(getattr(inp.state.tasks[a.task_id], "priority", None)))


def awaiting_params(inp: WorkerPlanInput) -> set[TaskId]:
    """Open serving tasks of this node's runners that still wait for their params."""
    instances = {local.instance_id for local in inp.local.values() if not local.stopping}
    return {tid for tid, task in inp.state.tasks.items()
            if isinstance(task, SERVING_TASK_TYPES) and task.instance_id in instances
            and task.task_status in ACTIVE and tid not in inp.params
            and not any(tid in local.forwarded for local in inp.local.values())}


def _params_late(inp: WorkerPlanInput) -> list:
    return [FailTask(tid, "request_params_missing",
                     f"the request's params did not reach this node within {inp.params_wait_s:g} s")
            for tid in sorted(awaiting_params(inp))
            if tid in inp.waiting and inp.now - inp.waiting[tid] >= inp.params_wait_s]


def _cancels(inp: WorkerPlanInput) -> list:
    actions = []
    for rid, local in inp.local.items():
        for tid in local.active:
            task = inp.state.tasks.get(tid)
            if task is None or task.task_status in (TaskStatus.Cancelled, TaskStatus.Failed, TaskStatus.TimedOut):
                actions.append(Cancel(rid, tid))
    return actions
