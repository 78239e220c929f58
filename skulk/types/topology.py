"""Topology snapshot: nodes and directed edges (who reached whom, how)."""

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.ids import NodeId


class SocketConnection(TaggedModel):
    sink_multiaddr: str


class RDMAConnection(TaggedModel):
    source_rdma_iface: str
    sink_rdma_iface: str


Edge = tagged_union(SocketConnection, RDMAConnection)


class Connection(WireModel):
    source: NodeId
    sink: NodeId
    edge: Edge


class TopologySnapshot(WireModel):
    nodes: list[NodeId] = []
    connections: dict[NodeId, dict[NodeId, list[Edge]]] = {}
