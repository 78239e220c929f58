"""Placement previews: every sharding x backend x width, each a usable instance or a reason."""

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from skulk.master.placement.availability import Unavailable
from skulk.master.placement.errors import PlacementError, PlacementInfoPendingError
from skulk.master.placement.llama import LLAMA_CPP, NodeDevices, NodeEngines, card_engines
from skulk.master.placement.place import place_instance
from skulk.types.commands import PlaceInstance
from skulk.types.ids import InstanceId, ModelId, NodeId
from skulk.types.instances import Instance, InstanceMeta, LlamaRpcInstance, MlxRingInstance, Sharding
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage, NodeNetworkInfo
from skulk.types.shards import TensorShardMetadata
from skulk.types.topology import TopologySnapshot

PREVIEW_PORT = 49153  # previews are never started; any port in the ring range will do


class PlacementPreview(BaseModel):
    """One option for the dashboard: snake_case keys, the nested instance in wire form."""

    model_config = ConfigDict(frozen=True)

    model_id: ModelId
    sharding: Sharding
    instance_meta: InstanceMeta
    instance: Instance | None = None
    memory_delta_by_node: dict[NodeId, int] | None = None  # informational: bytes per node
    error: str | None = None
    offload: str | None = None  # LlamaRpc: how many layers go to which device, and why


def placement_previews(
    model_card: ModelCard,
    topology: TopologySnapshot,
    node_memory: Mapping[NodeId, MemoryUsage],
    node_network: Mapping[NodeId, NodeNetworkInfo],
    current_instances: Mapping[InstanceId, Instance],
    excluded_nodes: Iterable[NodeId] = (),
    *,
    node_names: Mapping[NodeId, str] | None = None,
    ephemeral_port: int = PREVIEW_PORT,
    node_engines: NodeEngines | None = None,
    unavailable: Unavailable | None = None,
    node_devices: NodeDevices | None = None,
) -> list[PlacementPreview]:
    """Distinct instances per (sharding, meta, width); all refusals of a pair collapse to one."""
    if not topology.nodes:
        return []
    place = _Placer(
        model_card, topology, node_memory, node_network, current_instances,
        tuple(excluded_nodes), node_names, ephemeral_port, node_engines, unavailable, node_devices,
    )
    previews: dict[tuple[Sharding, InstanceMeta, int], PlacementPreview] = {}
    for sharding in Sharding:
        for meta in _metas(model_card, sharding):
            for width in range(1, len(topology.nodes) + 1):
                preview = place(sharding, meta, width)
                if preview.error is not None:
                    # one refusal entry per pair; the widest attempt's reason wins
                    previews[(sharding, meta, 0)] = preview
                else:
                    key = (preview.sharding, preview.instance_meta, width_of(preview))
                    previews.setdefault(key, preview)
    return list(previews.values())


def _metas(card: ModelCard, sharding: Sharding) -> list[InstanceMeta]:
    """LlamaRpc is offered only for a card llama.cpp can run, and as one whole model (Pipeline)."""
    llama = LLAMA_CPP in card_engines(card) and card.gguf_file and sharding is Sharding.Pipeline
    return [m for m in InstanceMeta if m is not InstanceMeta.LlamaRpc or llama]


@dataclass(frozen=True)
class _Placer:
    """place_instance with the cluster facts bound, turning refusals into previews."""

    card: ModelCard
    topology: TopologySnapshot
    node_memory: Mapping[NodeId, MemoryUsage]
    node_network: Mapping[NodeId, NodeNetworkInfo]
    current_instances: Mapping[InstanceId, Instance]
    excluded: tuple[NodeId, ...]
    names: Mapping[NodeId, str] | None
    port: int
    engines: NodeEngines | None = None
    unavailable: Unavailable | None = None  # cordoned / no-worker nodes: skipped, named in refusals
    devices: NodeDevices | None = None  # accelerators per node: a LlamaRpc driver's GPU layer split

    def __call__(self, sharding: Sharding, meta: InstanceMeta, width: int) -> PlacementPreview:
        command = PlaceInstance(
            command_id="preview",
            model_card=self.card,
            sharding=sharding,
            instance_meta=meta,
            min_nodes=width,
            excluded_nodes=list(self.excluded),
        )
        instance_id = f"preview-{sharding.value}-{meta.value}-{width}"
        ranks = itertools.count()
        try:
            instance = place_instance(
                command,
                self.topology,
                self.current_instances,
                self.node_memory,
                self.node_network,
                instance_id=instance_id,
                runner_ids=lambda: f"{instance_id}-runner-{next(ranks)}",
                ephemeral_port=self.port,
                node_names=self.names,
                node_engines=self.engines,
                unavailable=self.unavailable,
                node_devices=self.devices,
            )
        except (PlacementError, PlacementInfoPendingError) as exc:
            return PlacementPreview(
                model_id=self.card.model_id,
                sharding=sharding,
                instance_meta=meta,
                error=exc.message,
            )
        return _instance_preview(self.card, instance)


def width_of(preview: PlacementPreview) -> int:
    return len(preview.instance.node_ids()) if preview.instance is not None else 0


def _instance_preview(card: ModelCard, instance: Instance) -> PlacementPreview:
    """Labelled by what was placed: one node always comes back as a Pipeline ring."""
    shards = instance.shard_assignments.runner_to_shard.values()
    tensor = any(isinstance(shard, TensorShardMetadata) for shard in shards)
    meta = (InstanceMeta.MlxRing if isinstance(instance, MlxRingInstance)
            else InstanceMeta.LlamaRpc if isinstance(instance, LlamaRpcInstance) else InstanceMeta.MlxJaccl)
    return PlacementPreview(
        model_id=card.model_id,
        sharding=Sharding.Tensor if tensor else Sharding.Pipeline,
        instance_meta=meta,
        instance=instance,
        memory_delta_by_node=memory_delta_by_node(card, instance.node_ids()),
        offload=instance.offload.reason if isinstance(instance, LlamaRpcInstance) and instance.offload else None,
    )


def memory_delta_by_node(card: ModelCard, nodes: Iterable[NodeId]) -> dict[NodeId, int]:
    """Weights split evenly over the nodes sorted by id; leftover bytes go to the first."""
    ordered = sorted(nodes)
    if not ordered:
        return {}
    share, extra = divmod(card.storage_size.in_bytes, len(ordered))
    return {node: share + (1 if i < extra else 0) for i, node in enumerate(ordered)}
