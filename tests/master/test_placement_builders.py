"""Small builders shared by the placement tests (no tests here)."""

from skulk.master.placement import place_instance
from skulk.types.commands import PlaceInstance
from skulk.types.ids import Memory
from skulk.types.instances import Instance
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage, NetworkInterfaceInfo, NodeNetworkInfo
from skulk.types.topology import SocketConnection, TopologySnapshot

GIB = 1024**3
MIB = 1024**2
PORT = 50000


def card(
    *,
    n_layers: int = 16,
    storage: int = 4 * GIB,
    kv_heads: int | None = None,
    attn_heads: int | None = None,
    hidden: int = 4096,
    tensor: bool = True,
    context_length: int = 0,
    gguf_file: str | None = None,
) -> ModelCard:
    return ModelCard(
        model_id="org/model",
        n_layers=n_layers,
        hidden_size=hidden,
        supports_tensor=tensor,
        tasks=["TextGeneration"],
        storage_size=Memory(in_bytes=storage),
        num_key_value_heads=kv_heads,
        num_attention_heads=attn_heads,
        context_length=context_length,
        gguf_file=gguf_file,
    )


def memory(total: int, available: int | None = None) -> MemoryUsage:
    """Bytes; available defaults to all of it (so the 75% ceiling binds)."""
    return MemoryUsage(
        ram_total=Memory(in_bytes=total),
        ram_available=Memory(in_bytes=total if available is None else available),
        swap_total=Memory(in_bytes=0),
        swap_available=Memory(in_bytes=0),
    )


def topology(nodes: list[str], edges: list[tuple[str, str, str]] = ()) -> TopologySnapshot:
    """edges: (source, sink, ip of sink as source reached it)."""
    connections: dict = {}
    for source, sink, ip in edges:
        edge = SocketConnection(sink_multiaddr=f"/ip4/{ip}/tcp/52415")
        connections.setdefault(source, {}).setdefault(sink, []).append(edge)
    return TopologySnapshot(nodes=nodes, connections=connections)


def lan(nodes: list[str]) -> list[tuple[str, str, str]]:
    """Edges both ways between every pair; node i answers on 10.0.0.<i+1>."""
    return [
        (a, b, ip_of(nodes, b)) for a in nodes for b in nodes if a != b
    ]


def ip_of(nodes: list[str], node: str) -> str:
    return f"10.0.0.{nodes.index(node) + 1}"


def network(*ifaces: tuple[str, str]) -> NodeNetworkInfo:
    return NodeNetworkInfo(
        interfaces=[
            NetworkInterfaceInfo(name=f"if{i}", ip_address=ip, interface_type=kind)
            for i, (ip, kind) in enumerate(ifaces)
        ]
    )


def command(model: ModelCard, **fields) -> PlaceInstance:
    return PlaceInstance(command_id="cmd", model_card=model, **fields)


def place(cmd: PlaceInstance, topo: TopologySnapshot, mem: dict, net: dict | None = None,
          **kwargs) -> Instance:
    kwargs.setdefault("instance_id", "inst")
    kwargs.setdefault("runner_ids", [f"r{i}" for i in range(8)])
    kwargs.setdefault("ephemeral_port", PORT)
    return place_instance(cmd, topo, {}, mem, net or {}, **kwargs)


def layer_split(instance: Instance) -> dict[str, tuple[int, int]]:
    """node -> (start, end) in rank order."""
    assignments = instance.shard_assignments
    return {
        node: (assignments.runner_to_shard[runner].start_layer,
               assignments.runner_to_shard[runner].end_layer)
        for node, runner in assignments.node_to_runner.items()
    }
