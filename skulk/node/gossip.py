"""Gossip shell: publish heartbeats, fold received ones into telemetry, bridge election messages."""

import logging
from collections.abc import Callable

import trio

from skulk import codec
from skulk.errors import CodecError
from skulk.node.topics import ELECTION_TOPIC, HEARTBEAT_TOPIC
from skulk.state.telemetry import TelemetryView
from skulk.types.election import ElectionMessage
from skulk.types.ids import NodeId
from skulk.types.wire import NodeHeartbeat

log = logging.getLogger(__name__)


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

    async def publish_election(self, msg: ElectionMessage) -> None:
        await self._net.publish(ELECTION_TOPIC, codec.encode(msg))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_heartbeats)
            nursery.start_soon(self._receive_elections)
            self._record(self._make_heartbeat())
            task_status.started()
            while True:
                hb = self._make_heartbeat()
                self._record(hb)
                try:
                    await self._net.publish(HEARTBEAT_TOPIC, codec.encode(hb))
                except Exception as exc:  # noqa: BLE001 - gossip is best effort
                    log.debug("heartbeat publish failed: %s", exc)
                await trio.sleep(self._interval)

    def _record(self, hb: NodeHeartbeat) -> None:
        self.telemetry.update(hb, trio.current_time())
        self.heartbeat_changed.set()
        self.heartbeat_changed = trio.Event()

    def _decode(self, data: bytes, kind):
        try:
            return codec.decode(data, kind)
        except CodecError as exc:
            self.counters["malformed_gossip"] += 1
            log.debug("dropped malformed gossip: %s", exc)
            return None

    async def _receive_heartbeats(self) -> None:
        async for msg in self._net.gossip_receiver(HEARTBEAT_TOPIC):
            hb = self._decode(msg.data, NodeHeartbeat)
            if hb is None or hb.node_id != msg.peer_id:
                continue  # a heartbeat speaks only for its own signer
            self.counters["heartbeats_received"] += 1
            self._record(hb)
            for addr in hb.listen_addrs:
                self._net.add_known_peer(addr)

    async def _receive_elections(self) -> None:
        async for msg in self._net.gossip_receiver(ELECTION_TOPIC):
            em = self._decode(msg.data, ElectionMessage)
            if em is not None:
                self.counters["election_received"] += 1
                self._election_in.send_nowait(em)
