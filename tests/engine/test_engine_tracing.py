"""Per-task spans inside the runner: the bounded tracer, and what the engine records."""

import pytest

from skulk.engine.generate import Engine
from skulk.engine.tracing import TaskTracer

from .test_engine import params, run_all


def test_tracer_records_only_traced_tasks_and_folds_past_its_bound():
    clock = iter(range(0, 1000, 10))
    tracer = TaskTracer(max_spans=2, clock=lambda: next(clock))
    tracer.begin("t")
    for _ in range(4):
        with tracer.span(["t", "untraced"], "decode", "decode", batch=2):
            pass
    tracer.marker("t", "cancelled")
    spans = tracer.finish("t")
    assert [(s["cat"], s["dur"]) for s in spans[:2]] == [("decode", 10), ("decode", 10)]
    folded = {(s["cat"], s["name"]): s for s in spans[2:]}
    assert folded[("decode", "decode")]["dur"] == 20 and folded[("decode", "decode")]["attrs"] == {"folded": 2}
    assert folded[("marker", "cancelled")]["dur"] == 0
    assert tracer.finish("t") is None and tracer.finish("untraced") is None


def test_tracer_records_a_span_that_raised():
    tracer = TaskTracer()
    tracer.begin("t")
    with pytest.raises(RuntimeError), tracer.span(["t"], "decode", "decode"):
        raise RuntimeError("boom")
    assert [s["name"] for s in tracer.finish("t")] == ["decode"]


def test_traced_request_gets_queue_prefill_decode_and_sample_spans(loaded):
    engine = Engine(loaded, max_concurrent=2)
    engine.submit("traced", params("hello world", max_output_tokens=6), trace=True)
    engine.submit("plain", params("one two three", max_output_tokens=6))
    got = run_all(engine)
    assert got["traced"][-1].finished and engine.tracer.finish("plain") is None
    spans = engine.tracer.finish("traced")
    counts: dict[str, int] = {}
    for s in spans:
        counts[s["cat"]] = counts.get(s["cat"], 0) + 1
        assert s["dur"] >= 0 and s["ts"] > 1_600_000_000_000_000  # wall-clock µs
    # one prefill (its own sample) and five decode steps, each with a sample; no ring, so no collectives
    assert counts == {"queue": 1, "prefill": 1, "decode": 5, "sample": 6}
    prefill = next(s for s in spans if s["cat"] == "prefill")
    assert prefill["attrs"]["prompt_tokens"] > 0 and engine.tracer.open_tasks == []


def test_cancelled_traced_request_is_marked(loaded):
    engine = Engine(loaded)
    engine.submit("c", params("tell me a story", max_output_tokens=50), trace=True)
    engine.step()
    engine.cancel("c")
    got = run_all(engine)
    assert got["c"][-1].finish_reason == "cancelled"
    assert "cancelled" in [s["name"] for s in engine.tracer.finish("c") if s["cat"] == "marker"]
