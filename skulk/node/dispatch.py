"""Direct cluster messages: decode once, count and drop garbage, route to router or master."""

import logging
from collections.abc import Callable

import trio

from skulk import codec
from skulk.errors import CodecError
from skulk.faults import count, isolate
from skulk.types.ids import NodeId
from skulk.types.wire import ClusterMessage, IndexedEvents

log = logging.getLogger(__name__)


class ClusterMessenger:
    """Sends ClusterMessages to any node, short-circuiting messages to ourselves."""

    def __init__(self, node_id: NodeId, net, protocol: str):
        self.node_id = node_id
        self._net = net
        self._protocol = protocol
        self.on_indexed: Callable[[IndexedEvents], None] = lambda msg: None
        self.master_inbox: Callable[[], object | None] = lambda: None
        self.counters = {"malformed_messages": 0, "master_messages_dropped": 0}

    async def send(self, peer: NodeId, msg) -> None:
        if peer == self.node_id:
            self.deliver(peer, msg)
            return
        await self._net.send_direct(peer, self._protocol, codec.encode(msg, ClusterMessage))

    def receive_bytes(self, peer: NodeId, data: bytes) -> None:
        try:
            msg = codec.decode(data, ClusterMessage)
        except CodecError as exc:
            self.counters["malformed_messages"] += 1
            count("cluster.malformed", f"from {peer}: {exc}"[:300])
            return
        self.deliver(peer, msg)

    def deliver(self, peer: NodeId, msg) -> None:
        if isinstance(msg, IndexedEvents):
            if msg.session.master_node_id == peer:  # only the session's master indexes
                self.on_indexed(msg)
            else:
                count("cluster.indexed_not_from_master", f"{peer} sent events for {msg.session.master_node_id}")
            return
        inbox = self.master_inbox()
        if inbox is None:
            self.counters["master_messages_dropped"] += 1
            return
        try:
            inbox.send_nowait((peer, msg))
        except trio.WouldBlock:  # the master is behind: the sender retries (outbox, forwarding)
            self.counters["master_messages_dropped"] += 1
            count("master.inbox_full", f"{type(msg).__name__} from {peer}")

    async def run(self, receiver) -> None:
        async for message in receiver:
            with isolate("cluster.message"):
                self.receive_bytes(message.peer_id, message.data)
