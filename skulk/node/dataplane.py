"""Data plane: requests out to an instance's nodes, generated chunks back to the request's API node.

Out: once the master's TaskCreated names the instance, the API node that owns the request sends
its params (RequestParams) to every node of that instance; a node accepts them only from the
task's owner (worker/params.py). Back: rank 0's node sends chunks, coalesced: whatever is queued
for one command goes out as one ChunkBatch. A chunk is accepted only from the node that runs
rank 0 of its task's instance. Either may overtake the TaskCreated that lets it be judged, so it
waits (bounded) until the state catches up.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable

import trio

from skulk import codec
from skulk.errors import CodecError
from skulk.faults import count, isolate
from skulk.node.streams import StreamRegistry
from skulk.types.chunks import MAX_BATCH_CHUNKS, ChunkBatch, DataChunk, DataMessage, RequestParams
from skulk.types.ids import CommandId, NodeId
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES
from skulk.worker.params import UNKNOWN_TASK, ParamsStore, params_refusal

log = logging.getLogger(__name__)
OWNER_QUEUE = 4096  # messages waiting for one slow peer before that request's output is dropped
SEND_BATCH = 4096  # queued messages taken at once and coalesced
PENDING_PER_STREAM = 256
PENDING_STREAMS = 256
PENDING_PARAMS = 256  # params whose task this node does not know yet


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


def coalesce(messages: list) -> list:
    """Queued messages -> as few as possible: params first, then each command's consecutive chunks
    as one ChunkBatch (a lone chunk stays a DataChunk); each command's order is kept."""
    out: list = [m for m in messages if isinstance(m, RequestParams)]
    runs: dict[CommandId, list[list[DataChunk]]] = {}
    for m in messages:
        if not isinstance(m, DataChunk):
            continue
        command_runs = runs.setdefault(m.command_id, [])
        last = command_runs[-1] if command_runs else None
        if last and last[-1].sequence + 1 == m.sequence and len(last) < MAX_BATCH_CHUNKS:
            last.append(m)
        else:
            command_runs.append([m])
    for command_runs in runs.values():
        for run in command_runs:
            out.append(run[0] if len(run) == 1 else ChunkBatch(
                command_id=run[0].command_id, first_sequence=run[0].sequence, chunks=[c.chunk for c in run]))
    return out


def unpack(msg: DataChunk | ChunkBatch) -> list[tuple[int, object]]:
    """(sequence, chunk) pairs of one received message."""
    if isinstance(msg, DataChunk):
        return [(msg.sequence, msg.chunk)]
    return [(msg.first_sequence + i, chunk) for i, chunk in enumerate(msg.chunks)]


class DataPlane:
    def __init__(self, node_id: NodeId, net, protocol: str, streams: StreamRegistry,
                 state: Callable[[], State] = State, params: ParamsStore | None = None):
        self.node_id = node_id
        self._net = net
        self._protocol = protocol
        self.streams = streams
        self._state = state
        self.params = params if params is not None else ParamsStore()  # the worker's, on instance nodes
        self._seq: dict[CommandId, int] = {}
        self._queues: dict[NodeId, trio.MemorySendChannel] = {}
        self._overflowed: set[CommandId] = set()
        self._senders: dict[CommandId, NodeId] = {}  # rank 0's node, once resolved
        self._pending: dict[CommandId, list[tuple[NodeId, DataChunk | ChunkBatch]]] = {}
        self._pending_params: OrderedDict[str, tuple[NodeId, RequestParams]] = OrderedDict()
        self.counters = {"data_chunks_sent": 0, "data_messages_sent": 0, "data_send_failures": 0,
                         "malformed_data": 0, "request_params_sent": 0, "request_params_accepted": 0}

    # ----- sending -----

    def send(self, owner: NodeId, command_id: CommandId, chunk, *, final: bool) -> None:
        seq = self._seq.get(command_id, 0)
        self._seq[command_id] = seq + 1
        if final:
            self._seq.pop(command_id, None)
        if owner == self.node_id:
            self.streams.deliver(command_id, seq, chunk)
            return
        self._enqueue(owner, DataChunk(command_id=command_id, sequence=seq, chunk=chunk), final=final)

    def send_params(self) -> None:
        """Params of this node's open requests whose task the state now names, to its instance's nodes."""
        for nodes, msg in self.streams.take_due_params(self._state()):
            for node in nodes:
                self.counters["request_params_sent"] += 1
                if node == self.node_id:
                    self._accept_params(node, msg)
                else:
                    self._enqueue(node, msg, final=False)

    def _enqueue(self, peer: NodeId, msg, *, final: bool) -> None:
        queue = self._queues.get(peer)
        if queue is None:
            queue, recv = trio.open_memory_channel(OWNER_QUEUE)
            self._queues[peer] = queue
            self._nursery.start_soon(self._sender, peer, recv)
        command_id = msg.command_id
        try:
            if command_id not in self._overflowed:
                queue.send_nowait(msg)
        except trio.WouldBlock:
            # A gap would hand the client wrong text: drop the rest of this request instead.
            self._overflowed.add(command_id)
            count("data.owner_queue_full", f"peer {peer} is not keeping up; dropping {command_id}")
        if final:
            self._overflowed.discard(command_id)

    async def _sender(self, peer: NodeId, recv: trio.MemoryReceiveChannel) -> None:
        """One ordered sender per peer; what queued up while it sent goes out coalesced."""
        async for first in recv:
            batch = [first]
            while len(batch) < SEND_BATCH:
                try:
                    batch.append(recv.receive_nowait())
                except trio.WouldBlock:
                    break
            for msg in coalesce(batch):
                await self._send_one(peer, msg)

    async def _send_one(self, peer: NodeId, msg) -> None:
        try:
            await self._net.send_direct(peer, self._protocol, codec.encode(msg, DataMessage), timeout=5.0)
            self.counters["data_messages_sent"] += 1
            self.counters["data_chunks_sent"] += len(msg.chunks) if isinstance(msg, ChunkBatch) else 1
        except Exception as exc:  # noqa: BLE001 - the owner times the stream out; a worker fails the task
            self.counters["data_send_failures"] += 1
            log.debug("data message to %s failed: %s", peer, exc)

    # ----- receiving -----

    async def run(self, receiver, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            async for message in receiver:
                with isolate("data.chunk"):
                    self.receive(message.peer_id, message.data)

    def receive(self, peer: NodeId, data: bytes) -> None:
        try:
            msg = codec.decode(data, DataMessage)
        except CodecError as exc:
            self.counters["malformed_data"] += 1
            count("data.malformed", str(exc)[:300])
            return
        if isinstance(msg, RequestParams):
            self._accept_params(peer, msg)
        elif msg.command_id in self.streams:
            self._accept(peer, msg)
        # else: late (the stream ended) or for nobody: nothing to protect or deliver

    def _accept_params(self, peer: NodeId, msg: RequestParams) -> None:
        refusal = params_refusal(self._state(), self.node_id, peer, msg)
        if refusal is None:
            self.counters["request_params_accepted"] += 1
            self.params.put(msg.task_id, msg.params)
        elif refusal == UNKNOWN_TASK:
            self._pending_params[msg.task_id] = (peer, msg)
            if len(self._pending_params) > PENDING_PARAMS:
                self._pending_params.popitem(last=False)
                count("data.params_pending_full", "params for tasks this node does not know; oldest dropped")
        else:
            count("data.params_refused", refusal)

    def _accept(self, peer: NodeId, msg: DataChunk | ChunkBatch) -> None:
        rank0 = self._rank0(msg.command_id)
        if rank0 is None:
            self._hold(peer, msg)
        elif peer == rank0 or peer == self.node_id:
            for seq, chunk in unpack(msg):
                self.streams.deliver(msg.command_id, seq, chunk)
        else:
            count("data.forged_sender", f"{peer} sent a chunk for {msg.command_id[:80]}, served by {rank0}")

    def _rank0(self, command_id: CommandId) -> NodeId | None:
        known = self._senders.get(command_id)
        if known is None:
            known = rank0_node(self._state(), command_id, self.streams.instance_of(command_id))
            if known is not None:
                self._senders[command_id] = known
        return known

    def _hold(self, peer: NodeId, msg: DataChunk | ChunkBatch) -> None:
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
        """The state moved on: send due params; judge waiting chunks and params whose task is now known."""
        with isolate("data.params_send"):
            self.send_params()
        for command_id in list(self._pending):
            if command_id not in self.streams:
                del self._pending[command_id]
            elif self._rank0(command_id) is not None:
                for peer, msg in self._pending.pop(command_id):
                    with isolate("data.chunk"):
                        self._accept(peer, msg)
        self._senders = {c: n for c, n in self._senders.items() if c in self.streams}
        state = self._state()
        for task_id in [t for t in self._pending_params if t in state.tasks]:
            peer, msg = self._pending_params.pop(task_id)
            with isolate("data.params"):
                self._accept_params(peer, msg)
