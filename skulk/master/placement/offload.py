"""How many of a GGUF model's layers a llama.cpp driver puts on its GPU: as many as fit.

Pure integer arithmetic on what the card and the driver's heartbeat say. A layer costs its share
of the weights (with llama.cpp's overhead factor) plus its K and V for every KV cell the runner
allocates (LLAMA_KV_CELLS); each device keeps a reserve for the driver context and compute
buffers. The device with room for the most layers wins (lowest index on a tie); the rest of the
layers run on the CPU.
"""

from collections.abc import Mapping, Sequence

from skulk.master.memory_estimate import KV_DTYPE_BYTES, KV_HEAD_DIM_FALLBACK, MIB, overhead_factor
from skulk.master.placement.errors import gb
from skulk.types.devices import LLAMA_KV_CELLS, DeviceInfo, GpuOffload
from skulk.types.models import ModelCard
from skulk.types.node import SystemPerformanceProfile

GPU_RESERVE_BYTES = 512 * MIB  # CUDA/ROCm context and llama.cpp's compute buffers


def devices_of(systems: Mapping[str, SystemPerformanceProfile]) -> dict[str, list[DeviceInfo]]:
    """node -> its accelerators, from the heartbeats' system profiles."""
    return {node: list(system.devices) for node, system in systems.items()}


def head_dim(card: ModelCard) -> int:
    if card.hidden_size and card.num_attention_heads:
        return max(1, card.hidden_size // card.num_attention_heads)
    return KV_HEAD_DIM_FALLBACK


def layer_bytes(card: ModelCard, kv_cells: int = LLAMA_KV_CELLS) -> int:
    """One layer on the GPU: its weights (x overhead, rounded up) plus its KV cache."""
    layers = max(1, card.n_layers)
    factor = overhead_factor(card)
    weights = -(-card.storage_size.in_bytes * factor.numerator // (factor.denominator * layers))
    kv = 2 * kv_cells * (card.num_key_value_heads or 0) * head_dim(card) * KV_DTYPE_BYTES
    return max(1, weights + kv)


def layers_that_fit(card: ModelCard, free_bytes: int, kv_cells: int = LLAMA_KV_CELLS) -> int:
    """0 .. n_layers: never more than the model has, never more than the free memory holds."""
    room = free_bytes - GPU_RESERVE_BYTES
    if room <= 0 or card.n_layers <= 0:
        return 0
    return min(card.n_layers, room // layer_bytes(card, kv_cells))


def plan_offload(card: ModelCard, devices: Sequence[DeviceInfo], node: str = "the node") -> GpuOffload | None:
    """The split for a driver with these devices; None when it reports none (CPU only, as before)."""
    if not devices:
        return None
    fits = [(layers_that_fit(card, d.memory_free_bytes), d) for d in devices]
    layers, best = max(fits, key=lambda f: (f[0], -f[1].index))
    per_layer = layer_bytes(card)
    arithmetic = (f"{gb(best.memory_free_bytes)} GB free - {gb(GPU_RESERVE_BYTES)} GB reserve, "
                  f"{per_layer / MIB:.1f} MiB per layer with its KV cache")
    if layers == 0:
        names = ", ".join(d.label() for d in devices[:4])
        return GpuOffload(total_layers=card.n_layers, reason=(
            f"no layer of {card.model_id} fits on a GPU of {node} ({names}): best has {arithmetic}; "
            f"all {card.n_layers} layers on CPU")[:1024])
    cpu = card.n_layers - layers
    rest = f"; {cpu} on CPU" if cpu else ""
    return GpuOffload(device_index=best.index, device_name=best.name, vendor=best.vendor, mock=best.mock,
                      n_gpu_layers=layers, total_layers=card.n_layers, reason=(
                          f"{layers} of {card.n_layers} layers on {best.label()} of {node} "
                          f"({arithmetic}){rest}")[:1024])
