"""place_instance: one PlaceInstance command -> one new instance, as a pure function.

Ids and the ring port come in from the caller, so the same inputs give the same instance.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence

from skulk.master.memory_estimate import instance_context_token_limit
from skulk.master.placement.availability import Unavailable, with_reason
from skulk.master.placement.errors import PlacementError, PlacementInfoPendingError
from skulk.master.placement.fit import CycleVerdict
from skulk.master.placement.hosts import ring_hosts
from skulk.master.placement.layers import layer_ranges
from skulk.master.placement.llama import (
    MLX,
    NodeEngines,
    card_engines,
    check_llama_request,
    NodeDevices,
    choose_driver,
    driver_offload,
    llama_assignments,
)
from skulk.master.placement.search import PlacementRequest, choose_cycle
from skulk.types.commands import PlaceInstance
from skulk.types.ids import InstanceId, NodeId, RunnerId
from skulk.types.instances import (
    Instance,
    InstanceMeta,
    LlamaRpcInstance,
    MlxRingInstance,
    ShardAssignments,
    Sharding,
)
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage, NodeNetworkInfo
from skulk.types.shards import PipelineShardMetadata, ShardMetadata, TensorShardMetadata
from skulk.types.topology import TopologySnapshot

RunnerIds = Callable[[], RunnerId] | Sequence[RunnerId]


def place_instance(
    command: PlaceInstance,
    topology: TopologySnapshot,
    current_instances: Mapping[InstanceId, Instance],
    node_memory: Mapping[NodeId, MemoryUsage],
    node_network: Mapping[NodeId, NodeNetworkInfo],
    *,
    instance_id: InstanceId,
    runner_ids: RunnerIds,
    ephemeral_port: int,
    excluded_nodes: Iterable[NodeId] = (),
    node_names: Mapping[NodeId, str] | None = None,
    node_engines: NodeEngines | None = None,
    unavailable: Unavailable | None = None,
    node_devices: NodeDevices | None = None,
) -> Instance:
    """The instance `command` asks for, or a PlacementError / PlacementInfoPendingError.

    `excluded_nodes` adds to the command's own list. Runner ids are taken in rank order.
    `node_engines` (None: not known, no filter) keeps each engine to the nodes that have it.
    `unavailable` (node -> why: cordoned, no worker) are skipped, and a refusal names them.
    `node_devices` (accelerators from heartbeats) decide a LlamaRpc driver's GPU layer split.
    """
    blocked = {n: why for n, why in (unavailable or {}).items() if n in topology.nodes}
    try:
        return _place(command, topology, current_instances, node_memory, node_network, instance_id=instance_id,
                      runner_ids=runner_ids, ephemeral_port=ephemeral_port,
                      excluded=frozenset(excluded_nodes) | frozenset(blocked), node_names=node_names,
                      node_engines=node_engines, node_devices=node_devices)
    except (PlacementError, PlacementInfoPendingError) as exc:
        if not blocked:
            raise
        raise with_reason(exc, blocked) from exc


def _place(
    command: PlaceInstance,
    topology: TopologySnapshot,
    current_instances: Mapping[InstanceId, Instance],
    node_memory: Mapping[NodeId, MemoryUsage],
    node_network: Mapping[NodeId, NodeNetworkInfo],
    *,
    instance_id: InstanceId,
    runner_ids: RunnerIds,
    ephemeral_port: int,
    excluded: frozenset[NodeId],
    node_names: Mapping[NodeId, str] | None,
    node_engines: NodeEngines | None,
    node_devices: NodeDevices | None = None,
) -> Instance:
    if instance_id in current_instances:
        raise ValueError(f"instance id {instance_id} is already in use")
    card = command.model_card
    excluded = frozenset(command.excluded_nodes) | excluded
    if command.instance_meta is InstanceMeta.LlamaRpc:
        check_llama_request(card, command.sharding, command.min_nodes)
        driver = choose_driver(card, topology.nodes, excluded, node_memory, node_engines, node_names, node_devices)
        assignments = llama_assignments(card, driver, _take_runner_ids(runner_ids, [driver])[0])
        limit = instance_context_token_limit(assignments, {driver: node_memory[driver].ram_total.in_bytes})
        return LlamaRpcInstance(instance_id=instance_id, shard_assignments=assignments,
                                context_token_limit=limit, driver_node=driver,
                                offload=driver_offload(card, driver, node_devices, node_names))
    check_request(card, command.sharding, command.instance_meta)
    if node_engines is not None:  # MLX ranks only where MLX is installed (an empty list: not reported)
        excluded |= {n for n in topology.nodes if node_engines.get(n) and "mlx" not in node_engines[n]}
    request = PlacementRequest(
        card=card,
        sharding=command.sharding,
        min_nodes=command.min_nodes,
        excluded=excluded,
        node_memory=node_memory,
        names=node_names,
    )
    verdict = choose_cycle(request, topology)
    assignments = build_assignments(card, verdict, _take_runner_ids(runner_ids, verdict.cycle))
    ram_totals = {node: node_memory[node].ram_total.in_bytes for node in verdict.cycle}
    return MlxRingInstance(
        instance_id=instance_id,
        shard_assignments=assignments,
        context_token_limit=instance_context_token_limit(assignments, ram_totals),
        hosts_by_node=ring_hosts(verdict.cycle, ephemeral_port, topology, node_network, node_names),
        ephemeral_port=ephemeral_port,
    )


def check_request(card: ModelCard, sharding: Sharding, meta: InstanceMeta) -> None:
    """Refusals that depend only on what was asked, before looking at the cluster."""
    if meta is InstanceMeta.MlxJaccl:
        raise PlacementError(
            "Requested RDMA (MlxJaccl) but RDMA is not supported on this cluster's hardware; "
            "use MlxRing instead."
        )
    if MLX not in card_engines(card):
        raise PlacementError(f"Model {card.model_id} has no MLX weights (engines: "
                             f"{', '.join(card_engines(card))}); use instance_meta LlamaRpc.")
    if sharding is Sharding.Tensor and not card.supports_tensor:
        raise PlacementError(
            "Requested Tensor sharding but this model does not support tensor parallelism: "
            f"{card.model_id}"
        )


def build_assignments(
    card: ModelCard, verdict: CycleVerdict, runner_ids: Sequence[RunnerId]
) -> ShardAssignments:
    """One runner per rank in cycle order; Pipeline ranks get contiguous layer ranges."""
    size = len(verdict.cycle)
    tensor = verdict.sharding is Sharding.Tensor
    ranges = [(0, card.n_layers)] * size if tensor else layer_ranges(verdict.layers)
    shard_type = TensorShardMetadata if tensor else PipelineShardMetadata
    runner_to_shard: dict[RunnerId, ShardMetadata] = {}
    node_to_runner: dict[NodeId, RunnerId] = {}
    for rank, (node, runner, (start, end)) in enumerate(zip(verdict.cycle, runner_ids, ranges)):
        runner_to_shard[runner] = shard_type(
            model_card=card,
            device_rank=rank,
            world_size=size,
            start_layer=start,
            end_layer=end,
            n_layers=card.n_layers,
        )
        node_to_runner[node] = runner
    return ShardAssignments(
        model_id=card.model_id, runner_to_shard=runner_to_shard, node_to_runner=node_to_runner
    )


def _take_runner_ids(runner_ids: RunnerIds, cycle: Sequence[NodeId]) -> list[RunnerId]:
    ids = [runner_ids() for _ in cycle] if callable(runner_ids) else list(runner_ids)[: len(cycle)]
    if len(ids) < len(cycle) or len(set(ids)) != len(ids):
        raise ValueError(f"need {len(cycle)} distinct runner ids, got {ids}")
    return ids
