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


def write_smollm_gguf_card(home, model_id: str, gguf_file: str, *, size: int, extra: str = "") -> None:
    """A custom card in a node home for a GGUF with SmolLM2-135M's shape (llama.cpp only);
    `extra`: more TOML lines (a source package, capabilities)."""
    cards = home / "custom_model_cards"
    cards.mkdir(parents=True, exist_ok=True)
    (cards / f"{model_id.replace('/', '--')}.toml").write_text(
        f'model_id = "{model_id}"\nn_layers = 30\nhidden_size = 576\nnum_key_value_heads = 3\n'
        'num_attention_heads = 9\nsupports_tensor = false\ntasks = ["TextGeneration"]\nfamily = "llama"\n'
        f'context_length = 8192\ngguf_file = "{gguf_file}"\nengines = ["llama_cpp"]\n{extra}'
        f'[storage_size]\nin_bytes = {size}\n')
