"""Does one candidate cycle hold the model? The per-node memory check (reference 4.4)."""

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from skulk.master.memory_estimate import (
    GPU_WORKING_SET_FRACTION,
    FootprintParts,
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


@dataclass(frozen=True)
class CycleVerdict:
    """A cycle checked against memory: a fit (with its split), a refusal, or pending info."""

    cycle: Cycle
    sharding: Sharding
    layers: tuple[int, ...] = ()  # per rank; Tensor ranks each hold every layer
    free_bytes: int = 0  # sum of ram_available, to rank fits
    reason: str | None = None
    pending: tuple[NodeId, ...] = ()

    @property
    def fits(self) -> bool:
        return self.reason is None and not self.pending


def evaluate_cycle(
    cycle: Cycle,
    card: ModelCard,
    sharding: Sharding,
    node_memory: Mapping[NodeId, MemoryUsage],
    names: Mapping[NodeId, str] | None = None,
) -> CycleVerdict:
    """Strict fit: every rank's estimated footprint must be below its usable memory."""
    missing = tuple(node for node in cycle if node not in node_memory)
    if missing:
        return CycleVerdict(cycle, sharding, pending=missing)
    usable = [usable_memory(node_memory[node]) for node in cycle]
    if sharding is Sharding.Tensor:
        layers = tuple(card.n_layers for _ in cycle)
        fractions = [Fraction(1, len(cycle))] * len(cycle)
    else:
        try:
            layers = tuple(allocate_layers(card.n_layers, usable))
        except ValueError as exc:
            reason = f"{_cycle_label(cycle, sharding, (), names)}: {exc}"
            return CycleVerdict(cycle, sharding, reason=reason)
        fractions = [Fraction(count, card.n_layers) for count in layers]
    refusals = []
    for node, room, fraction in zip(cycle, usable, fractions):
        parts = footprint_parts(card, fraction)
        if parts.total >= room:  # strict: an exact fit leaves no slack for the runtime
            refusals.append(node_refusal(node_label(node, names), node_memory[node], parts))
    if refusals:
        label = _cycle_label(cycle, sharding, layers, names)
        return CycleVerdict(cycle, sharding, layers, reason=f"{label}: {' and '.join(refusals)}")
    free = sum(node_memory[node].ram_available.in_bytes for node in cycle)
    return CycleVerdict(cycle, sharding, layers, free_bytes=free)


def node_refusal(label: str, memory: MemoryUsage, parts: FootprintParts) -> str:
    """The GB arithmetic behind one refusal, so the user can see which number is short."""
    ceiling = f"{GPU_WORKING_SET_FRACTION * 100:.0f}%"
    return (
        f"Node {label} has {gb(usable_memory(memory))} GB usable "
        f"(min(available {gb(memory.ram_available.in_bytes)} GB, "
        f"{ceiling} of total {gb(memory.ram_total.in_bytes)} GB)) "
        f"but the shard needs {gb(parts.total)} GB "
        f"({gb(parts.weights)} GB weights x {float(parts.factor):.2f} + "
        f"{gb(parts.kv)} GB KV cache + {gb(parts.floor)} GB floor)"
    )


def _cycle_label(
    cycle: Cycle, sharding: Sharding, layers: tuple[int, ...], names: Mapping[NodeId, str] | None
) -> str:
    nodes = ", ".join(node_label(node, names) for node in cycle)
    split = ""
    if sharding is Sharding.Pipeline and len(layers) > 1:
        split = f", layers {'+'.join(str(count) for count in layers)}"
    return f"cycle [{nodes}] ({sharding.value} sharding{split})"
