"""A deterministic N-node network of election cores, for tests and scenario transcripts.

Broadcasts reach every live node connected to the sender through any path of links, as
gossipsub relays them; connection events reach only the two ends of a link. Messages take
`latency` ticks (0 = delivered before the next node acts).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from skulk.election.core import (
    Broadcast,
    CommandSeen,
    Elected,
    ElectionState,
    Input,
    MessageReceived,
    Output,
    PeerConnectionChanged,
    Refused,
    Tick,
    start,
    step,
)
from skulk.types.election import ElectionMessage, ElectionResult
from skulk.types.ids import NodeId, SessionId

Link = frozenset[NodeId]


@dataclass(frozen=True)
class ResultRecord:
    tick: int
    node_id: NodeId
    result: ElectionResult


@dataclass
class SimNode:
    node_id: NodeId
    force_master: bool
    candidate: bool
    state: ElectionState | None = None  # None while killed
    links_at_death: list[NodeId] = field(default_factory=list)
    # Connections per peer still open from a previous (halted) process: not ours to see close.
    stale: Counter[NodeId] = field(default_factory=Counter)

    @property
    def alive(self) -> bool:
        return self.state is not None


@dataclass(frozen=True)
class _Envelope:
    due: int
    source: NodeId
    target: NodeId
    message: ElectionMessage


class Simulator:
    def __init__(self, *, latency: int = 1) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 ticks")
        self.latency = latency
        self.now = 0
        self.nodes: dict[NodeId, SimNode] = {}
        self.links: Counter[Link] = Counter()  # connections per pair (multi-homing allowed)
        self.results: list[ResultRecord] = []
        self.refusals: list[tuple[int, NodeId, str]] = []  # (tick, node, reason)
        self.sent = 0  # broadcasts so far (a settled cluster sends none)
        self._queue: deque[_Envelope] = deque()
        self._lose_next: set[tuple[NodeId, NodeId]] = set()

    # Membership -------------------------------------------------------------------------

    def add_node(
        self, node_id: NodeId, *, force_master: bool = False, candidate: bool = True
    ) -> None:
        if node_id in self.nodes:
            raise ValueError(f"node {node_id} already exists")
        self.nodes[node_id] = SimNode(node_id, force_master, candidate)
        self._boot(node_id)

    def halt(self, node_id: NodeId) -> None:
        """The process stops, but its peers have not noticed yet: links stay until `disconnect`."""
        node = self._live(node_id)
        node.state = None
        node.links_at_death = sorted(self.peers_of(node_id), key=self._order)

    def kill(self, node_id: NodeId) -> None:
        """SIGKILL: the node stops and every peer sees its connections close at once."""
        self.halt(node_id)
        self._drop_links(node_id)

    def restart(self, node_id: NodeId) -> None:
        """A fresh core with the same id, redialling the peers it had when it died.

        After `halt`, the old connections linger (peers see the new ones as extra) until a
        `disconnect` closes them, which only the peer notices.
        """
        node = self.nodes[node_id]
        if node.alive:
            self.kill(node_id)
        node.stale = Counter(
            {peer: self.links[frozenset((node_id, peer))] for peer in self.peers_of(node_id)}
        )
        self._boot(node_id)
        for peer in node.links_at_death:
            if self.nodes[peer].alive:
                self.connect(node_id, peer)

    def _drop_links(self, node_id: NodeId) -> None:
        for peer in sorted(self.peers_of(node_id), key=self._order):
            while self.links[frozenset((node_id, peer))]:
                self.disconnect(node_id, peer)

    def _boot(self, node_id: NodeId) -> None:
        node = self.nodes[node_id]
        node.state, outputs = start(
            node_id, force_master=node.force_master, candidate=node.candidate
        )
        self._perform(node_id, outputs)
        self._drain()

    # Links ------------------------------------------------------------------------------

    def connect(self, a: NodeId, b: NodeId) -> None:
        self._live(a)
        self._live(b)
        if a == b:
            raise ValueError("a node cannot connect to itself")
        self.links[frozenset((a, b))] += 1
        self._feed(a, PeerConnectionChanged(b, True))
        self._feed(b, PeerConnectionChanged(a, True))
        self._drain()

    def disconnect(self, a: NodeId, b: NodeId) -> None:
        link = frozenset((a, b))
        if self.links[link] == 0:
            return
        self.links[link] -= 1
        if self.links[link] == 0:
            del self.links[link]
        for end, peer in ((a, b), (b, a)):
            stale = self.nodes[end].stale
            if stale[peer]:
                stale[peer] -= 1  # the previous process's connection: this one never had it
            else:
                self._feed(end, PeerConnectionChanged(peer, False))
        self._drain()

    def connect_all(self) -> None:
        """Full mesh among live nodes (adds only missing links)."""
        alive = self.alive()
        for i, a in enumerate(alive):
            for b in alive[i + 1 :]:
                if self.links[frozenset((a, b))] == 0:
                    self.connect(a, b)

    def partition(self, groups: list[list[NodeId]]) -> None:
        """Cut every link between nodes of different groups."""
        side = {n: i for i, group in enumerate(groups) for n in group}
        for link in sorted(self.links, key=lambda pair: sorted(map(self._order, pair))):
            a, b = sorted(link, key=self._order)
            if a in side and b in side and side[a] != side[b]:
                while self.links[link]:
                    self.disconnect(a, b)

    def lose_next(self, source: NodeId, target: NodeId) -> None:
        """Drop the next broadcast from `source` to `target` (gossip can lose messages)."""
        self._lose_next.add((source, target))

    # Time and inputs --------------------------------------------------------------------

    def inject(self, message: ElectionMessage, *, sender: NodeId) -> None:
        """A status signed by `sender` (maybe not a node at all) reaches every live node now."""
        for node_id in self.alive():
            self._feed(node_id, MessageReceived(message, sender))
        self._drain()

    def command_seen(self, node_id: NodeId, count: int = 1) -> None:
        self._feed(node_id, CommandSeen(count))

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            self.now += 1
            self._drain()
            for node_id in self.alive():
                self._feed(node_id, Tick())
                self._drain()

    # Queries ----------------------------------------------------------------------------

    def alive(self) -> list[NodeId]:
        return [n for n, node in self.nodes.items() if node.alive]

    def state_of(self, node_id: NodeId) -> ElectionState:
        state = self.nodes[node_id].state
        if state is None:
            raise ValueError(f"node {node_id} is not running")
        return state

    def session_of(self, node_id: NodeId) -> SessionId:
        return self.state_of(node_id).current_session

    def peers_of(self, node_id: NodeId) -> set[NodeId]:
        return {peer for link in self.links for peer in link if node_id in link and peer != node_id}

    def reachable(self, node_id: NodeId) -> set[NodeId]:
        seen, todo = {node_id}, [node_id]
        while todo:
            for peer in self.peers_of(todo.pop()):
                if peer not in seen and self.nodes[peer].alive:
                    seen.add(peer)
                    todo.append(peer)
        return seen - {node_id}

    # Plumbing ---------------------------------------------------------------------------

    def _order(self, node_id: NodeId) -> int:
        return list(self.nodes).index(node_id)

    def _live(self, node_id: NodeId) -> SimNode:
        node = self.nodes.get(node_id)
        if node is None or not node.alive:
            raise ValueError(f"node {node_id} is not running")
        return node

    def _feed(self, node_id: NodeId, event: Input) -> None:
        node = self.nodes[node_id]
        if node.state is None:
            return
        node.state, outputs = step(node.state, event)
        self._perform(node_id, outputs)

    def _perform(self, node_id: NodeId, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case Broadcast(message=message):
                    self._broadcast(node_id, message)
                case Elected(result=result):
                    self.results.append(ResultRecord(self.now, node_id, result))
                case Refused(reason=reason):
                    self.refusals.append((self.now, node_id, reason))

    def _broadcast(self, source: NodeId, message: ElectionMessage) -> None:
        self.sent += 1
        for target in sorted(self.reachable(source), key=self._order):
            if (source, target) in self._lose_next:
                self._lose_next.discard((source, target))
                continue
            self._queue.append(_Envelope(self.now + self.latency, source, target, message))

    def _drain(self) -> None:
        # Due times never decrease along the queue, since latency is fixed.
        while self._queue and self._queue[0].due <= self.now:
            envelope = self._queue.popleft()
            self._feed(envelope.target, MessageReceived(envelope.message, envelope.source))
