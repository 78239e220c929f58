"""Loading: fp32 on CPU (quantized checkpoints dequantized), progress, shard checks, layer ranges."""

import json

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten
from mlx_lm.models import llama

from skulk.engine.errors import ShardingUnsupported
from skulk.engine.generate import Engine
from skulk.engine.loading import load_shard
from skulk.engine.pipeline import find_layer_list, keep_layer_range
from skulk.types.shards import TensorShardMetadata
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

from .helpers import shard_json


class FakeGroup:
    """Enough of mx.distributed.Group for checks that run before any communication."""

    def __init__(self, size: int, rank: int = 0):
        self._size, self._rank = size, rank

    def size(self):
        return self._size

    def rank(self):
        return self._rank


def test_progress_reports_every_layer_and_weights_are_fp32(tiny_model_dir):
    seen = []
    loaded = load_shard(tiny_model_dir, on_progress=lambda k, n: seen.append((k, n)))
    assert seen == [(k, 6) for k in range(7)]
    assert {v.dtype for _, v in tree_flatten(loaded.model.parameters())} == {mx.float32}
    assert loaded.context_length == 256 and loaded.sampling_rank == 0


def test_quantized_checkpoint_is_dequantized_to_fp32_on_cpu(tiny_model_dir, tmp_path):
    from mlx_lm import convert

    qdir = tmp_path / "q4"
    convert(str(tiny_model_dir), mlx_path=str(qdir), quantize=True, q_group_size=32, q_bits=4)
    assert json.loads((qdir / "config.json").read_text())["quantization"]["bits"] == 4
    loaded = load_shard(qdir)
    kinds = {type(m) for _, m in loaded.model.named_modules()}
    assert nn.QuantizedLinear not in kinds and nn.QuantizedEmbedding not in kinds
    assert {v.dtype for _, v in tree_flatten(loaded.model.parameters())} == {mx.float32}
    p = TextGenerationTaskParams(model="q", input=[ChatMessage(role="user", content="hi")],
                                 max_output_tokens=4, temperature=0.0)
    assert len([o for o in Engine(loaded).stream("q", p)]) == 4


def test_tensor_split_needs_divisible_heads(tiny_model_dir):
    shard = TensorShardMetadata.model_validate_json(shard_json("tensor", 0, 3, 0, 6))
    with pytest.raises(ShardingUnsupported, match="num_attention_heads=4"):
        load_shard(tiny_model_dir, shard, FakeGroup(3))


def test_tensor_split_needs_a_model_with_shard(tiny_model_dir, monkeypatch):
    monkeypatch.delattr(llama.Model, "shard")
    shard = TensorShardMetadata.model_validate_json(shard_json("tensor", 0, 2, 0, 6))
    with pytest.raises(ShardingUnsupported, match="no tensor-parallel shard"):
        load_shard(tiny_model_dir, shard, FakeGroup(2))


def test_shard_must_match_the_group(tiny_model_dir):
    shard = TensorShardMetadata.model_validate_json(shard_json("tensor", 0, 2, 0, 6))
    with pytest.raises(ValueError, match="2 ranks"):
        load_shard(tiny_model_dir, shard, None)
    with pytest.raises(ValueError, match="needs a shard"):
        load_shard(tiny_model_dir, None, FakeGroup(2))


def _mixed_llama():
    args = llama.ModelArgs(
        model_type="llama", hidden_size=16, num_hidden_layers=6, intermediate_size=32,
        num_attention_heads=2, rms_norm_eps=1e-5, vocab_size=10, sliding_window=4,
        layer_types=["sliding_attention", "full_attention"] * 3,
    )
    return llama.Model(args)


@pytest.mark.parametrize("start,end,fa,swa", [(2, 5, 1, 0), (3, 6, 0, 1), (0, 1, 0, 0)])
def test_layer_range_repoints_mask_indices_at_kept_layers_of_the_same_kind(start, end, fa, swa):
    model = _mixed_llama()
    kept = keep_layer_range(model, start, end)
    holder, attr, path = find_layer_list(model)
    assert path == "model.layers" and holder[attr] is kept and len(kept) == end - start
    assert holder.layer_types == (["sliding_attention", "full_attention"] * 3)[start:end]
    assert holder.fa_idx == fa and (holder.swa_idx or 0) == swa
    assert len(model.make_cache()) == end - start
    assert model(mx.array([[1, 2, 3]]), cache=model.make_cache()).shape == (1, 3, 10)


def test_layer_range_rejects_bad_bounds():
    with pytest.raises(ValueError):
        keep_layer_range(_mixed_llama(), 4, 9)


def test_bf16_checkpoint_is_widened_to_fp32_on_cpu(tiny_model_dir, tmp_path):
    from mlx_lm import convert

    bdir = tmp_path / "bf16"
    convert(str(tiny_model_dir), mlx_path=str(bdir), dtype="bfloat16")
    assert {v.dtype for v in mx.load(str(bdir / "model.safetensors")).values()} == {mx.bfloat16}
    loaded = load_shard(bdir)
    assert {v.dtype for _, v in tree_flatten(loaded.model.parameters())} == {mx.float32}
