"""Queued requests are admitted in priority order, FIFO within a class: the shared WaitingQueue
(pure), then both engines with their batch cap full (llama.cpp on the default GGUF, MLX on the tiny
model)."""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from skulk.engine.waiting import WaitingQueue
from skulk.types.priority import PRIORITIES, rank
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

# Submitted while one normal request holds the only slot: (id, priority) in arrival order.
WAITING = [("low-1", "low"), ("normal-2", "normal"), ("high-3", "high"), ("low-4", "low"),
           ("high-5", "high"), ("normal-6", None)]
EXPECTED = ["busy", "high-3", "high-5", "normal-2", "normal-6", "low-1", "low-4"]


@dataclass
class _Req:
    id: str


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from([*PRIORITIES, None, "bogus"]), max_size=40), st.data())
def test_queue_pops_by_priority_then_arrival(priorities, data):
    q: WaitingQueue[_Req] = WaitingQueue()
    for i, p in enumerate(priorities):
        q.push(_Req(str(i)), p)
    cancelled = data.draw(st.sets(st.sampled_from([str(i) for i in range(len(priorities))]))) if priorities else set()
    assert {r.id for r in q.remove(cancelled)} == cancelled
    expected = sorted((i for i in range(len(priorities)) if str(i) not in cancelled),
                      key=lambda i: (rank(priorities[i]), i))
    assert [r.id for r in q] == [str(i) for i in expected]  # iteration shows admission order
    assert [q.pop().id for _ in range(len(q))] == [str(i) for i in expected]
    assert not q


def ask(text: str, tokens: int) -> TextGenerationTaskParams:
    return TextGenerationTaskParams(model="m", input=[ChatMessage(role="user", content=text)],
                                    max_output_tokens=tokens, temperature=0.0)


def admission_order(engine) -> list[str]:
    """Fill the one slot, queue WAITING behind it, step to idle; ids in the order they first produced."""
    engine.submit("busy", ask("Count from one to twenty.", 8))
    engine.step()  # "busy" is admitted alone and holds the slot
    for rid, priority in WAITING:
        engine.submit(rid, ask(f"Say the word {rid}.", 2), priority=priority)
    order, steps = ["busy"], 0
    while engine.has_work():
        for o in engine.step():
            if o.request_id not in order:
                order.append(o.request_id)
        steps += 1
        assert steps < 500
    return order


def test_llama_engine_admits_high_before_earlier_normal_and_low():
    from skulk.engine.llama_engine import LlamaEngine
    from skulk.engine.llama_model import LlamaModel
    from tests.engine.test_llama_engine import gguf_path
    model = LlamaModel(gguf_path(), n_seq=2, n_ctx_seq=512, n_threads=1)
    try:
        assert admission_order(LlamaEngine(model, max_concurrent=1)) == EXPECTED
    finally:
        model.close()


def test_llama_engine_cancelling_a_queued_request_keeps_the_order_of_the_rest():
    from skulk.engine.llama_engine import LlamaEngine
    from skulk.engine.llama_model import LlamaModel
    from tests.engine.test_llama_engine import gguf_path
    model = LlamaModel(gguf_path(), n_seq=2, n_ctx_seq=512, n_threads=1)
    try:
        engine = LlamaEngine(model, max_concurrent=1)
        engine.submit("busy", ask("Count from one to twenty.", 4))
        engine.step()
        for rid, priority in WAITING:
            engine.submit(rid, ask(rid, 1), priority=priority)
        engine.cancel("high-3")
        finished = []
        while engine.has_work():
            finished += [o.request_id for o in engine.step() if o.finished and o.finish_reason != "cancelled"]
        assert finished == [rid for rid in EXPECTED if rid != "high-3"]
    finally:
        model.close()


def test_mlx_engine_admits_high_before_earlier_normal_and_low(loaded):
    pytest.importorskip("mlx.core")
    from skulk.engine.generate import Engine
    assert admission_order(Engine(loaded, max_concurrent=1)) == EXPECTED


def test_the_runner_frame_carries_the_priority_to_the_engine():
    import io
    from skulk.engine import worker_main

    class Recorder:
        paused = False

        def __init__(self):
            self.got = []

        def submit(self, rid, params, trace=False, priority=None):
            self.got.append((rid, priority))
            return 1

    engine = Recorder()
    params = ask("hi", 1).model_dump(mode="json")
    worker_main._handle({"op": "generate", "id": "a", "params": params, "priority": "high"}, engine, io.BytesIO())
    worker_main._handle({"op": "generate", "id": "b", "params": params}, engine, io.BytesIO())
    assert engine.got == [("a", "high"), ("b", None)]
