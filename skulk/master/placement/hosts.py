"""MLX ring hostfile per node: which address each rank uses to reach its ring neighbours."""

import ipaddress
from collections.abc import Mapping

from skulk.master.placement.cycles import Cycle
from skulk.master.placement.errors import PlacementInfoPendingError, node_label
from skulk.types.ids import NodeId
from skulk.types.instances import Host
from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInfo
from skulk.types.topology import SocketConnection, TopologySnapshot

LISTEN_IP = "0.0.0.0"
PLACEHOLDER_HOST = Host(ip="198.51.100.1", port=0)  # TEST-NET-2: a rank that is no neighbour

# Lower is better. VPN and loopback lose to any LAN link; loopback still works on one machine.
_RING_PRIORITY = {"thunderbolt": 0, "maybe_ethernet": 1, "ethernet": 2, "wifi": 3, "unknown": 4}
_VPN_RANK = 5
_LOOPBACK_RANK = 6
_LINK_LOCAL_RANK = 7
_VPN_NETWORKS = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("fd7a:115c:a1e0::/48"))


def ring_hosts(
    cycle: Cycle,
    port: int,
    topology: TopologySnapshot,
    node_network: Mapping[NodeId, NodeNetworkInfo],
    names: Mapping[NodeId, str] | None = None,
) -> dict[NodeId, list[Host]]:
    """One list per node with one entry per rank: itself, its two neighbours, placeholders.

    Rank r listens on `port + r`, so ranks sharing a machine (or a loopback test) never collide."""
    size = len(cycle)
    hosts: dict[NodeId, list[Host]] = {}
    for rank, node in enumerate(cycle):
        neighbours = {(rank - 1) % size, (rank + 1) % size}
        row = []
        for other_rank, other in enumerate(cycle):
            if other_rank == rank:
                row.append(Host(ip=LISTEN_IP, port=port + rank))
            elif other_rank in neighbours:
                ip = neighbour_ip(node, other, topology, node_network, names)
                row.append(Host(ip=ip, port=port + other_rank))
            else:
                row.append(PLACEHOLDER_HOST)
        hosts[node] = row
    return hosts


def neighbour_ip(
    source: NodeId,
    sink: NodeId,
    topology: TopologySnapshot,
    node_network: Mapping[NodeId, NodeNetworkInfo],
    names: Mapping[NodeId, str] | None = None,
) -> str:
    """Best address for `source` to reach `sink`: an observed edge first, else sink's NICs."""
    interfaces = node_network[sink].interfaces if sink in node_network else []
    candidates = _edge_ips(topology, source, sink) or [i.ip_address for i in interfaces]
    if not candidates:
        raise PlacementInfoPendingError(
            f"No address is known yet for node {node_label(source, names)} to reach its ring "
            f"neighbour {node_label(sink, names)} (no connection edge and no network info). "
            "Retry shortly."
        )
    # stable sort: equal ranks keep the order the topology observed them in
    return min(candidates, key=lambda ip: _ip_rank(ip, interfaces))


def _edge_ips(topology: TopologySnapshot, source: NodeId, sink: NodeId) -> list[str]:
    edges = topology.connections.get(source, {}).get(sink, [])
    ips = []
    for edge in edges:
        if isinstance(edge, SocketConnection):
            ip = multiaddr_ip(edge.sink_multiaddr)
            if ip is not None and ip not in ips:
                ips.append(ip)
    return ips


def multiaddr_ip(multiaddr: str) -> str | None:
    """The address in '/ip4/<ip>/tcp/<port>' (or /ip6/), None for other forms."""
    parts = multiaddr.split("/")
    if len(parts) >= 3 and parts[1] in ("ip4", "ip6") and parts[2]:
        return parts[2]
    return None


def _ip_rank(ip: str, interfaces: list[NetworkInterfaceInfo]) -> int:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return _RING_PRIORITY["unknown"]
    if address.is_loopback:
        return _LOOPBACK_RANK
    if address.is_link_local:
        return _LINK_LOCAL_RANK
    if any(address in network for network in _VPN_NETWORKS):
        return _VPN_RANK  # whatever the interface label says
    kind = next((i.interface_type for i in interfaces if i.ip_address == ip), "unknown")
    return _RING_PRIORITY.get(kind, _RING_PRIORITY["unknown"])
