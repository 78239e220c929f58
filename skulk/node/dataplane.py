"""Data plane: rank 0's node sends generated chunks straight to the request's API node.

A chunk is accepted only from the node that runs rank 0 of its task's instance, as the
replicated state says. A chunk may overtake the TaskCreated that names that node, so chunks of
an open stream whose task is not known yet wait (bounded) until the state catches up.
"""

import logging
from collections.abc import Callable

import trio

from skulk import codec
from skulk.errors import CodecError
from skulk.faults import count, isolate
from skulk.node.streams import StreamRegistry
from skulk.types.chunks import DataChunk
from skulk.types.ids import CommandId, NodeId
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES

log = logging.getLogger(__name__)
OWNER_QUEUE = 4096  # chunks waiting for one slow owner before that request's output is dropped
PENDING_PER_STREAM = 256
PENDING_STREAMS = 256


def rank0_node(state: State, command_id: CommandId, instance_id: str | None = None) -> NodeId | None:
    """The node running rank 0 of the instance that serves `command_id`, if the state knows it."""
    if instance_id is None:
        task = next((t for t in state.tasks.values()
                     if isinstance(t, SERVING_TASK_TYPES) and t.command_id == command_id), None)
        instance_id = task.instance_id if task is not None else None
    instance = state.instances.get(instance_id) if instance_id is not None else None
    if instance is None:
        return None
    shards = instance.shard_assignments
    for node, runner in shards.node_to_runner.items():
        shard = shards.runner_to_shard.get(runner)
        if shard is not None and shard.device_rank == 0:
            return node
    return None


class DataPlane:
    def __init__(self, node_id: NodeId, net, protocol: str, streams: StreamRegistry,
                 state: Callable[[], State] = State):
        self.node_id = node_id
        self._net = net
        self._protocol = protocol
        self.streams = streams
        self._state = state
        self._seq: dict[CommandId, int] = {}
        self._queues: dict[NodeId, trio.MemorySendChannel] = {}
        self._overflowed: set[CommandId] = set()
        self._senders: dict[CommandId, NodeId] = {}  # rank 0's node, once resolved
        self._pending: dict[CommandId, list[tuple[NodeId, DataChunk]]] = {}
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
        self._enqueue(owner, msg, final=final)

    def _enqueue(self, owner: NodeId, msg: DataChunk, *, final: bool) -> None:
        queue = self._queues.get(owner)
        if queue is None:
            queue, recv = trio.open_memory_channel(OWNER_QUEUE)
            self._queues[owner] = queue
            self._nursery.start_soon(self._sender, owner, recv)
        try:
            if msg.command_id not in self._overflowed:
                queue.send_nowait(msg)
        except trio.WouldBlock:
            # A gap would hand the client wrong text: drop the rest of this request instead.
            self._overflowed.add(msg.command_id)
            count("data.owner_queue_full", f"owner {owner} is not keeping up; dropping {msg.command_id}")
        if final:
            self._overflowed.discard(msg.command_id)

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
                with isolate("data.chunk"):
                    self.receive(message.peer_id, message.data)

    def receive(self, peer: NodeId, data: bytes) -> None:
        try:
            msg = codec.decode(data, DataChunk)
        except CodecError as exc:
            self.counters["malformed_data"] += 1
            count("data.malformed", str(exc)[:300])
            return
        if msg.command_id not in self.streams:
            return  # late (the stream ended) or for nobody: nothing to protect or deliver
        self._accept(peer, msg)

    def _accept(self, peer: NodeId, msg: DataChunk) -> None:
        rank0 = self._rank0(msg.command_id)
        if rank0 is None:
            self._hold(peer, msg)
        elif peer == rank0 or peer == self.node_id:
            self.streams.deliver(msg.command_id, msg.sequence, msg.chunk)
        else:
            count("data.forged_sender", f"{peer} sent a chunk for {msg.command_id[:80]}, served by {rank0}")

    def _rank0(self, command_id: CommandId) -> NodeId | None:
        known = self._senders.get(command_id)
        if known is None:
            known = rank0_node(self._state(), command_id, self.streams.instance_of(command_id))
            if known is not None:
                self._senders[command_id] = known
        return known

    def _hold(self, peer: NodeId, msg: DataChunk) -> None:
        waiting = self._pending.get(msg.command_id)
        if waiting is None and len(self._pending) >= PENDING_STREAMS:
            count("data.pending_full", f"too many streams wait for their task; dropped {msg.command_id[:80]}")
            return
        waiting = self._pending.setdefault(msg.command_id, [])
        if len(waiting) >= PENDING_PER_STREAM:
            count("data.pending_full", f"chunk of {msg.command_id[:80]} before its task was known")
            return
        waiting.append((peer, msg))

    def on_state_changed(self) -> None:
        """The state moved on: deliver (or refuse) waiting chunks whose task is now known."""
        for command_id in list(self._pending):
            if command_id not in self.streams:
                del self._pending[command_id]
            elif self._rank0(command_id) is not None:
                for peer, msg in self._pending.pop(command_id):
                    with isolate("data.chunk"):
                        self._accept(peer, msg)
        self._senders = {c: n for c, n in self._senders.items() if c in self.streams}
