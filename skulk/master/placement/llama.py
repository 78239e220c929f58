"""llama.cpp placements (LlamaRpc): a GGUF model whole on one driver node that has the engine,
and which engine serves the default model when nobody asked for one."""

from collections.abc import Iterable, Mapping, Sequence

from skulk.master.placement.errors import PlacementError, PlacementInfoPendingError, gb, node_label
from skulk.master.placement.fit import describe_refusal, evaluate_cycle
from skulk.master.placement.offload import layers_that_fit, plan_offload
from skulk.types.devices import DeviceInfo, GpuOffload
from skulk.types.ids import NodeId, RunnerId
from skulk.types.instances import LLAMA_CPP_BACKEND, InstanceMeta, ShardAssignments, Sharding
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage
from skulk.types.shards import PipelineShardMetadata

LLAMA_CPP = "llama_cpp"
MLX = "mlx"
MLX_METAL = "mlx-metal"
NodeEngines = Mapping[NodeId, Sequence[str]]
NodeDevices = Mapping[NodeId, Sequence[DeviceInfo]]
# What pooling memory over several nodes would need; said whenever one is asked for.
MULTI_NODE_REFUSAL = (
    "LlamaRpc placements run on one node: pooling memory across nodes needs llama.cpp's RPC "
    "backend (ggml-rpc donor servers on the other nodes), which this build does not include. "
    "Use min_nodes=1, or MlxRing with Pipeline/Tensor sharding to spread MLX weights over nodes."
)


def card_engines(card: ModelCard) -> list[str]:
    """Engines that can run the card: its own list, else llama.cpp for a GGUF and MLX always."""
    if card.engines:
        return list(card.engines)
    return [MLX, LLAMA_CPP] if card.gguf_file else [MLX]


def check_llama_request(card: ModelCard, sharding: Sharding, min_nodes: int) -> None:
    if LLAMA_CPP not in card_engines(card) or not card.gguf_file:
        raise PlacementError(f"Requested LlamaRpc but model {card.model_id} has no GGUF file for llama.cpp; "
                             "use MlxRing instead.")
    if min_nodes > 1:
        raise PlacementError(MULTI_NODE_REFUSAL)
    if sharding is Sharding.Tensor:
        raise PlacementError("Requested Tensor sharding with LlamaRpc: llama.cpp runs the whole model on its "
                             "driver node; use Pipeline (one node) or MlxRing for tensor parallelism.")


def choose_driver(card: ModelCard, nodes: Iterable[NodeId], excluded: frozenset[NodeId],
                  node_memory: Mapping[NodeId, MemoryUsage], node_engines: NodeEngines | None,
                  names: Mapping[NodeId, str] | None = None, node_devices: NodeDevices | None = None) -> NodeId:
    """The node with llama.cpp that holds the model, most layers on a GPU first, then most free
    memory; else why not."""
    allowed = sorted(n for n in nodes if n not in excluded)
    if not allowed:
        raise PlacementError("Every node is excluded; no node can drive a LlamaRpc instance.")
    able = [n for n in allowed if node_engines is None or LLAMA_CPP in node_engines.get(n, ())]
    if not able:
        labels = ", ".join(node_label(n, names) for n in allowed)
        raise PlacementError(f"No node advertises the llama_cpp engine (nodes: {labels}); install "
                             "llama-cpp-python (scripts/install.sh) or use MlxRing.")
    verdicts = [evaluate_cycle((n,), card, Sharding.Pipeline, node_memory) for n in able]
    fits = [v for v in verdicts if v.fits]
    if fits:
        gpu = {v.cycle[0]: _gpu_layers(card, (node_devices or {}).get(v.cycle[0], ())) for v in fits}
        return min(fits, key=lambda v: (-gpu[v.cycle[0]], -v.free_bytes, v.cycle)).cycle[0]
    pending = sorted({n for v in verdicts for n in v.pending})
    if pending:
        labels = ", ".join(node_label(n, names) for n in pending)
        raise PlacementInfoPendingError(f"Memory info has not been gathered yet for node(s) [{labels}]. "
                                        "Retry shortly.")
    reasons = "; ".join(describe_refusal(v, card, node_memory, names) for v in verdicts[:3])
    raise PlacementError(f"No node with llama.cpp fits {card.model_id} ({gb(card.storage_size.in_bytes)} GB "
                         f"of weights): {reasons}")


def _gpu_layers(card: ModelCard, devices: Sequence[DeviceInfo]) -> int:
    return max((layers_that_fit(card, d.memory_free_bytes) for d in devices), default=0)


def driver_offload(card: ModelCard, driver: NodeId, node_devices: NodeDevices | None,
                   names: Mapping[NodeId, str] | None = None) -> GpuOffload | None:
    """The driver's layer split over its reported devices (None: it reported none)."""
    return plan_offload(card, (node_devices or {}).get(driver, ()), node_label(driver, names))


def llama_assignments(card: ModelCard, node: NodeId, runner: RunnerId) -> ShardAssignments:
    shard = PipelineShardMetadata(model_card=card, device_rank=0, world_size=1, start_layer=0,
                                  end_layer=card.n_layers, n_layers=card.n_layers,
                                  resolved_backend=LLAMA_CPP_BACKEND)
    return ShardAssignments(model_id=card.model_id, runner_to_shard={runner: shard},
                            node_to_runner={node: runner})


def auto_instance_meta(card: ModelCard, engine: str, node_engines: NodeEngines) -> InstanceMeta:
    """The default model's engine: `engine` is inference.engine (auto | mlx | llama_cpp).

    auto picks llama.cpp for a GGUF card when some node has llama.cpp but no Metal (MLX on
    Linux runs on a slow CPU path), and MLX otherwise (Apple silicon, or llama.cpp missing)."""
    if engine == MLX or LLAMA_CPP not in card_engines(card) or not card.gguf_file:
        return InstanceMeta.MlxRing
    with_llama = [e for e in node_engines.values() if LLAMA_CPP in e]
    if engine == LLAMA_CPP:
        return InstanceMeta.LlamaRpc if with_llama else InstanceMeta.MlxRing
    if any(MLX_METAL not in e for e in with_llama):
        return InstanceMeta.LlamaRpc
    return InstanceMeta.MlxRing
