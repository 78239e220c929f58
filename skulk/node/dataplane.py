"""Data plane: rank 0's node sends generated chunks straight to the request's API node."""

import logging
import math

import trio

from skulk import codec
from skulk.errors import CodecError
from skulk.node.streams import StreamRegistry
from skulk.types.chunks import DataChunk
from skulk.types.ids import CommandId, NodeId

log = logging.getLogger(__name__)


class DataPlane:
    def __init__(self, node_id: NodeId, net, protocol: str, streams: StreamRegistry):
        self.node_id = node_id
        self._net = net
        self._protocol = protocol
        self.streams = streams
        self._seq: dict[CommandId, int] = {}
        self._queues: dict[NodeId, trio.MemorySendChannel] = {}
        self.counters = {"data_chunks_sent": 0, "data_send_failures": 0, "malformed_data": 0}

    def send(self, owner: NodeId, command_id: CommandId, chunk, *, final: bool) -> None:
        seq = self._seq.get(command_id, 0)
        self._seq[command_id] = seq + 1
        if final:
            self._seq.pop(command_id, None)
        msg = DataChunk(command_id=command_id, sequence=seq, chunk=chunk)
        if owner == self.node_id:
            self.streams.deliver(command_id, seq, chunk)
            return
        queue = self._queues.get(owner)
        if queue is None:
            queue, recv = trio.open_memory_channel(math.inf)
            self._queues[owner] = queue
            self._nursery.start_soon(self._sender, owner, recv)
        queue.send_nowait(msg)

    async def _sender(self, owner: NodeId, recv: trio.MemoryReceiveChannel) -> None:
        """One ordered sender per owner node, so chunks of a stream never overtake each other."""
        async for msg in recv:
            try:
                await self._net.send_direct(owner, self._protocol, codec.encode(msg), timeout=5.0)
                self.counters["data_chunks_sent"] += 1
            except Exception as exc:  # noqa: BLE001 - the owner will time the stream out
                self.counters["data_send_failures"] += 1
                log.debug("data chunk to %s failed: %s", owner, exc)

    async def run(self, receiver, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            async for message in receiver:
                try:
                    msg = codec.decode(message.data, DataChunk)
                except CodecError:
                    self.counters["malformed_data"] += 1
                    continue
                self.streams.deliver(msg.command_id, msg.sequence, msg.chunk)
