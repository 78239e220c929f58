"""Pure edits and queries of the topology snapshot (nodes + directed edges)."""

from skulk.types.ids import NodeId
from skulk.types.topology import Connection, TopologySnapshot


def add_node(topo: TopologySnapshot, node: NodeId) -> TopologySnapshot:
    if node in topo.nodes:
        return topo
    return topo.model_copy(update={"nodes": [*topo.nodes, node]})


def remove_node(topo: TopologySnapshot, node: NodeId) -> TopologySnapshot:
    connections = {
        src: {sink: edges for sink, edges in sinks.items() if sink != node}
        for src, sinks in topo.connections.items() if src != node
    }
    connections = {src: sinks for src, sinks in connections.items() if sinks}
    return TopologySnapshot(nodes=[n for n in topo.nodes if n != node], connections=connections)


def add_edge(topo: TopologySnapshot, conn: Connection) -> TopologySnapshot:
    sinks = topo.connections.get(conn.source, {})
    edges = sinks.get(conn.sink, [])
    if conn.edge in edges:
        return topo
    nodes = list(topo.nodes)
    for n in (conn.source, conn.sink):
        if n not in nodes:
            nodes.append(n)
    new_sinks = {**sinks, conn.sink: [*edges, conn.edge]}
    return TopologySnapshot(nodes=nodes, connections={**topo.connections, conn.source: new_sinks})


def remove_edge(topo: TopologySnapshot, conn: Connection) -> TopologySnapshot:
    sinks = topo.connections.get(conn.source, {})
    edges = [e for e in sinks.get(conn.sink, []) if e != conn.edge]
    new_sinks = {**sinks, conn.sink: edges} if edges else {
        k: v for k, v in sinks.items() if k != conn.sink
    }
    connections = {**topo.connections, conn.source: new_sinks}
    if not new_sinks:
        connections.pop(conn.source)
    return topo.model_copy(update={"connections": connections})


def out_edges(topo: TopologySnapshot, node: NodeId) -> list[Connection]:
    return [
        Connection(source=node, sink=sink, edge=edge)
        for sink, edges in topo.connections.get(node, {}).items() for edge in edges
    ]
