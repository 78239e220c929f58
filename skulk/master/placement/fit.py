"""Does one candidate cycle hold the model? The per-node memory check (reference 4.4)."""

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from skulk.master.memory_estimate import (
    GPU_WORKING_SET_FRACTION,
    FootprintParts,
    estimate_shard_footprint,
    footprint_parts,
    usable_memory,
)
from skulk.master.placement.cycles import Cycle
from skulk.master.placement.errors import gb, node_label
from skulk.master.placement.layers import allocate_layers
from skulk.types.ids import NodeId
from skulk.types.instances import Sharding
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage

MAX_LISTED_NODES = 4  # per refused ring, so one error stays readable on a big cluster


@dataclass(frozen=True)
class CycleVerdict:
    """A cycle checked against memory: a fit (with its split), a refusal, or pending info.

    Refusals keep facts, not text: a big cluster refuses many rings and only a few are shown.
    """

    cycle: Cycle
    sharding: Sharding
    layers: tuple[int, ...] = ()  # Pipeline layers per rank; empty for Tensor (all layers)
    free_bytes: int = 0  # sum of ram_available, to rank fits
    short: tuple[NodeId, ...] = ()  # nodes whose shard does not fit
    split_error: str | None = None  # the layers cannot be spread over this many ranks
    pending: tuple[NodeId, ...] = ()

    @property
    def fits(self) -> bool:
        return not self.short and self.split_error is None and not self.pending

    @property
    def refused(self) -> bool:
        return bool(self.short) or self.split_error is not None


def evaluate_cycle(
    cycle: Cycle,
    card: ModelCard,
    sharding: Sharding,
    node_memory: Mapping[NodeId, MemoryUsage],
) -> CycleVerdict:
    """Strict fit: every rank's estimated footprint must be below its usable memory."""
    missing = tuple(node for node in cycle if node not in node_memory)
    if missing:
        return CycleVerdict(cycle, sharding, pending=missing)
    usable = [usable_memory(node_memory[node]) for node in cycle]
    layers: tuple[int, ...] = ()
    if sharding is Sharding.Pipeline:
        try:
            layers = tuple(allocate_layers(card.n_layers, usable))
        except ValueError as exc:
            return CycleVerdict(cycle, sharding, split_error=str(exc))
    fractions = shard_fractions(card, sharding, len(cycle), layers)
    short = tuple(
        node
        for node, room, fraction in zip(cycle, usable, fractions)
        # strict: an exact fit leaves no slack for the runtime
        if estimate_shard_footprint(card, fraction) >= room
    )
    free = sum(node_memory[node].ram_available.in_bytes for node in cycle)
    return CycleVerdict(cycle, sharding, layers, free_bytes=free, short=short)


def shard_fractions(
    card: ModelCard, sharding: Sharding, size: int, layers: tuple[int, ...]
) -> list[Fraction]:
    if sharding is Sharding.Tensor:
        return [Fraction(1, size)] * size
    return [Fraction(count, card.n_layers) for count in layers]


def describe_refusal(
    verdict: CycleVerdict,
    card: ModelCard,
    node_memory: Mapping[NodeId, MemoryUsage],
    names: Mapping[NodeId, str] | None = None,
) -> str:
    """'cycle [a, b] (Pipeline sharding, layers 8+8): Node a has ... and Node b has ...'."""
    label = _cycle_label(verdict, names)
    if verdict.split_error is not None:
        return f"{label}: {verdict.split_error}"
    size = len(verdict.cycle)
    shares = shard_fractions(card, verdict.sharding, size, verdict.layers)
    fractions = dict(zip(verdict.cycle, shares))
    refusals = [
        node_refusal(
            node_label(node, names), node_memory[node], footprint_parts(card, fractions[node])
        )
        for node in verdict.short[:MAX_LISTED_NODES]
    ]
    more = len(verdict.short) - len(refusals)
    tail = f" and {more} more node(s) short of memory" if more else ""
    return f"{label}: {' and '.join(refusals)}{tail}"


def node_refusal(label: str, memory: MemoryUsage, parts: FootprintParts) -> str:
    """The GB arithmetic behind one refusal, so the user can see which number is short."""
    ceiling = f"{float(GPU_WORKING_SET_FRACTION) * 100:.0f}%"
    return (
        f"Node {label} has {gb(usable_memory(memory))} GB usable "
        f"(min(available {gb(memory.ram_available.in_bytes)} GB, "
        f"{ceiling} of total {gb(memory.ram_total.in_bytes)} GB)) "
        f"but the shard needs {gb(parts.total)} GB "
        f"({gb(parts.weights)} GB weights x {float(parts.factor):.2f} + "
        f"{gb(parts.kv)} GB KV cache + {gb(parts.floor)} GB floor)"
    )


def _cycle_label(verdict: CycleVerdict, names: Mapping[NodeId, str] | None) -> str:
    nodes = ", ".join(node_label(node, names) for node in verdict.cycle)
    split = ""
    if verdict.sharding is Sharding.Pipeline and len(verdict.layers) > 1:
        split = f", layers {'+'.join(str(count) for count in verdict.layers)}"
    return f"cycle [{nodes}] ({verdict.sharding.value} sharding{split})"
