"""Pure master decisions for placement and serving commands."""

from collections.abc import Mapping, Sequence
from datetime import datetime

from skulk.errors import NotFound
from skulk.master import admission
from skulk.master.limits import finish_usage
from skulk.master.placement import place_instance, unavailable_nodes
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.devices import DeviceInfo
from skulk.types.ids import InstanceId, NodeId, RunnerId, TaskId
from skulk.types.instances import InstanceMeta, Sharding
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage
from skulk.types.runners import RunnerReady, RunnerRunning
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TaskStatus, TextEmbedding, TextGeneration

ACTIVE = (TaskStatus.Pending, TaskStatus.Running)


def decide_place_instance(
    state: State, c: cmd.PlaceInstance, node_memory: Mapping[NodeId, MemoryUsage], *,
    instance_id: InstanceId, runner_ids: Sequence[RunnerId], port: int,
    node_names: Mapping[NodeId, str] | None = None, auto_placed: bool = False,
    node_engines: Mapping[NodeId, Sequence[str]] | None = None, no_worker: frozenset[NodeId] = frozenset(),
    node_devices: Mapping[NodeId, Sequence[DeviceInfo]] | None = None,
) -> list:
    instance = place_instance(c, state.topology, state.instances, node_memory, state.node_network,
                              instance_id=instance_id, runner_ids=runner_ids, ephemeral_port=port,
                              node_names=node_names, node_engines=node_engines, node_devices=node_devices,
                              unavailable=unavailable_nodes(state.node_maintenance, no_worker))
    return [ev.InstanceCreated(instance=instance, auto_placed=auto_placed)]


def instance_is_ready(state: State, instance_id: InstanceId) -> bool:
    inst = state.instances[instance_id]
    statuses = [state.runners.get(r) for r in inst.shard_assignments.runner_to_shard]
    return all(isinstance(s, (RunnerReady, RunnerRunning)) for s in statuses)


def instances_for_model(state: State, model_id: str) -> list[InstanceId]:
    return sorted(iid for iid, inst in state.instances.items() if inst.shard_assignments.model_id == model_id)


def choose_instance(state: State, model_id: str, exclude: Sequence[InstanceId] = (),
                    owner_node: NodeId | None = None) -> InstanceId:
    """The ready instance with the fewest open tasks, the owner's own first on a tie (see
    skulk.master.admission); else the least loaded instance of the model."""
    candidates = [iid for iid in instances_for_model(state, model_id) if iid not in exclude]
    if not candidates:
        raise NotFound(f"No instance found for model {model_id}", code="model_not_found")
    load = admission.depths(state)
    return admission.pick(state, model_id, owner_node, exclude=exclude) or min(candidates, key=lambda i: (load[i], i))


def decide_generate_text(state: State, c: cmd.GenerateText, *, task_id: TaskId) -> list:
    instance_id = choose_instance(state, c.model, c.exclude_instances, c.owner_node)
    task = TextGeneration(task_id=task_id, instance_id=instance_id, command_id=c.command_id,
                          owner_node=c.owner_node, trace_enabled=state.tracing_enabled, model=c.model,
                          priority=c.priority)
    return [ev.TaskCreated(task_id=task_id, task=task)]


def decide_embed_text(state: State, c: cmd.EmbedText, *, task_id: TaskId) -> list:
    instance_id = choose_instance(state, c.model, owner_node=c.owner_node)
    task = TextEmbedding(task_id=task_id, instance_id=instance_id, command_id=c.command_id,
                         owner_node=c.owner_node, trace_enabled=state.tracing_enabled, model=c.model)
    return [ev.TaskCreated(task_id=task_id, task=task)]


def _task_of_command(state: State, command_id: str) -> TaskId | None:
    for tid, task in state.tasks.items():
        if isinstance(task, SERVING_TASK_TYPES) and task.command_id == command_id:
            return tid
    return None


def decide_cancel_command(state: State, c: cmd.CancelCommand) -> list:
    """One end signal: workers stop a task that left the state, and its owner ends the stream."""
    tid = _task_of_command(state, c.cancelled_command_id)
    return [] if tid is None else [ev.TaskDeleted(task_id=tid)]


def decide_finish_command(state: State, c: cmd.FinishCommand, now: datetime | None = None) -> list:
    """One end signal that also carries the tokens the key's limits count (with `now`)."""
    tid = _task_of_command(state, c.finished_command_id)
    if tid is None:
        return []
    usage = finish_usage(state.tasks[tid], c.usage, now) if now is not None else {}
    return [ev.TaskDeleted(task_id=tid, **usage)]


def auto_place_command(state: State, card: ModelCard,
                       instance_meta: InstanceMeta = InstanceMeta.MlxRing) -> cmd.PlaceInstance | None:
    """The default model goes on one node once, in a cluster that has no instance at all."""
    if state.auto_place_done or state.instances or not state.topology.nodes:
        return None
    return cmd.PlaceInstance(model_card=card, sharding=Sharding.Pipeline,
                             instance_meta=instance_meta, min_nodes=1)


def decide_refusal(state: State, c: cmd.RefuseInstancePlacement) -> tuple[list, cmd.PlaceInstance | None]:
    """A worker could not fit its shard: drop the instance and ask for one node wider."""
    inst = state.instances.get(c.instance_id)
    if inst is None:
        return [], None
    reason = f"node {c.node_id} refused its shard: {c.reason}"
    shards = list(inst.shard_assignments.runner_to_shard.values())
    card, world = shards[0].model_card, len(shards)
    sharding = Sharding.Tensor if type(shards[0]).__name__.startswith("Tensor") else Sharding.Pipeline
    wider = cmd.PlaceInstance(model_card=card, sharding=sharding, instance_meta=InstanceMeta.MlxRing,
                              min_nodes=world + 1)
    return [ev.InstanceDeleted(instance_id=c.instance_id, reason=reason)], wider
