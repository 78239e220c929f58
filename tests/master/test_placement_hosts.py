"""MLX ring hostfiles: self listens on 0.0.0.0, neighbours by best address, others placeholder."""

import pytest

from skulk.master.placement import PlacementInfoPendingError
from skulk.master.placement.hosts import neighbour_ip, ring_hosts
from skulk.types.instances import Host
from tests.master.test_placement_builders import (
    GIB,
    PORT,
    card,
    command,
    lan,
    memory,
    network,
    place,
    topology,
)

PLACEHOLDER = Host(ip="198.51.100.1", port=0)


def me(rank: int) -> Host:
    return Host(ip="0.0.0.0", port=PORT + rank)  # rank r listens on base + r


def host(ip: str) -> Host:
    rank = int(ip.rsplit(".", 1)[1]) - 1  # the fixtures give rank r the address 10.0.0.(r+1)
    return Host(ip=ip, port=PORT + rank)


def placed_hosts(nodes: list[str]) -> dict[str, list[Host]]:
    mem = {node: memory(64 * GIB) for node in nodes}
    cmd = command(card(n_layers=32), min_nodes=len(nodes))
    return place(cmd, topology(nodes, lan(nodes)), mem).hosts_by_node


def test_one_node_lists_only_itself():
    assert placed_hosts(["a"]) == {"a": [me(0)]}


def test_two_nodes_list_each_other():
    assert placed_hosts(["a", "b"]) == {
        "a": [me(0), host("10.0.0.2")],
        "b": [host("10.0.0.1"), me(1)],
    }


def test_three_nodes_every_other_rank_is_a_neighbour():
    assert placed_hosts(["a", "b", "c"]) == {
        "a": [me(0), host("10.0.0.2"), host("10.0.0.3")],
        "b": [host("10.0.0.1"), me(1), host("10.0.0.3")],
        "c": [host("10.0.0.1"), host("10.0.0.2"), me(2)],
    }


def test_four_nodes_use_a_placeholder_for_the_opposite_rank():
    assert placed_hosts(["a", "b", "c", "d"]) == {
        "a": [me(0), host("10.0.0.2"), PLACEHOLDER, host("10.0.0.4")],
        "b": [host("10.0.0.1"), me(1), host("10.0.0.3"), PLACEHOLDER],
        "c": [PLACEHOLDER, host("10.0.0.2"), me(2), host("10.0.0.4")],
        "d": [host("10.0.0.1"), PLACEHOLDER, host("10.0.0.3"), me(3)],
    }


def test_one_way_ring_falls_back_to_gossiped_interfaces_for_the_reverse_neighbour():
    # a->b->c->a only: a reaches c (its left neighbour) through c's reported interfaces
    topo = topology(["a", "b", "c"], [("a", "b", "10.0.0.2"), ("b", "c", "10.0.0.3"),
                                      ("c", "a", "10.0.0.1")])
    net = {"a": network(("10.0.0.1", "ethernet")), "b": network(("10.0.0.2", "ethernet")),
           "c": network(("10.0.0.3", "ethernet"))}
    assert ring_hosts(("a", "b", "c"), PORT, topo, net)["a"] == [
        me(0), host("10.0.0.2"), host("10.0.0.3"),
    ]


def test_unknown_address_for_a_neighbour_is_info_pending():
    topo = topology(["a", "b", "c"], [("a", "b", "10.0.0.2"), ("b", "c", "10.0.0.3"),
                                      ("c", "a", "10.0.0.1")])
    with pytest.raises(PlacementInfoPendingError, match="neighbour c"):
        ring_hosts(("a", "b", "c"), PORT, topo, {})


def two_edges(*ips: str):
    return topology(["a", "b"], [("a", "b", ip) for ip in ips])


def test_ethernet_beats_wifi():
    net = {"b": network(("192.168.1.20", "wifi"), ("10.0.0.2", "ethernet"))}
    assert neighbour_ip("a", "b", two_edges("192.168.1.20", "10.0.0.2"), net) == "10.0.0.2"


def test_vpn_never_beats_lan_even_with_a_lying_label():
    net = {"b": network(("100.100.1.2", "ethernet"), ("192.168.1.20", "wifi"))}
    assert neighbour_ip("a", "b", two_edges("100.100.1.2", "192.168.1.20"), net) == "192.168.1.20"


def test_vpn_only_pair_still_works():
    assert neighbour_ip("a", "b", two_edges("100.100.1.2"), {}) == "100.100.1.2"


def test_loopback_only_when_it_is_the_only_address():
    net = {"b": network(("127.0.0.1", "unknown"), ("192.168.1.20", "wifi"))}
    assert neighbour_ip("a", "b", two_edges("127.0.0.1", "192.168.1.20"), net) == "192.168.1.20"
    assert neighbour_ip("a", "b", two_edges("127.0.0.1"), {}) == "127.0.0.1"


def test_edge_addresses_win_over_interfaces_never_observed():
    # b also reports a faster NIC, but a never reached b on it
    net = {"b": network(("10.9.9.9", "thunderbolt"), ("192.168.1.20", "wifi"))}
    assert neighbour_ip("a", "b", two_edges("192.168.1.20"), net) == "192.168.1.20"
