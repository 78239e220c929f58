"""Gossip shell: publish heartbeats, fold received ones into telemetry, bridge election messages.

Everything received is hostile until checked here: it is decoded, bounded (the wire models),
tied to its gossip signer, and only then recorded or handed to the election core.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timezone

import trio

from skulk import codec
from skulk.election.events import MessageReceived
from skulk.errors import CodecError
from skulk.faults import count, isolate
from skulk.net import parse_bootstrap_peer
from skulk.node.topics import ELECTION_PROTOCOL, ELECTION_TOPIC, HEARTBEAT_TOPIC
from skulk.state.telemetry import TelemetryView, with_sane_sent_at
from skulk.types.election import ElectionMessage
from skulk.types.ids import NodeId
from skulk.types.wire import NodeHeartbeat

log = logging.getLogger(__name__)
DIRECT_ELECTION_QUEUE = 64  # statuses waiting for the direct fan-out; an election sends a handful
DIRECT_ELECTION_TIMEOUT_S = 2.0  # per peer: a stuck peer must not hold back the next status


class GossipService:
    def __init__(self, node_id: NodeId, net, telemetry: TelemetryView,
                 make_heartbeat: Callable[[], NodeHeartbeat],
                 election_in: trio.MemorySendChannel, interval: float = 1.0):
        self.node_id = node_id
        self._net = net
        self.telemetry = telemetry
        self._make_heartbeat = make_heartbeat
        self._election_in = election_in
        self._interval = interval
        self.heartbeat_changed = trio.Event()
        self.counters = {"malformed_gossip": 0, "heartbeats_received": 0, "election_received": 0}
        self._direct_send, self._direct_recv = trio.open_memory_channel[bytes](DIRECT_ELECTION_QUEUE)

    async def publish_election(self, msg: ElectionMessage) -> None:
        data = codec.encode(msg)
        await self._net.publish(ELECTION_TOPIC, data)  # relays reach peers we have no link to
        try:
            self._direct_send.send_nowait(data)
        except trio.WouldBlock:
            count("election.direct_queue_full", "a status went by gossip only")

    async def _send_elections_direct(self) -> None:
        """Each status straight to every connected peer too: one hop, whatever gossip's mesh and
        heartbeat timing (on a loaded 10-node loopback cluster relayed statuses came seconds late)."""
        async for data in self._direct_recv:
            async with trio.open_nursery() as nursery:
                for peer in sorted(self._net.connected_peers()):
                    nursery.start_soon(self._send_one, peer, data)

    async def _send_one(self, peer: str, data: bytes) -> None:
        with isolate("election.direct_send"), trio.move_on_after(DIRECT_ELECTION_TIMEOUT_S):
            await self._net.send_direct(peer, ELECTION_PROTOCOL, data, timeout=DIRECT_ELECTION_TIMEOUT_S)

    async def _receive_direct_elections(self) -> None:
        async for msg in self._net.direct_receiver(ELECTION_PROTOCOL):
            with isolate("gossip.election"):
                self._on_election(msg.peer_id, msg.data)  # the stream's peer is the signer

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_heartbeats)
            nursery.start_soon(self._receive_elections)
            nursery.start_soon(self._receive_direct_elections)
            nursery.start_soon(self._send_elections_direct)
            self._record(self._make_heartbeat())
            task_status.started()
            while True:
                with isolate("gossip.heartbeat_publish"):
                    hb = self._make_heartbeat()
                    self._record(hb)
                    await self._net.publish(HEARTBEAT_TOPIC, codec.encode(hb))
                await trio.sleep(self._interval)

    def _record(self, hb: NodeHeartbeat) -> None:
        self.telemetry.update(hb, trio.current_time())
        self.heartbeat_changed.set()
        self.heartbeat_changed = trio.Event()

    def _decode(self, data: bytes, kind, fault: str):
        try:
            return codec.decode(data, kind)
        except CodecError as exc:
            self.counters["malformed_gossip"] += 1
            count(fault, str(exc)[:300])
            return None

    async def _receive_heartbeats(self) -> None:
        async for msg in self._net.gossip_receiver(HEARTBEAT_TOPIC):
            with isolate("gossip.heartbeat"):
                self._on_heartbeat(msg.peer_id, msg.data)

    def _on_heartbeat(self, signer: NodeId, data: bytes) -> None:
        hb = self._decode(data, NodeHeartbeat, "gossip.malformed_heartbeat")
        if hb is None:
            return
        if hb.node_id != signer:
            count("gossip.forged_heartbeat", f"{signer} sent a heartbeat for {hb.node_id[:80]}")
            return  # a heartbeat speaks only for its own signer
        if not self.telemetry.has_room_for(signer):
            count("gossip.telemetry_full", f"heartbeat of {signer}: the view is full")
            return
        hb, skewed = with_sane_sent_at(hb, datetime.now(timezone.utc))
        if skewed:
            count("gossip.heartbeat_clock", f"{signer} sent a heartbeat dated far from now")
        self.counters["heartbeats_received"] += 1
        self._record(hb)
        self._learn_addresses(signer, hb.listen_addrs)

    def _learn_addresses(self, signer: NodeId, addrs: list[str]) -> None:
        """Dial only what a peer says about itself: IP multiaddrs ending in its own /p2p id."""
        for text in addrs:
            try:
                address = parse_bootstrap_peer(text)
            except ValueError as exc:
                count("gossip.bad_listen_addr", f"from {signer}: {exc}"[:300])
                continue
            if address.peer_id != signer or address.is_dns:
                count("gossip.foreign_listen_addr", f"{signer} advertised {text[:120]!r}")
                continue
            self._net.add_known_peer(str(address))

    async def _receive_elections(self) -> None:
        async for msg in self._net.gossip_receiver(ELECTION_TOPIC):
            with isolate("gossip.election"):
                self._on_election(msg.peer_id, msg.data)

    def _on_election(self, signer: NodeId, data: bytes) -> None:
        em = self._decode(data, ElectionMessage, "election.malformed")
        if em is None:
            return
        # No "connected peers only" rule here: a status relayed while a duplicate connection
        # settles would be refused and the node elect itself alone (split brain at 6+ nodes).
        self.counters["election_received"] += 1
        try:
            self._election_in.send_nowait(MessageReceived(em, sender=signer))
        except trio.WouldBlock:
            count("election.inbox_full", f"status from {signer}")
