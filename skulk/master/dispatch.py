"""The master's one command table: (state, command, context) -> events, pure.

Everything impure a decision needs (live memory and names from telemetry, fresh ids, the ring
port, the time, the default card) is gathered by the shell into a `DecideContext` first, so
each decision is a plain function call, tested without an event loop.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from skulk.config.sync import cluster_part
from skulk.errors import BadRequest, NotFound, SkulkError
from skulk.master import deployments
from skulk.master import admission, limits, warm_cache
from skulk.master.maintenance import decide_cordon, decide_uncordon
from skulk.master.purge import decide_forget_nodes
from skulk.master.placement import auto_instance_meta
from skulk.master.serving import (
    auto_place_command, decide_cancel_command, decide_embed_text, decide_finish_command,
    decide_generate_text, decide_place_instance, decide_refusal,
)
from skulk.master.placement.availability import unavailable_nodes
from skulk.master.validate import blocked_refusal, instance_refusal
from skulk.state.apply import apply_event
from skulk.types import commands as cmd
from skulk.types.access import MAX_KEYS
from skulk.types.devices import DeviceInfo
from skulk.types import events as ev
from skulk.types.ids import InstanceId, NodeId, new_id
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

AUTO_PLACE_AFTER_S = 5.0  # let joining nodes settle into one session first
REASON_LIMIT = 2_000  # a refusal's reason ends up in state; keep it a sentence, not a dump
MAX_CONFIG_BYTES = 256 * 1024  # a skulk.yaml is a few KiB
CLOCK_SLACK_S = 60.0


@dataclass(frozen=True)
class DecideContext:
    node_memory: Mapping[NodeId, MemoryUsage] = field(default_factory=dict)  # live nodes only
    node_names: Mapping[NodeId, str] = field(default_factory=dict)
    new_id: Callable[[], str] = new_id
    ring_port: int = 61_000
    now: datetime = datetime(1970, 1, 1, tzinfo=timezone.utc)
    sender: NodeId | None = None  # the authenticated peer a command came from
    refused: frozenset[InstanceId] = frozenset()  # instances already widened once
    default_card: ModelCard | None = None
    auto_place: bool = False
    master_age_s: float = 0.0
    node_engines: Mapping[NodeId, Sequence[str]] = field(default_factory=dict)  # live nodes' engines
    engine: str = "auto"  # inference.engine: which engine serves the auto-placed default model
    no_worker: frozenset[NodeId] = frozenset()  # live nodes started with --no-worker: never given shards
    pending_limit: int = 16  # inference.pending_limit: open requests one instance accepts
    node_devices: Mapping[NodeId, Sequence[DeviceInfo]] = field(default_factory=dict)  # live nodes' accelerators
    local_config: Mapping[str, object] = field(default_factory=dict)  # this node's runner/deployments keys


def place(state: State, c: cmd.PlaceInstance, ctx: DecideContext, auto_placed: bool = False) -> list:
    project = limits.placement_project(state, c.key_id)
    runners = [ctx.new_id() for _ in range(max(len(state.topology.nodes), 1))]
    events = decide_place_instance(state, c, ctx.node_memory, instance_id=ctx.new_id(), runner_ids=runners,
                                   port=ctx.ring_port, node_names=ctx.node_names, auto_placed=auto_placed,
                                   node_engines=ctx.node_engines or None, no_worker=ctx.no_worker,
                                   node_devices=ctx.node_devices)
    return [e.model_copy(update={"project": project}) for e in events] if project else events


def decide_delete_instance(state: State, c: cmd.DeleteInstance) -> list:
    if c.instance_id not in state.instances:
        raise NotFound(f"Instance not found: {c.instance_id}")
    cancels = [
        ev.TaskStatusUpdated(task_id=tid, task_status=TaskStatus.Cancelled)
        for tid, t in state.tasks.items()
        if t.instance_id == c.instance_id
        and t.task_status in (TaskStatus.Pending, TaskStatus.Running)
    ]
    return [*cancels, ev.InstanceDeleted(instance_id=c.instance_id, reason=(c.reason or "deleted")[:REASON_LIMIT])]


def decide_set_tracing(state: State, c: cmd.SetTracingEnabled) -> list:
    return [ev.TracingStateChanged(enabled=c.enabled)]


def decide_set_cluster_config(state: State, c: cmd.SetClusterConfig) -> list:
    config = cluster_part(c.config)  # hf_token and per-machine keys never leave their node
    size = len(json.dumps(config, default=str))
    if size > MAX_CONFIG_BYTES:  # it lives in state and goes to every node
        raise BadRequest(f"cluster config of {size} bytes is over the {MAX_CONFIG_BYTES} byte limit")
    return [] if config == state.cluster_config else [ev.ClusterConfigChanged(config=config)]


def _create(state: State, c: cmd.CreateInstance, ctx: DecideContext) -> list:
    # cordoned and draining nodes only: a hand-written instance may name a --no-worker node on purpose
    refusal = instance_refusal(state, c.instance) or blocked_refusal(c.instance, unavailable_nodes(state.node_maintenance))
    if refusal is not None:
        raise BadRequest(refusal, param="instance")
    project = limits.placement_project(state, c.key_id)  # a hand-written instance counts as a placement
    return [ev.InstanceCreated(instance=c.instance, project=project)]


def _generate(state: State, c: cmd.GenerateText, ctx: DecideContext) -> list:
    c = _owned_by_sender(c, ctx)
    return admission.admit(state, c, ctx.now, ctx.pending_limit, lambda: limits.admit(
        state, c, ctx.now, lambda: decide_generate_text(state, c, task_id=ctx.new_id())))


def _embed(state: State, c: cmd.EmbedText, ctx: DecideContext) -> list:
    c = _owned_by_sender(c, ctx)
    return admission.admit(state, c, ctx.now, ctx.pending_limit, lambda: limits.admit(
        state, c, ctx.now, lambda: decide_embed_text(state, c, task_id=ctx.new_id())))


def _create_project(state: State, c: cmd.CreateProject, ctx: DecideContext) -> list:
    return limits.decide_create_project(state, c, ctx.now)


def _finish(state: State, c: cmd.FinishCommand, ctx: DecideContext) -> list:
    return decide_finish_command(state, c, ctx.now)


def _owned_by_sender(c, ctx: DecideContext):
    """Tokens go to the node that asked: the sender, whatever the command claims."""
    return c if ctx.sender is None else c.model_copy(update={"owner_node": ctx.sender})


def _refuse_placement(state: State, c: cmd.RefuseInstancePlacement, ctx: DecideContext) -> list:
    """Drop the instance and place it one node wider, once per instance, at its own node's word."""
    if c.instance_id in ctx.refused:
        return []
    inst = state.instances.get(c.instance_id)
    if inst is None:
        return []
    if ctx.sender is not None and (c.node_id != ctx.sender or c.node_id not in inst.node_ids()):
        raise BadRequest(f"{ctx.sender} may refuse only its own shards of {c.instance_id}")
    c = c.model_copy(update={"reason": c.reason[:REASON_LIMIT]})
    deleted, wider = decide_refusal(state, c)
    try:
        after = apply_event(state, deleted[0]) if deleted else state
        return deleted + deployments.retag(place(after, wider, ctx) if wider else [], inst.deployment_id)
    except SkulkError:
        return deleted  # nothing wider fits: the reason stays on the deletion


def _purge(state: State, c: cmd.PurgeStaging, ctx: DecideContext) -> list:
    return [ev.StagingPurgeRequested(model_id=c.model_id, requested_at=ctx.now)]


def _create_key(state: State, c: cmd.CreateApiKey, ctx: DecideContext) -> list:
    if c.only_if_no_admin and any(r.role == "admin" for r in state.api_keys.values()):
        return []
    if c.record.id in state.api_keys:
        same = state.api_keys[c.record.id].key_hash == c.record.key_hash
        if same:
            return []  # a configured key re-registered by another node
        raise BadRequest(f"key id {c.record.id} already exists", param="id")
    if len(state.api_keys) >= MAX_KEYS:
        raise BadRequest(f"the cluster already holds {MAX_KEYS} keys")
    return [ev.ApiKeyCreated(record=c.record)]


def _revoke_key(state: State, c: cmd.RevokeApiKey, ctx: DecideContext) -> list:
    if c.key_id not in state.api_keys:
        raise NotFound(f"API key not found: {c.key_id}")
    return [ev.ApiKeyRevoked(key_id=c.key_id)]


def _touch_keys(state: State, c: cmd.TouchApiKeys, ctx: DecideContext) -> list:
    latest = ctx.now + timedelta(seconds=CLOCK_SLACK_S)  # API nodes' clocks differ a little
    known = {k: v for k, v in c.last_used.items() if k in state.api_keys and v <= latest}
    return [ev.ApiKeysTouched(last_used=known)] if known else []


def expired_keys(state: State, now: datetime) -> list:
    """The reconcile pass drops expired keys (every node already refuses them at request time)."""
    return [ev.ApiKeyRevoked(key_id=k, reason="expired") for k, r in state.api_keys.items() if r.expired(now)]


def _nothing(state: State, c, ctx: DecideContext) -> list:
    return []


def _without_ctx(decider: Callable[[State, object], list]) -> Callable[[State, object, DecideContext], list]:
    return lambda state, c, ctx: decider(state, c)


DECIDERS: dict[type, Callable[[State, object, DecideContext], list]] = {
    cmd.TestCommand: _nothing,
    cmd.PlaceInstance: place,
    cmd.CreateInstance: _create,
    cmd.DeleteInstance: lambda state, c, ctx: deployments.with_deployment(state, c, decide_delete_instance(state, c)),
    cmd.GenerateText: _generate,
    cmd.EmbedText: _embed,
    cmd.CancelCommand: _without_ctx(decide_cancel_command),
    cmd.FinishCommand: _finish,
    cmd.SetTracingEnabled: _without_ctx(decide_set_tracing),
    cmd.SetClusterConfig: _without_ctx(decide_set_cluster_config),
    cmd.RefuseInstancePlacement: _refuse_placement,
    cmd.PurgeStaging: _purge,
    cmd.CreateApiKey: _create_key,
    cmd.RevokeApiKey: _revoke_key,
    cmd.TouchApiKeys: _touch_keys,
    cmd.CreateProject: _create_project,
    cmd.DeleteProject: _without_ctx(limits.decide_delete_project),
    cmd.CordonNode: _without_ctx(decide_cordon),
    cmd.UncordonNode: _without_ctx(decide_uncordon),
    cmd.ForgetNodes: lambda state, c, ctx: decide_forget_nodes(state, c, ctx.node_memory),  # live: kept
    cmd.CreateDeployment: lambda state, c, ctx: deployments.decide_create(state, c, ctx, place),
    cmd.DeleteDeployment: deployments.decide_delete,
    cmd.RestartDeployment: deployments.decide_restart,
    cmd.ExtendDeploymentLease: deployments.decide_extend,
    cmd.SetDeploymentPaused: deployments.decide_set_paused,
}


def decide(state: State, command, ctx: DecideContext) -> list:
    """Events for one command, or a SkulkError saying why it is refused."""
    decider = DECIDERS.get(type(command))
    if decider is None:
        raise NotFound(f"unknown command {type(command).__name__}")
    return warm_cache.with_wakes(state, decider(state, command, ctx))  # a request wakes a paused deployment


def decide_command(state: State, command, ctx: DecideContext | None = None) -> list:
    return decide(state, command, ctx or DecideContext())


def auto_place(state: State, ctx: DecideContext) -> list:
    """The reconcile pass's placement: the default model once, after the cluster settled."""
    if not ctx.auto_place or ctx.master_age_s < AUTO_PLACE_AFTER_S or ctx.default_card is None:
        return []
    meta = auto_instance_meta(ctx.default_card, ctx.engine, ctx.node_engines)
    command = auto_place_command(state, ctx.default_card, meta)
    if command is None or not ctx.node_memory or state.deployments:
        return []
    try:  # a deployment, so the default model comes back after a cold restart
        return deployments.auto_deployment(state, command, ctx, place)
    except SkulkError:
        return []  # not placeable (yet); try again next pass
