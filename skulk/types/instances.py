"""Placed model instances: which runner on which node holds which shard."""

from enum import Enum

from pydantic import model_validator

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.ids import InstanceId, ModelId, NodeId, RunnerId
from skulk.types.shards import ShardMetadata


class Sharding(str, Enum):
    Pipeline = "Pipeline"
    Tensor = "Tensor"


class InstanceMeta(str, Enum):
    MlxRing = "MlxRing"
    MlxJaccl = "MlxJaccl"


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

    def node_ids(self) -> list[NodeId]:
        return list(self.shard_assignments.node_to_runner)


class MlxRingInstance(_Instance):
    hosts_by_node: dict[NodeId, list[Host]]
    ephemeral_port: int


class MlxJacclInstance(_Instance):
    jaccl_devices: list[list[str | None]]
    jaccl_coordinators: dict[NodeId, str]


Instance = tagged_union(MlxRingInstance, MlxJacclInstance)
