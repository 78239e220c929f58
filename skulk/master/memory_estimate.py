"""Memory arithmetic shared by the planner and the worker's fit guard (reference 9.3).

Sizes are int bytes. Ratios are exact Fractions so that the master and every rank compute the
same numbers and a test can hit an exact boundary (1.30 as a float would drift).
"""

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import NamedTuple

from skulk.types.ids import NodeId
from skulk.types.instances import ShardAssignments
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage
from skulk.types.shards import PipelineShardMetadata, ShardMetadata, TensorShardMetadata

MIB = 1024**2
GIB = 1024**3

MEMORY_OVERHEAD_FACTOR = Fraction("1.30")  # MLX: activations, allocator slack
LLAMA_CPP_MEMORY_OVERHEAD_FACTOR = Fraction("1.10")  # GGUF cards (gguf_file set)
MEMORY_OVERHEAD_FLOOR = 256 * MIB
GPU_WORKING_SET_FRACTION = Fraction("0.75")  # what a unified-memory GPU may wire of total RAM
KV_CONTEXT_BUDGET_TOKENS = 8192
KV_HEAD_DIM_FALLBACK = 128
KV_DTYPE_BYTES = 2
LLAMA_CPP_CONTEXT_CAP = 8192


class FootprintParts(NamedTuple):
    """One shard's estimate, split the way error messages explain it."""

    weights: Fraction  # this shard's share of the weights, before overhead
    factor: Fraction
    kv: Fraction  # this shard's share of the KV cache at the token budget
    floor: int
    total: int  # ceil(weights x factor + kv + floor)


def overhead_factor(card: ModelCard) -> Fraction:
    return LLAMA_CPP_MEMORY_OVERHEAD_FACTOR if card.gguf_file else MEMORY_OVERHEAD_FACTOR


def kv_bytes(card: ModelCard, layers: int, tokens: int) -> int:
    """K and V for `layers` layers over `tokens` tokens; 0 when the KV head count is unknown."""
    if not card.num_key_value_heads:
        return 0
    return 2 * layers * tokens * card.num_key_value_heads * KV_HEAD_DIM_FALLBACK * KV_DTYPE_BYTES


def per_token_kv_bytes(card: ModelCard) -> int:
    return kv_bytes(card, card.n_layers, 1)


def usable_memory(memory: MemoryUsage) -> int:
    """min(available, 75% of total): the GPU working-set ceiling caps what a shard may use."""
    share = GPU_WORKING_SET_FRACTION
    ceiling = memory.ram_total.in_bytes * share.numerator // share.denominator
    return min(memory.ram_available.in_bytes, ceiling)


def shard_fraction(shard: ShardMetadata) -> Fraction | None:
    """Share of the model one rank holds; None for shard kinds we cannot size."""
    if isinstance(shard, PipelineShardMetadata):
        return Fraction(shard.end_layer - shard.start_layer, shard.n_layers)
    if isinstance(shard, TensorShardMetadata):
        return Fraction(1, shard.world_size)
    return None


def footprint_parts(card: ModelCard, fraction: Fraction | float) -> FootprintParts:
    fraction = Fraction(fraction)
    factor = overhead_factor(card)
    if fraction <= 0:
        return FootprintParts(Fraction(0), factor, Fraction(0), 0, 0)
    weights = card.storage_size.in_bytes * fraction
    kv = kv_bytes(card, card.n_layers, KV_CONTEXT_BUDGET_TOKENS) * fraction
    return FootprintParts(weights, factor, kv, MEMORY_OVERHEAD_FLOOR, _total(card, fraction))


def estimate_shard_footprint(card: ModelCard, fraction: Fraction | float) -> int:
    """Bytes a rank holding `fraction` of the model needs: weights x factor + KV + floor."""
    fraction = Fraction(fraction)
    return _total(card, fraction) if fraction > 0 else 0


def _total(card: ModelCard, fraction: Fraction) -> int:
    # integer form of ceil(storage*f*factor + kv*f + floor): the planner calls this per node
    # of every candidate ring, where Fraction objects would dominate the cost
    p, q = fraction.numerator, fraction.denominator
    factor = overhead_factor(card)
    a, b = factor.numerator, factor.denominator
    kv = kv_bytes(card, card.n_layers, KV_CONTEXT_BUDGET_TOKENS)
    numerator = card.storage_size.in_bytes * p * a + kv * p * b
    return -(-numerator // (q * b)) + MEMORY_OVERHEAD_FLOOR


def instance_context_token_limit(
    assignments: ShardAssignments, node_ram_totals: Mapping[NodeId, int]
) -> int | None:
    """Tokens of context every rank can hold, capped by the card; None when unknowable.

    Uses only static inputs (card, shard, total RAM) so every rank computes the same value.
    """
    shards = list(assignments.runner_to_shard.values())
    if not shards:
        return None
    card = shards[0].model_card
    limit = _kv_token_limit(assignments, node_ram_totals)
    if card.context_length > 0:
        limit = card.context_length if limit is None else min(limit, card.context_length)
    if card.gguf_file:
        limit = LLAMA_CPP_CONTEXT_CAP if limit is None else min(limit, LLAMA_CPP_CONTEXT_CAP)
    return limit


def _kv_token_limit(
    assignments: ShardAssignments, node_ram_totals: Mapping[NodeId, int]
) -> int | None:
    limit: int | None = None
    for node_id, runner_id in assignments.node_to_runner.items():
        shard = assignments.runner_to_shard[runner_id]
        card = shard.model_card
        fraction = shard_fraction(shard)
        ram_total = node_ram_totals.get(node_id)
        per_token = per_token_kv_bytes(card)
        if ram_total is None or fraction is None or fraction <= 0 or per_token == 0:
            return None
        working_set = ram_total * GPU_WORKING_SET_FRACTION
        budget = working_set - card.storage_size.in_bytes * fraction * overhead_factor(card)
        budget -= MEMORY_OVERHEAD_FLOOR
        tokens = max(0, math.floor(budget / (per_token * fraction)))
        limit = tokens if limit is None else min(limit, tokens)
    return limit
