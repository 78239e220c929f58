"""Request params on the data plane: sent by the owner after TaskCreated, accepted only from it;
chunks coalesced per command and unpacked in order."""

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from skulk import codec
from skulk.faults import FAULTS
from skulk.node.dataplane import DataPlane, coalesce, unpack
from skulk.node.streams import StreamRegistry
from skulk.types.chunks import ChunkBatch, DataChunk, DataMessage, RequestParams, TokenChunk
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TextGeneration, TextGenerationTaskParams
from skulk.worker.params import UNKNOWN_TASK, ParamsStore, params_refusal
from tests.factories import ring_instance

PARAMS = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="the secret prompt")])


def _state(owner="api") -> State:
    task = TextGeneration(task_id="t1", instance_id="i1", command_id="c1", owner_node=owner, model="org/tiny")
    return State(instances={"i1": ring_instance("i1", ["rank0", "rank1"])}, tasks={"t1": task})


def _msg(**kw) -> RequestParams:
    return RequestParams(**{"task_id": "t1", "command_id": "c1", "generation": PARAMS, **kw})


def test_the_task_on_the_log_has_no_prompt():
    dumped = codec.encode(_state().tasks["t1"])
    assert b"secret prompt" not in dumped and b"org/tiny" in dumped


def test_params_are_accepted_only_from_the_tasks_owner_for_this_nodes_instance():
    state = _state()
    assert params_refusal(state, "rank1", "api", _msg()) is None
    assert "owned by api" in params_refusal(state, "rank1", "rank0", _msg())
    assert "another command" in params_refusal(state, "rank1", "api", _msg(command_id="c2"))
    assert "does not run on this node" in params_refusal(state, "elsewhere", "api", _msg())
    other_model = PARAMS.model_copy(update={"model": "org/other"})
    assert "org/other" in params_refusal(state, "rank1", "api", _msg(generation=other_model))
    assert params_refusal(State(), "rank1", "api", _msg()) == UNKNOWN_TASK


def test_the_data_plane_refuses_and_counts_params_from_a_non_owner():
    plane = DataPlane("rank0", None, "/skulk/data/1", StreamRegistry(), state=_state)
    before = FAULTS.counts["data.params_refused"]
    plane.receive("rogue", codec.encode(_msg(), DataMessage))
    assert "t1" not in plane.params and FAULTS.counts["data.params_refused"] == before + 1
    plane.receive("api", codec.encode(_msg(), DataMessage))
    assert plane.params.get("t1") == PARAMS


def test_params_that_overtake_their_task_wait_then_are_judged():
    now = {"state": State()}
    plane = DataPlane("rank0", None, "/skulk/data/1", StreamRegistry(), state=lambda: now["state"])
    plane.receive("rogue", codec.encode(_msg(), DataMessage))
    assert "t1" not in plane.params
    now["state"] = _state()
    before = FAULTS.counts["data.params_refused"]
    plane.on_state_changed()
    assert "t1" not in plane.params and FAULTS.counts["data.params_refused"] == before + 1  # the rogue's
    plane.receive("api", codec.encode(_msg(), DataMessage))
    assert plane.params.get("t1") == PARAMS


def test_the_owner_sends_params_once_the_state_names_the_instance():
    streams = StreamRegistry()
    streams.open("c1")
    streams.keep_params("c1", PARAMS)
    assert streams.take_due_params(State()) == []
    [(nodes, msg)] = streams.take_due_params(_state())
    assert nodes == ["rank0", "rank1"] and msg.task_id == "t1" and msg.generation == PARAMS
    assert streams.take_due_params(_state()) == []  # sent once


def test_the_store_is_bounded_and_wakes_its_worker():
    woke = []
    store = ParamsStore(limit=2)
    store.on_put = lambda: woke.append(1)
    for t in ("a", "b", "c"):
        store.put(t, PARAMS)
    assert store.known() == {"b", "c"} and len(woke) == 3
    store.prune({"c"})
    assert store.known() == {"c"}


def _chunks(command: str, first: int, n: int) -> list[DataChunk]:
    return [DataChunk(command_id=command, sequence=first + i, chunk=TokenChunk(text=f"{command}{first + i}"))
            for i in range(n)]


def test_coalesce_packs_each_commands_queued_chunks_into_one_message():
    queued = [*_chunks("x", 0, 3), _msg(), *_chunks("y", 5, 1), *_chunks("x", 3, 2)]
    out = coalesce(queued)
    assert isinstance(out[0], RequestParams)  # params first: a request waits on them
    x, y = out[1:]
    assert isinstance(x, ChunkBatch) and x.first_sequence == 0 and len(x.chunks) == 5
    assert isinstance(y, DataChunk) and y.sequence == 5
    back = codec.decode(codec.encode(x, DataMessage), DataMessage)
    assert [(s, c.text) for s, c in unpack(back)] == [(i, f"x{i}") for i in range(5)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 5)), max_size=12))
def test_coalesce_keeps_every_chunk_once_and_in_order_per_command(runs):
    next_seq: dict[str, int] = {}
    queued = []
    for command, n in runs:
        queued += _chunks(command, next_seq.get(command, 0), n)
        next_seq[command] = next_seq.get(command, 0) + n
    got: dict[str, list[int]] = {}
    for msg in coalesce(queued):
        got.setdefault(msg.command_id, []).extend(s for s, _ in unpack(msg))
    assert got == {c: list(range(n)) for c, n in next_seq.items()}
    assert len(coalesce(queued)) == len(next_seq)  # contiguous runs: one message per command


def test_a_received_batch_is_delivered_in_order_from_rank0_only():
    streams = StreamRegistry()
    recv = streams.open("c1")
    plane = DataPlane("api", None, "/skulk/data/1", streams, state=_state)
    batch = ChunkBatch(command_id="c1", first_sequence=0, chunks=[TokenChunk(text="a"), TokenChunk(text="b")])
    before = FAULTS.counts["data.forged_sender"]
    plane.receive("rank1", codec.encode(batch, DataMessage))
    plane.receive("rank0", codec.encode(batch, DataMessage))
    out = []
    while True:
        try:
            out.append(recv.receive_nowait().text)
        except trio.WouldBlock:
            break
    assert out == ["a", "b"] and FAULTS.counts["data.forged_sender"] == before + 1


def test_chunks_queued_behind_a_send_go_out_as_one_message():
    class _SlowNet:
        def __init__(self):
            self.sent, self.release = [], trio.Event()

        async def send_direct(self, peer, protocol, data, timeout=None):
            self.sent.append(codec.decode(data, DataMessage))
            await self.release.wait()

    async def scenario():
        net = _SlowNet()
        plane = DataPlane("rank0", net, "/skulk/data/1", StreamRegistry(), state=_state)
        _keep, never = trio.open_memory_channel(0)
        async with trio.open_nursery() as nursery:
            await nursery.start(plane.run, never)
            plane.send("api", "c1", TokenChunk(text="first"), final=False)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(20):  # the reader is slower than the writer
                plane.send("api", "c1", TokenChunk(text=f"t{i}"), final=i == 19)
            net.release.set()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert len(net.sent) == 2 and isinstance(net.sent[1], ChunkBatch)
        assert [s for s, _ in unpack(net.sent[1])] == list(range(1, 21))
        assert plane.counters["data_chunks_sent"] == 21 and plane.counters["data_messages_sent"] == 2

    trio.run(scenario)
