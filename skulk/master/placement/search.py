"""Pick the ring: the smallest cycle that fits, then the most free memory; else say why not."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from skulk.master.placement.cycles import CycleCatalog, topology_graph
from skulk.master.placement.errors import (
    PlacementError,
    PlacementInfoPendingError,
    gb,
    node_label,
)
from skulk.master.placement.fit import CycleVerdict, describe_refusal, evaluate_cycle
from skulk.types.ids import NodeId
from skulk.types.instances import Sharding
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage
from skulk.types.topology import TopologySnapshot

MAX_LISTED_REFUSALS = 3  # keep the error readable on a cluster with many cycles


@dataclass(frozen=True)
class PlacementRequest:
    card: ModelCard
    sharding: Sharding
    min_nodes: int
    excluded: frozenset[NodeId]
    node_memory: Mapping[NodeId, MemoryUsage]
    names: Mapping[NodeId, str] | None = None


@dataclass
class _SearchLog:
    """What the sizes tried taught us, so a failure names the first thing in the way."""

    any_cycle: bool = False
    any_allowed: bool = False
    evaluated: bool = False
    indivisible_sizes: list[int] = field(default_factory=list)
    refusals: list[CycleVerdict] = field(default_factory=list)
    pending: set[NodeId] = field(default_factory=set)


def tensor_divides(card: ModelCard, size: int) -> bool:
    """Tensor parallelism splits hidden size and heads evenly, so each must divide by size."""
    dims = (card.hidden_size, card.num_key_value_heads, card.num_attention_heads)
    return all(dim is None or dim % size == 0 for dim in dims)


def choose_cycle(request: PlacementRequest, topology: TopologySnapshot) -> CycleVerdict:
    """Sizes are tried smallest first, so the first size with a fit wins outright."""
    known = len(topology.nodes)
    if request.min_nodes > known:
        raise PlacementError(
            f"The topology has only {known} node(s); a placement with "
            f"min_nodes={request.min_nodes} is impossible. Multi-node placement requires "
            "bidirectional connectivity between the nodes."
        )
    catalog = CycleCatalog(topology_graph(topology))
    log = _SearchLog()
    for size in range(request.min_nodes, known + 1):
        fits = _fits_of_size(catalog, size, request, log)
        if fits:
            return min(fits, key=lambda v: (-v.free_bytes, tuple(sorted(v.cycle)), v.cycle))
    raise _no_fit_error(request, known, log)


def _fits_of_size(
    catalog: CycleCatalog, size: int, request: PlacementRequest, log: _SearchLog
) -> list[CycleVerdict]:
    cycles = catalog.of_size(size)
    allowed = [cycle for cycle in cycles if request.excluded.isdisjoint(cycle)]
    log.any_cycle |= bool(cycles)
    log.any_allowed |= bool(allowed)
    if not allowed:
        return []
    # one node holds the whole model whatever was asked: that is a pipeline of one
    sharding = Sharding.Pipeline if size == 1 else request.sharding
    if sharding is Sharding.Tensor and not tensor_divides(request.card, size):
        log.indivisible_sizes.append(size)
        return []
    log.evaluated = True
    verdicts = [
        evaluate_cycle(cycle, request.card, sharding, request.node_memory) for cycle in allowed
    ]
    for verdict in verdicts:
        log.pending.update(verdict.pending)
        if verdict.refused:
            log.refusals.append(verdict)
    return [verdict for verdict in verdicts if verdict.fits]


def _no_fit_error(
    request: PlacementRequest, known: int, log: _SearchLog
) -> PlacementError | PlacementInfoPendingError:
    wanted = request.min_nodes
    if not log.any_cycle:
        return PlacementInfoPendingError(
            f"The topology has {known} node(s) but none form a connected cycle of at least "
            f"{wanted} node(s) yet. Connection info may still be gossiping; multi-node "
            "placement requires bidirectional connectivity between the nodes. Retry shortly."
        )
    if not log.any_allowed:
        return PlacementError(
            f"All cycles of at least {wanted} node(s) touch an excluded node "
            f"({len(request.excluded)} node(s) excluded). Check the excluded_nodes list — "
            "node IDs change when a cluster session restarts."
        )
    if not log.evaluated:
        return PlacementError(_tensor_message(request.card, log.indivisible_sizes))
    if log.pending:
        labels = ", ".join(node_label(node, request.names) for node in sorted(log.pending))
        return PlacementInfoPendingError(
            f"Memory info has not been gathered yet for node(s) [{labels}] — the cluster may "
            "still be starting up. Retry shortly."
        )
    return PlacementError(_memory_message(request, log.refusals))


def _tensor_message(card: ModelCard, sizes: list[int]) -> str:
    dims = f"hidden_size={card.hidden_size}"
    if card.num_key_value_heads is not None:
        dims += f", num_key_value_heads={card.num_key_value_heads}"
    if card.num_attention_heads is not None:
        dims += f", num_attention_heads={card.num_attention_heads}"
    tried = ", ".join(str(size) for size in sizes)
    return (
        f"No tensor sharding found for model with {dims} across candidate cycles of "
        f"{tried} node(s): the node count must divide each of them."
    )


def _memory_message(request: PlacementRequest, refusals: list[CycleVerdict]) -> str:
    # largest cycles first: they come closest to fitting, so they are the useful ones to read
    listed = [
        describe_refusal(verdict, request.card, request.node_memory, request.names)
        for verdict in list(reversed(refusals))[:MAX_LISTED_REFUSALS]
    ]
    more = len(refusals) - len(listed)
    tail = f"; and {more} more refused cycle(s)" if more else ""
    card = request.card
    return (
        f"No candidate cycle fits {card.model_id} ({gb(card.storage_size.in_bytes)} GB of "
        f"weights): {'; '.join(listed)}{tail}"
    )
