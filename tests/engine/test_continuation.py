"""Failover's engine half: a request continued from the tokens already sent finishes exactly like
the uninterrupted one (text, finish reason, usage totals), on llama.cpp and MLX."""

import pytest

from skulk.engine.errors import InvalidSamplingParams
from skulk.engine.llama_engine import LlamaEngine
from skulk.engine.llama_model import LlamaModel
from skulk.engine.prompt import output_budget
from skulk.engine.sampling_spec import SamplingSpec
from skulk.engine.steps import Request, accept_token, text_stream
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

from .test_llama_engine import gguf_path
from .test_textstream import CharDetokenizer

COUNT = "Count from 1 to 50."  # the 135M model answers "1. 1\n2. 2\n..." greedily


def ask(text: str, **kw) -> TextGenerationTaskParams:
    kw.setdefault("temperature", 0.0)
    return TextGenerationTaskParams(model="m", input=[ChatMessage(role="user", content=text)], **kw)


def run(engine, params: TextGenerationTaskParams) -> list:
    return list(engine.stream("r", params))


def cut_and_continue(engine, params: TextGenerationTaskParams, cut: int) -> tuple[str, list]:
    """Stream `cut` outputs, then continue from their tokens: (text the client saw in all, outputs)."""
    first = run(engine, params)[:cut]
    sent_ids = [t for o in first for t in o.token_ids]
    rest = run(engine, params.model_copy(update={"continue_token_ids": sent_ids}))
    return "".join(o.text for o in first + rest), rest


@pytest.fixture(scope="module")
def llama():
    m = LlamaModel(gguf_path(), n_seq=2, n_ctx_seq=1024, n_threads=1)
    yield LlamaEngine(m, max_concurrent=2)
    m.close()


def test_llama_continuation_matches_the_uninterrupted_greedy_run(llama):
    params = ask(COUNT, max_output_tokens=48)
    whole = run(llama, params)
    text = "".join(o.text for o in whole)
    assert "5. 5" in text  # the model really counts: every cut lands mid-answer
    for cut in (1, 9, 30):
        seen, rest = cut_and_continue(llama, params, cut)
        assert seen == text, cut
        assert rest[-1].finish_reason == whole[-1].finish_reason
        assert rest[-1].usage == whole[-1].usage  # totals: the prefix counts as completion, not prompt


def test_llama_stop_string_across_the_seam_is_caught(llama):
    text = "".join(o.text for o in run(llama, ask(COUNT, max_output_tokens=48)))
    outs = run(llama, ask(COUNT, max_output_tokens=48))
    # A stop string that starts in the cut-off part and ends after it.
    sent = "".join(o.text for o in outs[:10])
    stop = text[len(sent) - 2: len(sent) + 4]
    assert len(stop) == 6 and text.find(stop) == len(sent) - 2  # its first occurrence spans the cut
    params = ask(COUNT, max_output_tokens=48, stop=[stop])
    uninterrupted = run(llama, params)
    seen, rest = cut_and_continue(llama, params, 10)
    assert seen == "".join(o.text for o in uninterrupted) and stop not in seen
    assert rest[-1].finish_reason == "stop" and rest[-1].stop_sequence == stop


def test_llama_budget_counts_the_prefix(llama):
    params = ask(COUNT, max_output_tokens=12)
    seen, rest = cut_and_continue(llama, params, 5)
    assert len(rest) == 7 and rest[-1].finish_reason == "length"
    assert rest[-1].usage.completion_tokens == 12
    with pytest.raises(InvalidSamplingParams):  # nothing left to generate: the API never asks this
        llama.submit("full", params.model_copy(update={"continue_token_ids": [1] * 12}))
    with pytest.raises(InvalidSamplingParams):
        llama.submit("bad", params.model_copy(update={"continue_token_ids": [llama.model.n_vocab]}))


def test_mlx_continuation_matches_the_uninterrupted_greedy_run(loaded):
    from skulk.engine.generate import Engine

    engine = Engine(loaded)
    params = ask("one two three", max_output_tokens=20)
    whole = run(engine, params)
    for cut in (1, 8):
        seen, rest = cut_and_continue(engine, params, cut)
        assert seen == "".join(o.text for o in whole)
        assert rest[-1].usage == whole[-1].usage and rest[-1].finish_reason == whole[-1].finish_reason


def test_replayed_prefix_keeps_held_text_and_a_half_stop_string():
    """The old stream sent "hello " and held "EN"; the continuation must not emit "D" once "END" completes."""
    sent = [ord(c) for c in "hello EN"]
    req = Request("r", [0, 0] + sent, 10, SamplingSpec(), ["END"], prefix=len(sent))
    fresh = Request("r", [0, 0] + sent, 10, SamplingSpec(), ["END"])

    class Seq:
        def __init__(self, r):
            self.req, self.generated, self.text = r, [], text_stream(CharDetokenizer(), r)

    out = accept_token(Seq(req), ord("D"), lambda t: False)
    assert (out.text, out.finish_reason, out.stop_sequence) == ("", "stop", "END")
    assert out.usage == (2, len(sent) + 1)
    assert accept_token(Seq(fresh), ord("D"), lambda t: False).text == "D"  # without replay it leaks


def test_output_budget_with_a_prefix():
    assert output_budget(100, 50, 1000, already=20) == 30
    assert output_budget(100, None, 1000, already=20) == 900  # n_prompt already holds the prefix
    assert output_budget(100, None, 0, already=48) == 2000
    with pytest.raises(InvalidSamplingParams):
        output_budget(100, 20, 1000, already=20)
