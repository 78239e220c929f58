"""Single-process engine behaviour: batching, sampling, stops, limits, cancellation."""

import mlx.core as mx
import pytest
from mlx_lm.generate import generate_step

from skulk.engine.errors import ContextLengthExceeded, InvalidSamplingParams
from skulk.engine.generate import Engine
from skulk.engine.prompt import prompt_tokens
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

PROMPTS = [
    "hello world", "what is the capital of France?", "one two three", "tell me a story",
    "blue river", "x", "gamma delta", "the quick brown fox jumps over the lazy dog",
]


def params(text: str, **kw) -> TextGenerationTaskParams:
    kw.setdefault("temperature", 0.0)
    return TextGenerationTaskParams(model="tiny", input=[ChatMessage(role="user", content=text)], **kw)


def run_alone(loaded, p: TextGenerationTaskParams, **engine_kw) -> tuple[str, list[int], str]:
    outs = list(Engine(loaded, **engine_kw).stream("solo", p))
    return "".join(o.text for o in outs), [t for o in outs for t in o.token_ids], outs[-1].finish_reason


def run_all(engine: Engine) -> dict[str, list]:
    """Step until idle; per request the list of outputs. Also checks the concurrency cap."""
    got: dict[str, list] = {}
    while engine.has_work():
        outs = engine.step()
        assert len({o.request_id for o in outs if o.finish_reason != "cancelled"}) <= engine.max_concurrent
        for o in outs:
            got.setdefault(o.request_id, []).append(o)
    return got


def joined(outs) -> tuple[str, list[int]]:
    return "".join(o.text for o in outs), [t for o in outs for t in o.token_ids]


def test_greedy_matches_mlx_lm_generate_step(loaded):
    p = params(PROMPTS[1], max_output_tokens=12)
    _, ids, reason = run_alone(loaded, p)
    prompt = mx.array(prompt_tokens(loaded.tokenizer, p))
    ref = [int(t) for t, _ in generate_step(prompt, loaded.model, max_tokens=12)]
    assert ids == ref and reason == "length"


def test_eight_concurrent_requests_match_each_alone(loaded):
    limits = {f"r{i}": 10 + i for i in range(8)}  # different lengths: requests leave mid-batch
    alone = {f"r{i}": run_alone(loaded, params(t, max_output_tokens=limits[f"r{i}"]))[:2] for i, t in enumerate(PROMPTS)}
    engine = Engine(loaded, max_concurrent=8)
    for i, text in enumerate(PROMPTS):
        engine.submit(f"r{i}", params(text, max_output_tokens=limits[f"r{i}"]))
    got = run_all(engine)
    assert {rid: joined(outs) for rid, outs in got.items()} == alone


def test_requests_joining_a_running_batch_match_alone(loaded):
    alone = {f"r{i}": run_alone(loaded, params(t, max_output_tokens=12))[:2] for i, t in enumerate(PROMPTS)}
    engine = Engine(loaded, max_concurrent=8)
    got: dict[str, list] = {}
    for i, text in enumerate(PROMPTS[:5]):
        engine.submit(f"r{i}", params(text, max_output_tokens=12))
    for _ in range(3):
        for o in engine.step():
            got.setdefault(o.request_id, []).append(o)
    for i, text in enumerate(PROMPTS[5:], start=5):  # join while the first five are decoding
        engine.submit(f"r{i}", params(text, max_output_tokens=12))
    for rid, outs in run_all(engine).items():
        got.setdefault(rid, []).extend(outs)
    assert {rid: joined(outs) for rid, outs in got.items()} == alone


def test_requests_beyond_the_cap_queue_and_still_match(loaded):
    alone = {f"q{i}": run_alone(loaded, params(t, max_output_tokens=6))[:2] for i, t in enumerate(PROMPTS[:5])}
    engine = Engine(loaded, max_concurrent=2)
    for i, text in enumerate(PROMPTS[:5]):
        engine.submit(f"q{i}", params(text, max_output_tokens=6))
    got = run_all(engine)  # asserts at most 2 requests progress per step
    assert {rid: joined(outs) for rid, outs in got.items()} == alone


def test_max_concurrent_from_env(loaded, monkeypatch):
    monkeypatch.setenv("SKULK_MAX_CONCURRENT_REQUESTS", "3")
    assert Engine(loaded).max_concurrent == 3
    monkeypatch.delenv("SKULK_MAX_CONCURRENT_REQUESTS")
    assert Engine(loaded).max_concurrent == 8


def test_length_finish_and_usage(loaded):
    p = params(PROMPTS[0], max_output_tokens=5)
    outs = list(Engine(loaded).stream("a", p))
    assert [o.finished for o in outs] == [False] * 4 + [True]
    assert outs[-1].finish_reason == "length"
    n_prompt = len(prompt_tokens(loaded.tokenizer, p))
    assert outs[-1].usage == (n_prompt, 5) and outs[-1].usage.total_tokens == n_prompt + 5


def test_stop_string_truncates_and_finishes_with_stop(loaded):
    full, _, _ = run_alone(loaded, params(PROMPTS[2], max_output_tokens=30))
    stop = full[12:15]
    expected = full[: full.find(stop)]
    outs = list(Engine(loaded).stream("s", params(PROMPTS[2], max_output_tokens=30, stop=["zzz-never", stop])))
    assert "".join(o.text for o in outs) == expected
    assert outs[-1].finish_reason == "stop"


def test_eos_token_finishes_with_stop_and_is_not_text(loaded):
    full, ids, _ = run_alone(loaded, params(PROMPTS[3], max_output_tokens=12))
    k = next(i for i in range(3, len(ids)) if ids[i] not in ids[:i])
    engine = Engine(loaded, eos_token_ids={ids[k]})
    outs = list(engine.stream("e", params(PROMPTS[3], max_output_tokens=12)))
    assert outs[-1].finish_reason == "stop"
    assert outs[-1].usage.completion_tokens == k + 1
    assert "".join(o.text for o in outs) == loaded.tokenizer.decode(ids[:k])


def test_pieces_concatenate_to_the_decoded_ids(loaded):
    text, ids, _ = run_alone(loaded, params(PROMPTS[4], max_output_tokens=20))
    assert text == loaded.tokenizer.decode(ids)


def test_context_limit_is_an_error_not_a_crash(loaded):
    engine = Engine(loaded, context_limit=40)
    p = params(PROMPTS[0], max_output_tokens=100)
    with pytest.raises(ContextLengthExceeded) as info:
        engine.submit("too-long", p)
    assert info.value.code == "context_length_exceeded" and info.value.status == 400
    with pytest.raises(ContextLengthExceeded):
        engine.submit("huge-prompt", params(" ".join(["hello world"] * 40)))
    n_prompt = engine.submit("fits", params(PROMPTS[0]))  # no max: the rest of the context
    got = run_all(engine)
    assert got["fits"][-1].usage.completion_tokens == 40 - n_prompt
    assert got["fits"][-1].finish_reason == "length"


def test_invalid_sampling_params_are_rejected(loaded):
    with pytest.raises(InvalidSamplingParams):
        Engine(loaded).submit("bad", params("x", top_p=0.0))


def test_seeded_sampling_is_reproducible_alone_and_batched(loaded):
    def sampled(seed):
        return params(PROMPTS[5], temperature=0.9, top_p=0.95, top_k=50, seed=seed, max_output_tokens=16)

    first = run_alone(loaded, sampled(7))[1]
    assert run_alone(loaded, sampled(7))[1] == first
    assert run_alone(loaded, sampled(8))[1] != first
    engine = Engine(loaded)
    engine.submit("other", params(PROMPTS[0], temperature=1.0, max_output_tokens=16))
    engine.submit("seeded", sampled(7))
    assert joined(run_all(engine)["seeded"])[1] == first


def test_repetition_penalty_changes_greedy_output(loaded):
    plain = run_alone(loaded, params(PROMPTS[6], max_output_tokens=24))[1]
    penalised = run_alone(loaded, params(PROMPTS[6], max_output_tokens=24, repetition_penalty=1.8))[1]
    assert penalised != plain


def test_cancel_running_and_queued_requests(loaded):
    alone = run_alone(loaded, params(PROMPTS[0], max_output_tokens=10))[:2]
    engine = Engine(loaded, max_concurrent=2)
    engine.submit("keep", params(PROMPTS[0], max_output_tokens=10))
    engine.submit("drop", params(PROMPTS[1], max_output_tokens=10))
    engine.submit("queued", params(PROMPTS[2], max_output_tokens=10))
    first = engine.step()
    assert {o.request_id for o in first} == {"keep", "drop"}
    assert engine.cancel("drop") and engine.cancel("queued") and not engine.cancel("nope")
    got = run_all(engine)
    assert [o.finish_reason for o in got["drop"]] == ["cancelled"]
    assert [o.finish_reason for o in got["queued"]] == ["cancelled"]
    keep = [o for o in first if o.request_id == "keep"] + got["keep"]
    assert joined(keep) == alone


def test_duplicate_request_id_is_refused(loaded):
    engine = Engine(loaded)
    engine.submit("dup", params("x", max_output_tokens=2))
    with pytest.raises(ValueError):
        engine.submit("dup", params("x", max_output_tokens=2))


def test_chunked_prefill_matches_one_pass(loaded):
    p = params(PROMPTS[7], max_output_tokens=10)
    assert run_alone(loaded, p, prefill_step=3)[:2] == run_alone(loaded, p)[:2]


def test_follower_steps_only_while_rank0_is_known_to_step(loaded):
    # rank 1 of a pretend 2-rank group; none of these calls communicates
    fake = type(loaded)(loaded.model, loaded.tokenizer, loaded.config, None, 1, 2, None)
    engine = Engine(fake)
    assert not engine.has_work()
    engine.submit("x", params("x", max_output_tokens=2))
    assert engine.has_work() and not engine.cancel("x")
    engine._expected.clear()
    engine._settled.append("y")  # rank 0 admitted "y" before this rank saw it
    engine.submit("y", params("y", max_output_tokens=2))
    assert not engine.has_work()
