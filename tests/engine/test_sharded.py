"""Real multi-process rings on 127.0.0.1: sharded greedy ids equal the single-rank ids, and a
lost rank takes its peers down within seconds. At most 3 rank processes run at a time."""

import time

import pytest

from .helpers import chat, start_ranks, stop_all

PROMPTS = {"a": "what is the capital of France?", "b": "one two three four"}
MAX_TOKENS = 12


def send_all(workers, rid, params):
    for w in workers:
        w.send({"op": "generate", "id": rid, "params": params})


def greedy_ids(workers) -> dict[str, list[int]]:
    """Both prompts at once (so they decode as a batch); every rank must finish both."""
    for rid, text in PROMPTS.items():
        send_all(workers, rid, chat(text, max_output_tokens=MAX_TOKENS, temperature=0.0))
    chunks = workers[0].collect_many(list(PROMPTS), timeout=60)
    for follower in workers[1:]:
        final = follower.collect_many(list(PROMPTS), timeout=30)
        assert all(c[-1]["finish_reason"] == "length" for c in final.values())
    return {rid: [t for c in cs for t in c["token_ids"]] for rid, cs in chunks.items()}


def ready_all(workers) -> list[dict]:
    return [w.expect("ready", 90) for w in workers]


@pytest.fixture(scope="module")
def baseline(tiny_model_dir, tmp_path_factory):
    workers = start_ranks(tiny_model_dir, tmp_path_factory.mktemp("solo"), "pipeline", 1)
    try:
        (ready,) = ready_all(workers)
        ids = greedy_ids(workers)
    finally:
        stop_all(workers)
    assert all(len(v) == MAX_TOKENS for v in ids.values())
    return {"ids": ids, "memory": ready["active_memory"]}


def kill_mid_generation(workers, victim: int) -> None:
    """Start a long generation, kill one rank after the first token, expect the rest to exit 3."""
    send_all(workers, "long", chat(PROMPTS["a"], max_output_tokens=200, temperature=0.0))
    workers[0].expect("chunk", 30)  # rank 0 streams: the generation is under way
    workers[victim].stop()
    killed_at = time.monotonic()
    survivors = [w for i, w in enumerate(workers) if i != victim]
    for w in survivors:
        if w.proc.poll() is None:  # still stepping, or idle because "long" already finished
            w.send({"op": "generate", "id": "after", "params": chat("x", max_output_tokens=50)})
    for w in survivors:
        fatal = w.expect("fatal", 15)
        assert fatal["code"] == "ring_peer_lost", fatal
        assert w.exit_code(10) == 3
    assert time.monotonic() - killed_at < 15


def test_pipeline_two_ranks_match_and_survivor_exits_on_peer_loss(tiny_model_dir, tmp_path, baseline):
    workers = start_ranks(tiny_model_dir, tmp_path, "pipeline", 2)
    try:
        readies = ready_all(workers)
        assert [(r["start_layer"], r["end_layer"]) for r in readies] == [(0, 3), (3, 6)]
        # each rank holds only its own layers' weights
        assert all(r["active_memory"] < 0.7 * baseline["memory"] for r in readies)
        assert greedy_ids(workers) == baseline["ids"]
        kill_mid_generation(workers, victim=1)
    finally:
        stop_all(workers)


def test_pipeline_three_ranks_match_and_followers_exit_when_rank0_dies(tiny_model_dir, tmp_path, baseline):
    # a 5-token prefill step sends the prompt through the ranks in several chunks
    workers = start_ranks(tiny_model_dir, tmp_path, "pipeline", 3, extra=["--prefill-step", "5"])
    try:
        ready_all(workers)
        assert greedy_ids(workers) == baseline["ids"]
        kill_mid_generation(workers, victim=0)
    finally:
        stop_all(workers)


def test_tensor_two_ranks_match(tiny_model_dir, tmp_path, baseline):
    workers = start_ranks(tiny_model_dir, tmp_path, "tensor", 2)
    try:
        ready_all(workers)
        assert greedy_ids(workers) == baseline["ids"]
    finally:
        stop_all(workers)


def test_a_peer_that_never_starts_fails_the_connect_within_the_deadline(tiny_model_dir, tmp_path):
    workers = start_ranks(tiny_model_dir, tmp_path, "pipeline", 2, only_ranks=[0], deadline_s=2)
    try:
        started = time.monotonic()
        fatal = workers[0].expect("fatal", 20)
        assert fatal["code"] == "group_connect_timeout" and "rank 1" in fatal["message"]
        assert workers[0].exit_code(10) == 4
        assert time.monotonic() - started < 15
    finally:
        stop_all(workers)
