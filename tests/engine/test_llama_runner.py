"""worker_main --engine llama_cpp as a process: the same frames as the MLX runner, on the real GGUF."""

from .helpers import Worker, chat
from .test_llama_engine import PARIS, gguf_path


def start(tmp_path, *extra: str, gguf=None, env=None) -> Worker:
    import os

    argv = ["--engine", "llama_cpp", "--gguf", str(gguf or gguf_path()), "--max-concurrent", "4", *extra]
    return Worker(argv, {**os.environ, **(env or {})}, tmp_path / "llama-runner.log")


def test_protocol_round_trip_cancel_and_exit_on_stdin_close(tmp_path):
    worker = start(tmp_path, "--context-limit", "512", "--cpus", "0")
    try:
        assert worker.expect("loading", 60)["layers_loaded"] == 0
        ready = worker.expect("ready", 60)
        assert (ready["rank"], ready["world_size"], ready["engine"]) == (0, 1, "llama_cpp")
        assert ready["context_limit"] == 512 and ready["active_memory"] > 50_000_000
        worker.send({"op": "warmup"})
        assert worker.expect("warmed", 30)["tokens"] == 2
        worker.send({"op": "generate", "id": "big", "params": chat("hi", max_output_tokens=10_000)})
        error = worker.expect("error", 10)
        assert (error["id"], error["code"]) == ("big", "context_length_exceeded")
        worker.send({"op": "generate", "id": "p", "params": chat(PARIS, max_output_tokens=24, temperature=0)})
        chunks = worker.collect("p", 60)
        assert "Paris" in "".join(c["text"] for c in chunks) and chunks[-1]["finish_reason"] == "stop"
        assert chunks[-1]["usage"]["completion_tokens"] == len(chunks)
        worker.send({"op": "generate", "id": "long", "params": chat("Tell me a story.", max_output_tokens=400)})
        worker.expect("chunk", 30)
        worker.send({"op": "cancel", "id": "long"})
        assert worker.collect("long", 30)[-1]["finish_reason"] == "cancelled"
        worker.send({"op": "embed", "id": "e", "params": {"model": "m", "input": ["x"]}})
        assert worker.expect("error", 10)["code"] == "not_an_embedding_model"
        worker.send({"op": "generate", "id": "again", "params": chat(PARIS, max_output_tokens=24, temperature=0)})
        assert "".join(c["text"] for c in worker.collect("again", 60)) == "".join(c["text"] for c in chunks)
        worker.proc.stdin.close()
        assert worker.exit_code(10) == 0
    finally:
        worker.stop()


def test_a_corrupt_gguf_is_a_fatal_frame_naming_the_file(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 128)
    worker = start(tmp_path, gguf=bad)
    try:
        fatal = worker.expect("fatal", 60)
        assert str(bad) in fatal["message"] and fatal["code"] == "GgufLoadError"
        assert worker.exit_code(10) == 2
    finally:
        worker.stop()
