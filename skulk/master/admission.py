"""Admission by queue depth, pure: which ready instance takes a request, or why none may.

An instance's depth is its open tasks (Pending + Running). A request goes to the ready instance of
its model with the smallest depth, on the asking API node's own node when depths tie. When every
ready instance already holds `limit` open tasks the request is refused (429, never queued), and when
none is ready yet it is refused with 503: the API node waits for readiness before it asks, so this
is the rare race of an instance going down in between.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime

from skulk.master.limits import project_of_key
from skulk.master.warm_cache import paused_instances
from skulk.types import events as ev
from skulk.types.ids import InstanceId, NodeId
from skulk.types.projects import Rejection
from skulk.types.runners import RunnerReady, RunnerRunning
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

OPEN = (TaskStatus.Pending, TaskStatus.Running)
PENDING_LIMIT = "pending limit"  # how a full-instance refusal's reason starts
FULL_RETRY_S = 1  # a slot frees as soon as one request ends
NOT_READY_RETRY_S = 5  # loading takes seconds to minutes


def depths(state: State) -> Counter:
    """Open tasks per instance."""
    return Counter(t.instance_id for t in state.tasks.values() if t.task_status in OPEN)


def is_ready(state: State, instance_id: InstanceId) -> bool:
    inst = state.instances.get(instance_id)
    if inst is None:
        return False
    statuses = [state.runners.get(r) for r in inst.shard_assignments.runner_to_shard]
    return bool(statuses) and all(isinstance(s, (RunnerReady, RunnerRunning)) for s in statuses)


def model_instances(state: State, model: str, exclude: Iterable[InstanceId] = ()) -> list[InstanceId]:
    skip = set(exclude)
    return sorted(iid for iid, inst in state.instances.items()
                  if inst.shard_assignments.model_id == model and iid not in skip)


def ready_instances(state: State, model: str, exclude: Iterable[InstanceId] = ()) -> list[InstanceId]:
    return [iid for iid in model_instances(state, model, exclude) if is_ready(state, iid)]


def _local(state: State, instance_id: InstanceId, node: NodeId | None) -> bool:
    return node is not None and node in state.instances[instance_id].node_ids()


def pick(state: State, model: str, owner_node: NodeId | None = None, limit: int | None = None, *,
         exclude: Iterable[InstanceId] = (), extra: Counter | None = None) -> InstanceId | None:
    """The ready instance with room and the fewest open tasks (`extra`: requests known to be on
    their way), local first on a tie; None when every ready one is full or none is ready."""
    load = depths(state) + (extra or Counter())
    room = [iid for iid in ready_instances(state, model, exclude) if limit is None or load[iid] < limit]
    if not room:
        return None
    return min(room, key=lambda iid: (load[iid], not _local(state, iid, owner_node), iid))


def command_model(c) -> str:
    """The model a serving command asks for (`model`, or its params' model on older commands)."""
    model = getattr(c, "model", None)
    return model if model else c.task_params.model


def refusal(state: State, c, limit: int) -> Rejection | None:
    """Why this GenerateText/EmbedText may not be admitted now; None when it may (an unknown model
    is left to the decider, which answers 404)."""
    model, exclude = command_model(c), getattr(c, "exclude_instances", ()) or ()
    if not model_instances(state, model, exclude):
        return None
    if not ready_instances(state, model, exclude):
        if paused_instances(state, model, exclude):
            return None  # a paused deployment's instance: the task wakes it (skulk.master.warm_cache)
        return _rejection(state, c, 503, f"no instance of {model} is ready yet; retry shortly", 0, NOT_READY_RETRY_S)
    if pick(state, model, c.owner_node, limit, exclude=exclude) is None:
        reason = f"{PENDING_LIMIT}: every ready instance of {model} already holds {limit} open requests"
        return _rejection(state, c, 429, reason, limit, FULL_RETRY_S)
    return None


def _rejection(state: State, c, status: int, reason: str, limit: int, retry_s: int) -> Rejection:
    return Rejection(command_id=c.command_id, owner_node=c.owner_node, key_id=c.key_id,
                     project=project_of_key(state, c.key_id), status=status,
                     reason=reason, limit=limit, remaining=0, reset_s=retry_s, retry_after_s=retry_s)


def admit(state: State, c, now: datetime, limit: int, decide: Callable[[], list]) -> list:
    """A serving command's events: refused for capacity, else whatever `decide` makes of it."""
    rejection = refusal(state, c, limit)
    if rejection is not None:
        return [ev.RequestRejected(rejection=rejection, at=now)]
    return decide()
