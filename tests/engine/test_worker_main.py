"""worker_main as a process: the stdin/stdout protocol, and exiting with its parent or stdin."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from skulk.engine.distributed import rank_env

from .helpers import ROOT, chat, start_ranks, stop_all


def test_protocol_round_trip_and_exit_on_stdin_close(tiny_model_dir, tmp_path):
    (worker,) = start_ranks(tiny_model_dir, tmp_path, "pipeline", 1)
    try:
        first = worker.expect("loading", 60)
        assert (first["layers_loaded"], first["total_layers"]) == (0, 6)
        ready = worker.expect("ready", 60)
        assert (ready["rank"], ready["world_size"]) == (0, 1)
        worker.send({"op": "generate", "id": "big", "params": chat("hi", max_output_tokens=10_000)})
        error = worker.expect("error", 10)
        assert (error["id"], error["code"]) == ("big", "context_length_exceeded")
        worker.send({"op": "generate", "id": "ok", "params": chat("hi", max_output_tokens=5, temperature=0)})
        chunks = worker.collect("ok", 30)
        assert len(chunks) == 5 and chunks[-1]["finish_reason"] == "length"
        assert chunks[-1]["usage"]["completion_tokens"] == 5 and all(len(c["token_ids"]) == 1 for c in chunks)
        worker.send({"op": "warmup"})
        assert worker.expect("warmed", 30)["tokens"] == 2
        worker.proc.stdin.close()
        assert worker.exit_code(10) == 0
    finally:
        stop_all([worker])


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # a zombie nobody reaps has still exited


def test_worker_exits_when_its_parent_dies(tiny_model_dir, tmp_path):
    stdin_r, stdin_w = os.pipe()  # we keep the write end open, so only the parent watchdog can fire
    out = tmp_path / "frames.bin"
    launcher = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'skulk.engine.worker_main', '--model-dir', {str(tiny_model_dir)!r}],"
        f" stdin={stdin_r}, stdout=open({str(out)!r}, 'wb'), stderr=subprocess.DEVNULL, cwd={str(ROOT)!r})\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, pass_fds=[stdin_r],
                              env=rank_env(None, 0, 1, threads=1))
    worker_pid = None
    try:
        worker_pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 60
        while b"ready" not in out.read_bytes():  # polled condition, not a fixed sleep
            assert time.monotonic() < deadline and not _gone(worker_pid), "worker never became ready"
            time.sleep(0.05)
        parent.kill()
        parent.wait(10)
        killed = time.monotonic()
        while not _gone(worker_pid):
            assert time.monotonic() - killed < 5, "worker outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if worker_pid and not _gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
        os.close(stdin_r)
        os.close(stdin_w)
