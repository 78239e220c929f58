"""Pause/resume of a runner process (warm cache): the model is freed in place, a resume reloads it
without a new process, and the answers after the wake are the same as before."""

import os

import pytest

from .helpers import Worker, chat
from .test_llama_engine import PARIS, gguf_path


def _answer(worker: Worker, rid: str) -> str:
    worker.send({"op": "generate", "id": rid, "params": chat(PARIS, max_output_tokens=16, temperature=0)})
    return "".join(c["text"] for c in worker.collect(rid, 60))


def _pause_resume_round_trip(worker: Worker) -> None:
    worker.expect("ready", 120)
    worker.send({"op": "warmup"})
    worker.expect("warmed", 60)
    before = _answer(worker, "a")
    pid = worker.proc.pid
    worker.send({"op": "pause"})
    paused = worker.expect("paused", 30)
    worker.send({"op": "generate", "id": "early", "params": chat(PARIS, max_output_tokens=4)})
    assert worker.expect("error", 10)["code"] == "runner_paused"  # answered, never fatal
    worker.send({"op": "resume"})
    worker.expect("ready", 120)
    worker.send({"op": "warmup"})
    worker.expect("warmed", 60)
    assert worker.proc.pid == pid and worker.proc.poll() is None  # the same process, woken in place
    assert _answer(worker, "b") == before
    return paused


def test_llama_runner_frees_its_memory_when_paused_and_wakes_in_place(tmp_path):
    argv = ["--engine", "llama_cpp", "--gguf", str(gguf_path()), "--max-concurrent", "2", "--context-limit", "2048"]
    worker = Worker(argv, dict(os.environ), tmp_path / "runner.log")
    try:
        worker.expect("loading", 60)
        paused = _pause_resume_round_trip(worker)
        # the model (~100 MB mapped) and the KV cache are gone from the process
        assert paused["rss_bytes"] is not None and paused["rss_bytes"] < 150 * 2**20, paused
        worker.proc.stdin.close()
        assert worker.exit_code(10) == 0
    finally:
        worker.stop()


def test_mlx_runner_pauses_and_resumes(tmp_path, tiny_model_dir):
    pytest.importorskip("mlx.core")
    worker = Worker(["--model-dir", str(tiny_model_dir)], dict(os.environ), tmp_path / "runner.log")
    try:
        _pause_resume_round_trip(worker)
    finally:
        worker.stop()
