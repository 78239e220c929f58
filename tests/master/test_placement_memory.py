"""Memory arithmetic (reference 9.3) and the largest-remainder layer split."""

from fractions import Fraction

import pytest

from skulk.master.memory_estimate import (
    LLAMA_CPP_CONTEXT_CAP,
    MEMORY_OVERHEAD_FLOOR,
    estimate_shard_footprint,
    instance_context_token_limit,
    kv_bytes,
    per_token_kv_bytes,
    shard_fraction,
    usable_memory,
)
from skulk.master.placement import allocate_layers
from skulk.types.instances import ShardAssignments
from skulk.types.shards import PipelineShardMetadata, TensorShardMetadata
from tests.master.test_placement_builders import GIB, MIB, card, memory


def test_kv_bytes_formula_and_unknown_heads():
    model = card(n_layers=16, kv_heads=8)
    assert kv_bytes(model, 16, 8192) == 2 * 16 * 8192 * 8 * 128 * 2 == GIB // 2
    assert per_token_kv_bytes(model) == 65536
    assert kv_bytes(card(), 16, 8192) == 0


def test_footprint_is_weights_times_overhead_plus_kv_plus_floor():
    model = card(storage=GIB, kv_heads=8)
    assert estimate_shard_footprint(model, 1) == 2_201_170_740  # ceil(1.3 + 0.5 + 0.25 GiB)
    assert estimate_shard_footprint(model, Fraction(1, 2)) == 1_234_803_098  # 0.65+0.25+0.25
    assert estimate_shard_footprint(model, 0) == 0


def test_gguf_cards_use_the_lighter_factor():
    assert estimate_shard_footprint(card(storage=10 * GIB, gguf_file="m.gguf"), 1) == (
        11 * GIB + MEMORY_OVERHEAD_FLOOR
    )


def test_usable_is_min_of_available_and_working_set():
    assert usable_memory(memory(16 * GIB, 4 * GIB)) == 4 * GIB
    assert usable_memory(memory(16 * GIB)) == 12 * GIB


def shard(kind, rank: int, world: int, start: int, end: int):
    model = card(storage=GIB, kv_heads=8)
    return kind(model_card=model, device_rank=rank, world_size=world, start_layer=start,
                end_layer=end, n_layers=16)


def test_shard_fraction():
    assert shard_fraction(shard(PipelineShardMetadata, 0, 2, 0, 12)) == Fraction(3, 4)
    assert shard_fraction(shard(TensorShardMetadata, 1, 4, 0, 16)) == Fraction(1, 4)


def test_context_limit_is_the_tightest_rank():
    assignments = ShardAssignments(
        model_id="org/model",
        runner_to_shard={"r0": shard(PipelineShardMetadata, 0, 2, 0, 8),
                         "r1": shard(PipelineShardMetadata, 1, 2, 8, 16)},
        node_to_runner={"a": "r0", "b": "r1"},
    )
    small = instance_context_token_limit(assignments, {"a": 64 * GIB, "b": 8 * GIB})
    # b: (6 GiB - 0.65 GiB - 256 MiB) / (64 KiB / 2)
    expected = int((6 * GIB - Fraction(13, 20) * GIB - 256 * MIB) / (65536 / Fraction(2)))
    assert small == expected
    assert instance_context_token_limit(assignments, {"a": 64 * GIB}) is None


def test_gguf_context_is_capped():
    model = card(storage=GIB, kv_heads=8, gguf_file="m.gguf")
    assignments = ShardAssignments(
        model_id="org/model",
        runner_to_shard={"r0": PipelineShardMetadata(model_card=model, device_rank=0,
                                                      world_size=1, start_layer=0, end_layer=16,
                                                      n_layers=16)},
        node_to_runner={"a": "r0"},
    )
    assert instance_context_token_limit(assignments, {"a": 64 * GIB}) == LLAMA_CPP_CONTEXT_CAP


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (16, [3, 2, 1], [8, 5, 3]),  # quotas 8, 5.33, 2.67: the .67 gets the spare layer
        (16, [1, 1], [8, 8]),
        (10, [1, 1, 1], [4, 3, 3]),  # equal remainders: lowest rank first
        (4, [100, 1, 1, 1], [1, 1, 1, 1]),  # starved ranks borrow from the richest
        (5, [0, 0], [3, 2]),  # nothing to weigh by: even split
    ],
)
def test_allocate_layers_largest_remainder(total, weights, expected):
    assert allocate_layers(total, weights) == expected


def test_allocate_layers_needs_a_layer_per_rank():
    with pytest.raises(ValueError):
        allocate_layers(2, [1, 1, 1])
