"""The data plane delivers a chunk only from rank 0's node of the task's instance."""

import trio

from skulk import codec
from skulk.faults import FAULTS
from skulk.node.dataplane import PENDING_PER_STREAM, DataPlane, rank0_node
from skulk.node.streams import StreamRegistry
from skulk.types.chunks import DataChunk, TokenChunk
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TextGeneration, TextGenerationTaskParams
from tests.factories import ring_instance

CMD = "cmd-1"


def _state() -> State:
    params = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="hi")])
    task = TextGeneration(task_id="t1", instance_id="i1", command_id=CMD, task_params=params)
    return State(instances={"i1": ring_instance("i1", ["rank0", "rank1"])}, tasks={"t1": task})


def _chunk(seq: int, text: str) -> bytes:
    return codec.encode(DataChunk(command_id=CMD, sequence=seq, chunk=TokenChunk(text=text)))


def _drain(recv) -> list[str]:
    out = []
    while True:
        try:
            out.append(recv.receive_nowait().text)
        except trio.WouldBlock:
            return out


def test_rank0_node_comes_from_the_shard_assignments():
    assert rank0_node(_state(), CMD) == "rank0"
    assert rank0_node(State(), CMD) is None
    assert rank0_node(_state(), "other") is None


def test_chunks_from_any_other_peer_are_dropped_and_counted():
    streams = StreamRegistry()
    recv = streams.open(CMD)
    plane = DataPlane("owner", None, "/skulk/data/1", streams, state=_state)
    before = FAULTS.counts["data.forged_sender"]
    plane.receive("rank0", _chunk(0, "hello"))
    plane.receive("rank1", _chunk(1, " INJECTED"))
    plane.receive("rogue", _chunk(2, " INJECTED"))
    plane.receive("rank0", _chunk(3, " world"))
    assert _drain(recv) == ["hello", " world"]
    assert FAULTS.counts["data.forged_sender"] == before + 2


def test_chunks_that_overtake_their_task_wait_for_the_state_then_are_judged():
    streams = StreamRegistry()
    recv = streams.open(CMD)
    state = {"now": State()}
    plane = DataPlane("owner", None, "/skulk/data/1", streams, state=lambda: state["now"])
    plane.receive("rank0", _chunk(0, "early"))
    plane.receive("rogue", _chunk(1, " INJECTED"))
    for seq in range(2, PENDING_PER_STREAM + 10):  # beyond the bound: dropped, not buffered
        plane.receive("rank0", _chunk(seq, "."))
    assert _drain(recv) == []
    state["now"] = _state()
    plane.on_state_changed()
    got = _drain(recv)
    assert got[0] == "early" and " INJECTED" not in got and len(got) == PENDING_PER_STREAM - 1


def test_garbage_and_chunks_for_closed_streams_go_nowhere():
    streams = StreamRegistry()
    plane = DataPlane("owner", None, "/skulk/data/1", streams, state=_state)
    before = FAULTS.counts["data.malformed"]
    plane.receive("rank0", b"\x01\xc1")
    plane.receive("rank0", _chunk(0, "nobody listens"))
    assert FAULTS.counts["data.malformed"] == before + 1 and len(streams) == 0


def test_a_stuck_owner_queue_is_bounded_and_its_request_dropped_not_gapped():
    from skulk.node.dataplane import OWNER_QUEUE

    class _StuckNet:
        sent = 0

        async def send_direct(self, *args, **kwargs):
            self.sent += 1
            await trio.sleep_forever()

    async def scenario():
        before = FAULTS.counts["data.owner_queue_full"]
        net = _StuckNet()
        plane = DataPlane("rank0", net, "/skulk/data/1", StreamRegistry(), state=_state)
        _keep, never_closed = trio.open_memory_channel(0)
        async with trio.open_nursery() as nursery:
            await nursery.start(plane.run, never_closed)
            for i in range(OWNER_QUEUE + 50):
                plane.send("owner", CMD, TokenChunk(text="x"), final=False)
            await trio.sleep(0)
            queued = plane._queues["owner"].statistics().current_buffer_used
            assert queued <= OWNER_QUEUE
            assert FAULTS.counts["data.owner_queue_full"] == before + 1  # once per request
            nursery.cancel_scope.cancel()

    trio.run(scenario)
