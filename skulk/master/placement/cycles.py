"""Candidate rings: simple cycles of the directed topology, plus every node on its own."""

import networkx as nx

from skulk.types.ids import NodeId
from skulk.types.topology import TopologySnapshot

Cycle = tuple[NodeId, ...]


def topology_graph(topology: TopologySnapshot) -> nx.DiGraph:
    """Directed graph of known nodes; an edge means src observed a path to sink."""
    graph = nx.DiGraph()
    graph.add_nodes_from(topology.nodes)
    for source, sinks in topology.connections.items():
        for sink, edges in sinks.items():
            if edges and source != sink and source in graph and sink in graph:
                graph.add_edge(source, sink)
    return graph


def cycles_of_size(graph: nx.DiGraph, size: int) -> list[Cycle]:
    """One canonical cycle per node set of exactly `size` nodes, sorted.

    Memory fit depends only on the node set, so rotations and alternative orders are dropped:
    the kept order starts at the smallest id and is the lexicographically smallest one.
    """
    if size == 1:
        return [(node,) for node in sorted(graph.nodes)]
    best: dict[frozenset[NodeId], Cycle] = {}
    for cycle in nx.simple_cycles(graph, length_bound=size):
        if len(cycle) != size:
            continue
        canonical = _rotate_to_min(cycle)
        key = frozenset(canonical)
        if key not in best or canonical < best[key]:
            best[key] = canonical
    return sorted(best.values())


def _rotate_to_min(cycle: list[NodeId]) -> Cycle:
    start = cycle.index(min(cycle))
    return tuple(cycle[start:] + cycle[:start])
