"""Placed model instances: which runner on which node holds which shard."""

from enum import Enum

from pydantic import Field, model_validator

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.devices import GpuOffload
from skulk.types.ids import InstanceId, ModelId, NodeId, RunnerId
from skulk.types.shards import ShardMetadata


LLAMA_CPP_BACKEND = "llama_cpp"  # a shard's resolved_backend when llama.cpp runs it


class Sharding(str, Enum):
    Pipeline = "Pipeline"
    Tensor = "Tensor"


class InstanceMeta(str, Enum):
    MlxRing = "MlxRing"
    MlxJaccl = "MlxJaccl"
    LlamaRpc = "LlamaRpc"  # llama.cpp on one driver node (donor nodes over RPC are not built yet)


class Host(WireModel):
    ip: str
    port: int


class ShardAssignments(WireModel):
    model_id: ModelId
    runner_to_shard: dict[RunnerId, ShardMetadata]
    node_to_runner: dict[NodeId, RunnerId]

    @model_validator(mode="after")
    def _runners_have_shards(self) -> "ShardAssignments":
        missing = set(self.node_to_runner.values()) - set(self.runner_to_shard)
        if missing:
            raise ValueError(f"runners without a shard: {sorted(missing)}")
        return self


class _Instance(TaggedModel):
    instance_id: InstanceId
    shard_assignments: ShardAssignments
    context_token_limit: int | None = None
    deployment_id: str | None = Field(default=None, max_length=64)  # the deployment it serves, if any

    def node_ids(self) -> list[NodeId]:
        return list(self.shard_assignments.node_to_runner)


class MlxRingInstance(_Instance):
    hosts_by_node: dict[NodeId, list[Host]]
    ephemeral_port: int


class MlxJacclInstance(_Instance):
    jaccl_devices: list[list[str | None]]
    jaccl_coordinators: dict[NodeId, str]


class LlamaRpcInstance(_Instance):
    """A GGUF model run by llama.cpp on its driver node: one runner, one shard of every layer."""

    driver_node: NodeId
    offload: GpuOffload | None = None  # layers on the driver's GPU (None: no device reported, CPU)

    @model_validator(mode="after")
    def _one_whole_shard_on_the_driver(self) -> "LlamaRpcInstance":
        runners = self.shard_assignments.node_to_runner
        if list(runners) != [self.driver_node]:
            raise ValueError(f"a LlamaRpc instance runs on its driver node {self.driver_node} only")
        shards = list(self.shard_assignments.runner_to_shard.values())
        if len(shards) != 1 or shards[0].world_size != 1:
            raise ValueError("a LlamaRpc instance has exactly one shard, of world size 1")
        shard = shards[0]
        if shard.start_layer != 0 or shard.end_layer != shard.n_layers:
            raise ValueError("a LlamaRpc shard covers every layer of the model")
        if shard.resolved_backend != LLAMA_CPP_BACKEND:
            raise ValueError(f"a LlamaRpc shard has resolved_backend {LLAMA_CPP_BACKEND!r}")
        if not shard.model_card.gguf_file:
            raise ValueError(f"model {shard.model_card.model_id} has no GGUF file for llama.cpp")
        if self.offload is not None and self.offload.total_layers != shard.n_layers:
            raise ValueError(f"offload counts {self.offload.total_layers} layers, the model has {shard.n_layers}")
        return self


Instance = tagged_union(MlxRingInstance, MlxJacclInstance, LlamaRpcInstance)
