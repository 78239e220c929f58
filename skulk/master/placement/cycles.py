"""Candidate rings: directed cycles of the topology, plus every node on its own.

Fit depends only on which nodes a ring holds, so each node set is kept once, in its
lexicographically smallest cycle order (starting at its smallest id). Walking node sets rather
than every simple cycle matters on a LAN: a full mesh of n nodes has ~(n-1)! cycle orders.
"""

import itertools
from typing import TYPE_CHECKING

from skulk.types.ids import NodeId
from skulk.types.topology import TopologySnapshot

if TYPE_CHECKING:
    import networkx as nx

Cycle = tuple[NodeId, ...]


def topology_graph(topology: TopologySnapshot) -> "nx.DiGraph":
    """Directed graph of known nodes; an edge means src observed a path to sink."""
    import networkx as nx  # ~0.2 s to import: paid at the first placement, not at node start-up

    graph = nx.DiGraph()
    graph.add_nodes_from(topology.nodes)
    for source, sinks in topology.connections.items():
        for sink, edges in sinks.items():
            if edges and source != sink and source in graph and sink in graph:
                graph.add_edge(source, sink)
    return graph


class CycleCatalog:
    """Canonical cycles by size, computed on demand (the search stops at the first fit)."""

    def __init__(self, graph: "nx.DiGraph"):
        self._nodes = sorted(graph.nodes)
        self._succ = {node: sorted(graph.successors(node)) for node in self._nodes}
        self._by_size: dict[int, list[Cycle]] = {}

    def of_size(self, size: int) -> list[Cycle]:
        """One cycle per node set of exactly `size` nodes that a directed cycle can visit."""
        if size not in self._by_size:
            found = (self._smallest_cycle(s) for s in itertools.combinations(self._nodes, size))
            self._by_size[size] = sorted(cycle for cycle in found if cycle is not None)
        return self._by_size[size]

    def _smallest_cycle(self, members: tuple[NodeId, ...]) -> Cycle | None:
        """Depth-first in sorted order, so the first ring found is the smallest order."""
        allowed = set(members)
        path = [members[0]]

        def extend() -> bool:
            if len(path) == len(members):
                return len(path) == 1 or members[0] in self._succ[path[-1]]
            for nxt in self._succ[path[-1]]:
                if nxt in allowed and nxt not in path:
                    path.append(nxt)
                    if extend():
                        return True
                    path.pop()
            return False

        return tuple(path) if extend() else None


def cycles_of_size(graph: "nx.DiGraph", size: int) -> list[Cycle]:
    return CycleCatalog(graph).of_size(size)
