"""How one rank's share of a model is described."""

from pydantic import Field

from skulk.types.base import TaggedModel, tagged_union
from skulk.types.models import ModelCard


class _Shard(TaggedModel):
    model_card: ModelCard
    device_rank: int = Field(ge=0)
    world_size: int = Field(ge=1)
    start_layer: int = Field(ge=0)  # inclusive
    end_layer: int  # exclusive
    n_layers: int
    resolved_backend: str | None = None

    @property
    def is_first_layer(self) -> bool:
        return self.start_layer == 0

    @property
    def is_last_layer(self) -> bool:
        return self.end_layer == self.n_layers


class PipelineShardMetadata(_Shard):
    pass


class TensorShardMetadata(_Shard):
    pass


ShardMetadata = tagged_union(PipelineShardMetadata, TensorShardMetadata)
