"""Pure cores at many virtual nodes: election, apply + sequencer fan-out, placement.

Numbers for docs/scaling.md. The election runs on a sparse random mesh (each node dials
`degree` peers, like a gossipsub mesh) because a full mesh of 1000 nodes is not what a real
cluster of that size would have; the simulator's own reachability walk is cached per topology.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from skulk import codec
from skulk.election.core import TICK_SECONDS, PeerConnectionChanged
from skulk.election.sim import Simulator
from skulk.master.placement import PlacementError, place_instance
from skulk.master.sequencer import Sequencer
from skulk.types import events as ev
from skulk.types.commands import PlaceInstance
from skulk.types.ids import Memory
from skulk.types.models import ModelCard
from skulk.types.node import MemoryUsage
from skulk.types.topology import SocketConnection, TopologySnapshot

GIB = 1024**3


class CachedSimulator(Simulator):
    """The same simulator, with reachability memoised until a link or a node's life changes."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._adj: dict | None = None
        self._reach: dict = {}

    def _invalidate(self) -> None:
        self._adj, self._reach = None, {}

    def connect(self, a, b) -> None:
        self._invalidate()
        super().connect(a, b)

    def disconnect(self, a, b) -> None:
        self._invalidate()
        super().disconnect(a, b)

    def halt(self, node_id) -> None:
        self._invalidate()
        super().halt(node_id)

    def _boot(self, node_id) -> None:
        self._invalidate()
        super()._boot(node_id)

    def peers_of(self, node_id):
        if self._adj is None:
            adj: dict = {}
            for link in self.links:
                a, b = tuple(link)
                adj.setdefault(a, set()).add(b)
                adj.setdefault(b, set()).add(a)
            self._adj = adj
        return set(self._adj.get(node_id, ()))

    def reachable(self, node_id):
        if node_id not in self._reach:
            self._reach[node_id] = super().reachable(node_id)
        return self._reach[node_id]


def _settle(sim: Simulator, limit_ticks: int) -> int | None:
    """Ticks until every live node agrees on one session, or None within the limit."""
    for t in range(limit_ticks):
        sessions = {sim.session_of(n) for n in sim.alive()}
        if len(sessions) == 1 and all(sim.state_of(n).round is None and sim.state_of(n).settle is None
                                         for n in sim.alive()):
            return t
        sim.tick()
    return None


def election(size: int, *, degree: int = 8, seed: int = 1, limit_ticks: int = 600) -> list[dict]:
    rng = random.Random(seed)
    sim = CachedSimulator(latency=1)
    ids = [f"node{i:04d}" for i in range(size)]
    t0 = time.perf_counter()
    for node_id in ids:
        sim.add_node(node_id)
    # Every node dials `degree` earlier ones within one tick, as a cluster booting together does:
    # the connection updates coalesce in each core's settle window instead of one round per link.
    for i, node_id in enumerate(ids[1:], start=1):
        for peer in rng.sample(ids[:i], min(degree, i)):
            sim.links[frozenset((node_id, peer))] += 1
            sim._feed(node_id, PeerConnectionChanged(peer, True))
            sim._feed(peer, PeerConnectionChanged(node_id, True))
    sim._invalidate()
    sim._drain()
    sent0 = sim.sent
    ticks = _settle(sim, limit_ticks)
    out = [{"measurement": "sim_election_converge", "nodes": size, "degree": degree,
            "ticks": ticks, "sim_s": None if ticks is None else round(ticks * TICK_SECONDS, 2),
            "broadcasts": sim.sent - sent0, "wall_s": round(time.perf_counter() - t0, 2)}]
    master = sim.state_of(ids[0]).current_session.master_node_id
    sent0, t1 = sim.sent, time.perf_counter()
    sim.kill(master)
    ticks = _settle(sim, limit_ticks)
    alive = sim.alive()
    out.append({"measurement": "sim_election_failover", "nodes": size, "degree": degree,
                "ticks": ticks, "sim_s": None if ticks is None else round(ticks * TICK_SECONDS, 2),
                "broadcasts": sim.sent - sent0,
                "deliveries_per_broadcast": len(alive) - 1,
                "messages": (sim.sent - sent0) * (len(alive) - 1),
                "new_master_differs": sim.session_of(alive[0]).master_node_id != master,
                "wall_s": round(time.perf_counter() - t1, 2)})
    return out


def fanout(size: int, events: int = 500) -> dict:
    """Bytes the master sends per event to `size - 1` followers, and apply cost per event."""
    seq = Sequencer()
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    indexed = seq.accept("master/origin", 0, [ev.TestEvent(note=f"e{i}") for i in range(events)], now)
    apply_s = (time.perf_counter() - t0) / max(len(indexed), 1)
    t1 = time.perf_counter()
    frames = [codec.encode(ie) for ie in indexed]
    encode_s = (time.perf_counter() - t1) / max(len(frames), 1)
    per_event = sum(map(len, frames)) / max(len(frames), 1)
    return {"measurement": "sim_event_fanout", "nodes": size, "events": len(indexed),
            "bytes_per_event_encoded": round(per_event, 1),
            "master_bytes_per_event": round(per_event * (size - 1), 1),
            "apply_and_index_us": round(apply_s * 1e6, 1), "encode_us": round(encode_s * 1e6, 1),
            "master_cpu_us_per_event_fanned": round((apply_s + encode_s * (size - 1)) * 1e6, 1)}


def _rack_topology(size: int, rack: int = 8) -> TopologySnapshot:
    """Full mesh inside racks of `rack` nodes, rack heads in a ring: O(size) edges."""
    nodes = [f"node{i:04d}" for i in range(size)]
    conn: dict = {}

    def edge(a: str, b: str) -> None:
        ip = f"10.{int(b[4:]) // 250}.{int(b[4:]) % 250}.1"  # never dialled: a placement input
        conn.setdefault(a, {}).setdefault(b, []).append(SocketConnection(sink_multiaddr=f"/ip4/{ip}/tcp/52415"))

    for start in range(0, size, rack):
        group = nodes[start:start + rack]
        for a in group:
            for b in group:
                if a != b:
                    edge(a, b)
    heads = nodes[::rack]
    for a, b in zip(heads, heads[1:] + heads[:1]):
        if a != b:
            edge(a, b)
            edge(b, a)
    return TopologySnapshot(nodes=nodes, connections=conn)


def placement(size: int, min_nodes: int = 2) -> dict:
    topo = _rack_topology(size)
    mem = {n: MemoryUsage(ram_total=Memory(in_bytes=16 * GIB), ram_available=Memory(in_bytes=16 * GIB),
                          swap_total=Memory(in_bytes=0), swap_available=Memory(in_bytes=0)) for n in topo.nodes}
    card = ModelCard(model_id="org/model", n_layers=32, hidden_size=4096, supports_tensor=True,
                     tasks=["TextGeneration"], storage_size=Memory(in_bytes=12 * GIB), num_key_value_heads=8)
    cmd = PlaceInstance(model_card=card, min_nodes=min_nodes)
    t0 = time.perf_counter()
    try:
        inst = place_instance(cmd, topo, {}, mem, {}, instance_id="inst",
                              runner_ids=[f"r{i}" for i in range(size)], ephemeral_port=50000)
        nodes, error = len(inst.shard_assignments.node_to_runner), None
    except PlacementError as e:
        nodes, error = 0, str(e)[:200]
    return {"measurement": "sim_placement", "nodes": size, "min_nodes": min_nodes,
            "edges": sum(len(v) for v in topo.connections.values()),
            "placement_ms": round((time.perf_counter() - t0) * 1000, 1), "placed_on": nodes, "error": error}


def simulate(size: int, *, seed: int = 1) -> list[dict]:
    return [*election(size, seed=seed), fanout(size), placement(size)]
