"""Candidate cycles: one canonical ring per node set, the same sets networkx finds."""

import random

import networkx as nx
import pytest

from skulk.master.placement.cycles import CycleCatalog, cycles_of_size, topology_graph
from tests.master.test_placement_builders import lan, topology


def test_cycles_one_canonical_order_per_node_set():
    nodes = ["c", "a", "b"]
    graph = topology_graph(topology(nodes, lan(nodes)))
    assert cycles_of_size(graph, 1) == [("a",), ("b",), ("c",)]
    assert cycles_of_size(graph, 2) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert cycles_of_size(graph, 3) == [("a", "b", "c")]


def test_one_way_cycle_keeps_its_direction():
    topo = topology(["a", "b", "c"], [("a", "c", "x"), ("c", "b", "x"), ("b", "a", "x")])
    graph = topology_graph(topo)
    assert cycles_of_size(graph, 2) == []
    assert cycles_of_size(graph, 3) == [("a", "c", "b")]


@pytest.mark.parametrize("seed", range(30))
def test_catalog_matches_networkx_simple_cycles(seed):
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(rng.randint(2, 6))]
    edges = [(a, b, "x") for a in nodes for b in nodes if a != b and rng.random() < 0.5]
    graph = topology_graph(topology(nodes, edges))
    expected: dict[frozenset, list[tuple]] = {}
    for cycle in nx.simple_cycles(graph):
        start = cycle.index(min(cycle))
        expected.setdefault(frozenset(cycle), []).append(tuple(cycle[start:] + cycle[:start]))
    catalog = CycleCatalog(graph)
    for size in range(2, len(nodes) + 1):
        found = catalog.of_size(size)
        wanted = sorted(min(orders) for key, orders in expected.items() if len(key) == size)
        assert found == wanted
