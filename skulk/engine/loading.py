"""Load an mlx-lm model directory for one shard (whole model, a layer range, or a tensor split).

Weights stay lazy (mx.load reads a tensor only when it is evaluated), so layers this rank
drops are never read from disk. On CPU everything becomes fp32: quantized and bf16 matmuls are
5-20x slower there (docs/mlx-notes.md).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.tokenizer_utils import TokenizerWrapper
from mlx_lm.utils import dequantize_model, load_model, load_tokenizer

from skulk.engine.collectives import barrier
from skulk.engine.errors import ShardingUnsupported
from skulk.engine.pipeline import PipelineStage, find_layer_list, keep_layer_range, wire_stage
from skulk.types.shards import PipelineShardMetadata, TensorShardMetadata

ProgressCallback = Callable[[int, int], None]  # (layers_loaded, total_layers)
Shard = PipelineShardMetadata | TensorShardMetadata


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: TokenizerWrapper
    config: dict[str, Any]
    group: Any  # mx.distributed.Group, or None for a single rank
    rank: int
    world_size: int
    stage: PipelineStage | None  # set for a multi-rank pipeline

    @property
    def sampling_rank(self) -> int:
        """The rank whose logits are real: the last pipeline stage, else rank 0."""
        return self.stage.world_size - 1 if self.stage else 0

    @property
    def context_length(self) -> int:
        """The model's own position limit (0 when the config does not say)."""
        cfg = self.config.get("text_config", self.config)
        return int(cfg.get("max_position_embeddings") or self.config.get("max_position_embeddings") or 0)

    def forward(self, inputs: mx.array, cache: list[Any]) -> mx.array | None:
        """Logits (B, L, V) where this rank has them, else None (a non-last pipeline stage)."""
        if self.stage is not None:
            return self.stage.forward(self.model, inputs, cache)
        return self.model(inputs, cache=cache)


def default_dtype() -> mx.Dtype | None:
    """fp32 on CPU; None (keep the checkpoint's dtype) on Metal/CUDA."""
    return mx.float32 if mx.default_device() == mx.cpu else None


def _is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding)) for _, m in model.named_modules())


def _check_tensor_split(model: nn.Module, config: dict[str, Any], world_size: int) -> None:
    if not hasattr(model, "shard"):
        raise ShardingUnsupported(
            f"model type {config.get('model_type')!r} has no tensor-parallel shard(); use Pipeline"
        )
    cfg = config.get("text_config", config)
    for key in ("num_attention_heads", "num_key_value_heads"):
        heads = cfg.get(key)
        if heads and heads % world_size:
            raise ShardingUnsupported(f"{key}={heads} does not split across {world_size} ranks")


def _check_shard(shard: Shard | None, n_layers: int, world_size: int) -> tuple[int, int]:
    if shard is None:
        if world_size > 1:
            raise ValueError("a multi-rank group needs a shard")
        return 0, n_layers
    if shard.world_size != world_size:
        raise ValueError(f"shard is for {shard.world_size} ranks but the group has {world_size}")
    if isinstance(shard, TensorShardMetadata) or world_size == 1:
        if (shard.start_layer, shard.end_layer) != (0, n_layers):
            raise ValueError("a tensor or single-rank shard must cover every layer")
    return shard.start_layer, shard.end_layer


def _eval_with_progress(model: nn.Module, everything: bool, on_progress: ProgressCallback | None) -> None:
    holder, attr, _ = find_layer_list(model)
    layers = holder[attr]
    if on_progress:
        on_progress(0, len(layers))
    for i, layer in enumerate(layers):
        mx.eval(layer.parameters())
        if on_progress:
            on_progress(i + 1, len(layers))
    if everything:
        mx.eval(model.parameters())
    # A pipeline stage leaves embedding/head lazy: each is read on first use, never on ranks
    # that do not use it (a middle stage needs neither).


def load_shard(
    model_dir: str | Path,
    shard: Shard | None = None,
    group: Any = None,
    *,
    on_progress: ProgressCallback | None = None,
    dtype: mx.Dtype | None = None,
) -> LoadedModel:
    """Load `model_dir` for `shard` on `group` (None: a single rank holding everything)."""
    model_dir = Path(model_dir)
    world_size = group.size() if group is not None else 1
    rank = group.rank() if group is not None else 0
    model, config = load_model(model_dir, lazy=True)
    tokenizer = load_tokenizer(model_dir, eos_token_ids=config.get("eos_token_id"))
    holder, attr, _ = find_layer_list(model)
    start, end = _check_shard(shard, len(holder[attr]), world_size)
    stage = None
    if isinstance(shard, TensorShardMetadata) and world_size > 1:
        _check_tensor_split(model, config, world_size)
    elif world_size > 1:
        keep_layer_range(model, start, end)
        stage = PipelineStage(rank, world_size, start, end, group)
    dtype = dtype or default_dtype()
    if dtype is not None:
        if _is_quantized(model):
            dequantize_model(model)
        model.set_dtype(dtype)
    if isinstance(shard, TensorShardMetadata) and world_size > 1:
        model.shard(group)
    if stage is not None:
        wire_stage(model, stage)
    _eval_with_progress(model, everything=stage is None, on_progress=on_progress)
    if group is not None and world_size > 1:
        barrier(group)  # every rank has loaded before anyone serves
    return LoadedModel(model, tokenizer, config, group, rank, world_size, stage)
