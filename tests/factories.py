"""Small builders of wire objects for pure tests."""

from skulk.types.instances import MlxRingInstance, Host, ShardAssignments
from skulk.types.ids import Memory
from skulk.types.models import ModelCard
from skulk.types.shards import PipelineShardMetadata


def card(model_id: str = "org/tiny", n_layers: int = 4, gb: float = 0.1) -> ModelCard:
    return ModelCard(model_id=model_id, n_layers=n_layers, hidden_size=64, supports_tensor=True,
                     tasks=["TextGeneration"], storage_size=Memory.from_gb(gb), num_key_value_heads=2)


def ring_instance(instance_id: str, nodes: list[str], model: ModelCard | None = None) -> MlxRingInstance:
    model = model or card()
    per = model.n_layers // len(nodes)
    runner_to_shard, node_to_runner = {}, {}
    for rank, node in enumerate(nodes):
        rid = f"{instance_id}-r{rank}"
        end = model.n_layers if rank == len(nodes) - 1 else (rank + 1) * per
        runner_to_shard[rid] = PipelineShardMetadata(
            model_card=model, device_rank=rank, world_size=len(nodes), start_layer=rank * per,
            end_layer=end, n_layers=model.n_layers)
        node_to_runner[node] = rid
    return MlxRingInstance(
        instance_id=instance_id,
        shard_assignments=ShardAssignments(model_id=model.model_id, runner_to_shard=runner_to_shard,
                                           node_to_runner=node_to_runner),
        hosts_by_node={n: [Host(ip="0.0.0.0", port=50000)] for n in nodes}, ephemeral_port=50000)
