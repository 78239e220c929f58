#!/usr/bin/env python3
"""Engine benchmarks on this machine; prints one JSON object per line, each with a "bench" field.

    .venv/bin/python scripts/bench_engine.py                 # default model (SmolLM2-135M), minutes
    .venv/bin/python scripts/bench_engine.py --tiny --quick  # tiny random model, a smoke run

environment       the machine, MLX version and BLAS the numbers were taken with.
runner_vs_mlx_lm  one greedy request through a worker_main runner process vs mlx_lm.stream_generate
                  in this process: same fp32 weights, same prompt ids, same max tokens.
concurrency       aggregate decode tok/s of 1, 4 and 8 simultaneous requests on one runner.
parallel          decode tok/s of a 2-rank Pipeline and a 2-rank Tensor ring (processes on
                  127.0.0.1, one core each) vs 1 rank; the 1-rank run brackets the others.
Every ratio compares measurements taken in this run, alternated where they can be (the machine
is noisy); each figure is the median of --rounds. Every process started here is killed by PID.
"""

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skulk.engine.distributed import (  # noqa: E402  (no MLX import: safe before the re-exec)
    find_openblas,
    free_local_ports,
    plan_affinity,
    rank_env,
    write_hostfile,
)

REEXEC_FLAG = "SKULK_BENCH_BLAS_SET"
LOAD_TIMEOUT_S = 240.0  # model load + warmup of one runner
REQUEST_TIMEOUT_S = 300.0  # one request (or one concurrent batch) from submit to the last chunk
NOTES = ("the quick brown fox jumps over the lazy dog near the river bank while the morning fog "
         "lifts over the hills and a farmer walks his cattle to the market in the old town square").split()
TOPICS = ("a fox", "the ocean", "a mountain village", "a clockmaker", "the moon", "a lost key",
          "a river", "a red kite")
_STARTED: list["Rank"] = []  # every runner process this run started, for the final cleanup


# ----- output and statistics -----

def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def rnd(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


def med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    return rnd(a / b) if a is not None and b else None


def with_blas_preload() -> None:
    """Re-exec once under the same BLAS preload the runner processes get (rank_env), so the
    in-process baselines use the same matmul library; prefill is ~10x slower without it."""
    if os.environ.get(REEXEC_FLAG) or not find_openblas():
        return
    env = rank_env(None, 0, 1)
    env[REEXEC_FLAG] = "1"
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def environment_record() -> dict[str, Any]:
    import mlx.core as mx
    import mlx_lm

    return {"bench": "environment", "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(), "mlx": mx.__version__,
            "mlx_lm": mlx_lm.__version__, "device": str(mx.default_device()),
            "blas_preload": os.environ.get("LD_PRELOAD") or None, "load_1m": rnd(os.getloadavg()[0])}


# ----- runner processes -----

class Rank:
    """One worker_main process; its frames land in a queue stamped with their arrival time."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "skulk.engine.worker_main", *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env=env, cwd=ROOT)
        _STARTED.append(self)
        self.inbox: queue.Queue[tuple[float, dict[str, Any] | None]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        from skulk.engine.framing import read_frame

        try:
            while (msg := read_frame(self.proc.stdout)) is not None:
                self.inbox.put((time.perf_counter(), msg))
        except (OSError, ValueError):
            pass
        self.inbox.put((time.perf_counter(), None))

    def send(self, msg: dict[str, Any]) -> None:
        from skulk.engine.framing import write_frame

        write_frame(self.proc.stdin, msg)

    def next(self, deadline: float) -> tuple[float, dict[str, Any]]:
        """The next frame before the deadline (time.monotonic); fails on EOF, fatal or timeout."""
        try:
            stamp, msg = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"runner pid {self.proc.pid} went quiet; log:\n{self.log_tail()}") from None
        if msg is None or msg.get("op") in ("fatal", "error"):
            raise RuntimeError(f"runner pid {self.proc.pid} sent {msg}; log:\n{self.log_tail()}")
        return stamp, msg

    def expect(self, op: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            _, msg = self.next(deadline)
            if msg.get("op") == op:
                return msg

    def chunks(self, ids: list[str], timeout: float) -> dict[str, list[tuple[float, dict]]]:
        """(arrival, chunk) per request until each of ids has finished."""
        got: dict[str, list[tuple[float, dict]]] = {i: [] for i in ids}
        deadline = time.monotonic() + timeout
        while not all(got[i] and got[i][-1][1]["finished"] for i in ids):
            stamp, msg = self.next(deadline)
            if msg.get("op") == "chunk" and msg["id"] in got:
                got[msg["id"]].append((stamp, msg))
        return got

    def log_tail(self, n: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        """SIGKILL by PID and reap; safe to call twice."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()


def shard_json(model_dir: Path, kind: str, rank: int, world: int) -> str:
    from skulk.models import card_from_model_dir
    from skulk.types.shards import PipelineShardMetadata, TensorShardMetadata

    card = card_from_model_dir("bench/" + model_dir.name, model_dir)
    n = card.n_layers
    start, end = (round(rank * n / world), round((rank + 1) * n / world)) if kind == "pipeline" else (0, n)
    cls = PipelineShardMetadata if kind == "pipeline" else TensorShardMetadata
    shard = cls(model_card=card, device_rank=rank, world_size=world, start_layer=start, end_layer=end, n_layers=n)
    return shard.model_dump_json(by_alias=True)


def start_ranks(model_dir: Path, kind: str, world: int, logs: Path) -> list[Rank]:
    """world runner processes; a ring on 127.0.0.1 with each rank pinned to its own cores."""
    if world == 1:
        argv = ["--model-dir", str(model_dir), "--max-concurrent", "8"]
        return [Rank(argv, rank_env(None, 0, 1), logs / "single-rank0.log")]
    hostfile = write_hostfile(logs / f"{kind}-hosts.json", [f"127.0.0.1:{p}" for p in free_local_ports(world)])
    cpus = plan_affinity(world)
    ranks: list[Rank] = []
    try:
        for r in range(world):
            argv = ["--model-dir", str(model_dir), "--connect-deadline", "60", "--cpus",
                    ",".join(map(str, sorted(cpus[r]))), "--shard-json", shard_json(model_dir, kind, r, world)]
            env = rank_env(hostfile, r, world, threads=len(cpus[r]))
            ranks.append(Rank(argv, env, logs / f"{kind}-rank{r}.log"))
    except BaseException:
        stop_ranks(ranks)
        raise
    return ranks


def stop_ranks(ranks: list[Rank]) -> None:
    for r in ranks:
        r.stop()


@contextmanager
def running(model_dir: Path, kind: str, world: int, logs: Path) -> Iterator[list[Rank]]:
    """Ranks loaded and warmed up; killed on the way out whatever happens."""
    ranks = start_ranks(model_dir, kind, world, logs)
    try:
        for r in ranks:
            r.expect("ready", LOAD_TIMEOUT_S)
        for r in ranks:
            r.send({"op": "warmup"})
        for r in ranks:
            r.expect("warmed", LOAD_TIMEOUT_S)
        yield ranks
    finally:
        stop_ranks(ranks)


# ----- one request, measured -----

def chat_params(text: str, max_tokens: int) -> dict[str, Any]:
    return {"model": "bench", "input": [{"role": "user", "content": text}],
            "max_output_tokens": max_tokens, "temperature": 0.0}


def long_prompt(words: int) -> str:
    body = " ".join(NOTES[i % len(NOTES)] for i in range(words))
    return f"Summarize these notes in one paragraph.\n{body}"


def story_prompt(i: int) -> str:
    return f"Write a long story about {TOPICS[i % len(TOPICS)]}."


def timing(t0: float, first: float, end: float, n_prompt: int, n_out: int) -> dict[str, Any]:
    """ttft covers the prompt pass and the first token; decode covers the tokens after it."""
    ttft = first - t0
    decode = (n_out - 1) / (end - first) if n_out > 1 and end > first else None
    return {"ttft_s": ttft, "prompt_tps": n_prompt / ttft if ttft > 0 else None, "decode_tps": decode,
            "prompt_tokens": n_prompt, "completion_tokens": n_out}


def runner_once(ranks: list[Rank], rid: str, params: dict[str, Any]) -> dict[str, Any]:
    """One request sent to every rank (the protocol asks that); timed on rank 0's chunk stream."""
    t0 = time.perf_counter()
    for r in ranks:
        r.send({"op": "generate", "id": rid, "params": params})
    chunks = ranks[0].chunks([rid], REQUEST_TIMEOUT_S)[rid]
    for follower in ranks[1:]:
        follower.chunks([rid], REQUEST_TIMEOUT_S)  # followers send their final chunk only
    usage = chunks[-1][1]["usage"]
    out = timing(t0, chunks[0][0], chunks[-1][0], usage["prompt_tokens"], usage["completion_tokens"])
    out["token_ids"] = [t for _, c in chunks for t in c["token_ids"]]
    return out


def mlx_lm_once(loaded: Any, ids: list[int], max_tokens: int) -> dict[str, Any]:
    """mlx_lm's own generation loop (greedy by default) on the prompt ids the engine built."""
    from mlx_lm.generate import stream_generate

    t0 = time.perf_counter()
    first, tokens = None, []
    for resp in stream_generate(loaded.model, loaded.tokenizer, ids, max_tokens=max_tokens):
        first = first or time.perf_counter()
        tokens.append(int(resp.token))
    out = timing(t0, first, time.perf_counter(), len(ids), len(tokens))
    out["token_ids"] = tokens
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("ttft_s", "prompt_tps", "decode_tps")
    return {k: rnd(med([r[k] for r in runs])) for k in keys}


def guarded(name: str, fn: Any, *args: Any) -> bool:
    """Run one bench and print its record; a failure becomes an "error" record, not an abort."""
    try:
        record = fn(*args)
        record["load_1m"] = rnd(os.getloadavg()[0])  # other work on the machine skews absolute numbers
        emit(record)
        return True
    except Exception as exc:  # reported in the output; the other benches still run
        emit({"bench": name, "error": f"{type(exc).__name__}: {exc}"[:3000]})
        return False


def rounds_left(i: int, deadline: float) -> bool:
    """Round 0 always runs; later rounds only while the time budget lasts."""
    return i == 0 or time.monotonic() < deadline


def alternate(sides: dict[str, Any], rounds: int, deadline: float) -> dict[str, list[dict[str, Any]]]:
    """Run each side (a callable taking the round number) once untimed, then `rounds` times,
    rotating which side goes first so drift on this noisy machine hits every side alike."""
    for side in sides.values():
        side(-1)  # first passes allocate buffers and open connections
    names = list(sides)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in names}
    for i in range(rounds):
        if not rounds_left(i, deadline):
            break
        for k in names[i % len(names):] + names[:i % len(names)]:
            runs[k].append(sides[k](i))
    return runs


# ----- runner_vs_mlx_lm -----

def runner_and_mlx_lm_runs(ranks: list[Rank], model_dir: Path, params: dict[str, Any],
                           args: argparse.Namespace, deadline: float) -> dict[str, list[dict[str, Any]]]:
    from skulk.engine.loading import load_shard
    from skulk.engine.prompt import prompt_tokens
    from skulk.types.tasks import TextGenerationTaskParams

    loaded = load_shard(model_dir)  # the runner's own loader: fp32 on CPU, dequantized
    ids = prompt_tokens(loaded.tokenizer, TextGenerationTaskParams.model_validate(params))
    sides = {"runner": lambda i: runner_once(ranks, f"a{i}", params),
             "mlx_lm": lambda i: mlx_lm_once(loaded, ids, args.max_tokens)}
    return alternate(sides, args.rounds, deadline)


def bench_runner_vs_mlx_lm(ranks: list[Rank], model_dir: Path, label: str, args: argparse.Namespace,
                           deadline: float) -> dict[str, Any]:
    import mlx.core as mx

    params = chat_params(long_prompt(args.prompt_words), args.max_tokens)
    runs = runner_and_mlx_lm_runs(ranks, model_dir, params, args, deadline)
    mx.clear_cache()  # the in-process copy is gone; give its buffers back before the next bench
    r, b = summarize(runs["runner"]), summarize(runs["mlx_lm"])
    return {"bench": "runner_vs_mlx_lm", "model": label, "prompt_tokens": runs["mlx_lm"][0]["prompt_tokens"],
            "max_tokens": args.max_tokens, "rounds": len(runs["runner"]), "runner": r, "mlx_lm": b,
            "ratio_prompt_tps": ratio(r["prompt_tps"], b["prompt_tps"]),
            "ratio_decode_tps": ratio(r["decode_tps"], b["decode_tps"]),
            "same_tokens": runs["runner"][0]["token_ids"] == runs["mlx_lm"][0]["token_ids"]}


# ----- concurrency -----

def concurrent_once(rank: Rank, n: int, max_tokens: int, tag: str) -> dict[str, Any]:
    """n requests in one write, so rank 0 admits them in the same step; the decode window runs
    from the moment every request has its first token to the last one finishing."""
    from skulk.runner.frames import encode_frame

    ids = [f"{tag}-{i}" for i in range(n)]
    frames = b"".join(encode_frame({"op": "generate", "id": rid, "params": chat_params(story_prompt(i), max_tokens)})
                      for i, rid in enumerate(ids))
    t0 = time.perf_counter()
    rank.proc.stdin.write(frames)
    rank.proc.stdin.flush()
    got = rank.chunks(ids, REQUEST_TIMEOUT_S)
    firsts = [cs[0][0] for cs in got.values()]
    all_started, end = max(firsts), max(cs[-1][0] for cs in got.values())
    decoded = sum(len(c["token_ids"]) for cs in got.values() for t, c in cs if t > all_started)
    total = sum(cs[-1][1]["usage"]["completion_tokens"] for cs in got.values())
    per_request = [timing(t0, cs[0][0], cs[-1][0], 0, cs[-1][1]["usage"]["completion_tokens"])["decode_tps"]
                   for cs in got.values()]
    return {"aggregate_decode_tps": decoded / (end - all_started) if end > all_started else None,
            "per_request_decode_tps": med(per_request), "end_to_end_tps": total / (end - t0),
            "all_first_tokens_s": all_started - t0, "first_token_spread_s": all_started - min(firsts)}


def bench_concurrency(rank: Rank, label: str, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    levels = [int(x) for x in args.levels.split(",")]
    concurrent_once(rank, max(levels), args.max_tokens, "c-warm")  # batch buffers of the largest size
    runs: dict[int, list[dict]] = {n: [] for n in levels}
    for i in range(args.rounds):
        if not rounds_left(i, deadline):
            break
        for n in levels if i % 2 == 0 else levels[::-1]:
            runs[n].append(concurrent_once(rank, n, args.max_tokens, f"c{i}-{n}"))
    keys = ("aggregate_decode_tps", "per_request_decode_tps", "end_to_end_tps", "all_first_tokens_s",
            "first_token_spread_s")
    table = {str(n): {k: rnd(med([r[k] for r in rs])) for k in keys} for n, rs in runs.items()}
    base = table[str(levels[0])]["aggregate_decode_tps"]
    return {"bench": "concurrency", "model": label, "max_tokens": args.max_tokens,
            "rounds": len(runs[levels[0]]), "levels": table,
            **{f"ratio_{n}_vs_{levels[0]}": ratio(table[str(n)]["aggregate_decode_tps"], base) for n in levels[1:]}}


# ----- parallel -----

def tensor_split_problem(model_dir: Path, world: int) -> str | None:
    """Why a Tensor split of this model across world ranks is impossible, or None."""
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    bad = [f"{k}={cfg[k]}" for k in ("num_attention_heads", "num_key_value_heads") if cfg.get(k) and cfg[k] % world]
    return f"heads not divisible: {', '.join(bad)} across {world} ranks" if bad else None


def measure_decode(model_dir: Path, kind: str, world: int, logs: Path, args: argparse.Namespace,
                   deadline: float) -> dict[str, Any]:
    """Start the ranks, time --rounds greedy requests, stop them (rings busy-poll: one at a time)."""
    logs.mkdir(parents=True, exist_ok=True)
    params = chat_params(story_prompt(0), args.max_tokens)
    with running(model_dir, kind, world, logs) as ranks:
        runner_once(ranks, "warm", params)
        runs = [runner_once(ranks, f"p{i}", params) for i in range(args.rounds) if rounds_left(i, deadline)]
    cpus = len(plan_affinity(world)[0]) if world > 1 else os.cpu_count()
    return {**summarize(runs), "rounds": len(runs), "cpus_per_rank": cpus, "token_ids": runs[0]["token_ids"]}


def bench_parallel(model_dir: Path, label: str, args: argparse.Namespace, deadline: float,
                   logs: Path) -> dict[str, Any]:
    def measure(kind: str, world: int, tag: str) -> dict[str, Any]:
        try:
            return measure_decode(model_dir, kind, world, logs / tag, args, deadline)
        except Exception as exc:  # one configuration failing still leaves the others' numbers
            return {"error": f"{type(exc).__name__}: {exc}"[:3000]}

    problem = tensor_split_problem(model_dir, 2)
    before = measure("pipeline", 1, "single-before")
    pipe = measure("pipeline", 2, "pipeline2")
    tensor = {"skipped": problem} if problem else measure("tensor", 2, "tensor2")
    after = measure("pipeline", 1, "single-after")
    single_tps = med([before.get("decode_tps"), after.get("decode_tps")])
    reference = before.get("token_ids") or after.get("token_ids")
    for rec in (pipe, tensor):
        if "token_ids" in rec:
            rec["same_tokens_as_single"] = rec.pop("token_ids") == reference
    single = {"decode_tps": rnd(single_tps), "decode_tps_before": before.get("decode_tps"),
              "decode_tps_after": after.get("decode_tps"), "ttft_s": before.get("ttft_s"),
              "cpus_per_rank": before.get("cpus_per_rank"),
              "errors": [r["error"] for r in (before, after) if "error" in r]}
    return {"bench": "parallel", "model": label, "max_tokens": args.max_tokens, "single": single,
            "pipeline_2": pipe, "tensor_2": tensor, "ratio_pipeline_2": ratio(pipe.get("decode_tps"), single_tps),
            "ratio_tensor_2": ratio(tensor.get("decode_tps"), single_tps)}


# ----- models -----

def even_head_dim(q_dim: int, kv_dim: int, start: int) -> int | None:
    """The largest even head size <= start that cuts both projections into an even head count."""
    for d in range(start - start % 2, 7, -2):
        if q_dim % d == 0 and kv_dim % d == 0 and (q_dim // d) % 2 == 0 and (kv_dim // d) % 2 == 0:
            return d
    return None


def build_tensor_twin(src: Path, dst: Path) -> Path | None:
    """Random weights in src's architecture with its attention re-cut into heads that split in two
    (SmolLM2: 9x64 query / 3x64 KV heads -> 12x48 / 4x48: same matrices, same FLOPs). None if no cut."""
    import importlib

    import mlx.core as mx
    from mlx.utils import tree_flatten

    cfg = json.loads((src / "config.json").read_text())
    for key in ("quantization", "quantization_config"):
        cfg.pop(key, None)
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    hd = cfg.get("head_dim") or cfg["hidden_size"] // heads
    d = even_head_dim(heads * hd, kv * hd, hd)
    if d is None:
        return None
    cfg.update(num_attention_heads=heads * hd // d, num_key_value_heads=kv * hd // d, head_dim=d)
    arch = importlib.import_module(f"mlx_lm.models.{cfg['model_type']}")
    mx.random.seed(0)
    model = arch.Model(arch.ModelArgs.from_dict(cfg))
    dst.mkdir(parents=True)
    for f in src.iterdir():  # tokenizer and generation config
        if f.is_file() and f.suffix != ".safetensors" and f.name != "config.json":
            shutil.copy(f, dst / f.name)
    weights = {k: v.astype(mx.bfloat16) for k, v in tree_flatten(model.parameters())}
    mx.save_safetensors(str(dst / "model.safetensors"), weights)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def prepare_model(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    if args.tiny:
        from tests.engine.helpers import build_tiny_model

        return build_tiny_model(tmp / "tiny-llama", context=4096), "tiny-random-llama (6 layers, 64 wide)"
    from skulk.models import DEFAULT_MODEL_ID, ensure_model_dir

    if args.model_dir:
        return Path(args.model_dir), Path(args.model_dir).name
    return ensure_model_dir(DEFAULT_MODEL_ID, tmp / "models", offline=True), DEFAULT_MODEL_ID


# ----- main -----

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="a tiny random model instead of the default model")
    p.add_argument("--quick", action="store_true", help="1 round, few tokens: a smoke run")
    p.add_argument("--model-dir", help="an mlx-lm model directory (default: convert SmolLM2-135M)")
    p.add_argument("--rounds", type=int, help="timed rounds per measurement (default 3, quick 1)")
    p.add_argument("--max-tokens", type=int, help="tokens per request (default 32, quick 8)")
    p.add_argument("--prompt-words", type=int, help="words in the prefill prompt (default 200, quick 40)")
    p.add_argument("--levels", default="1,4,8", help="concurrency levels, comma-separated")
    p.add_argument("--only", default="runner,concurrency,parallel", help="benches to run, comma-separated")
    p.add_argument("--budget-s", type=float, default=1800.0, help="after this, remaining rounds are skipped")
    args = p.parse_args(argv)
    for name, full, quick in (("rounds", 3, 1), ("max_tokens", 32, 8), ("prompt_words", 200, 40)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def bench_single_runner(model_dir: Path, label: str, args: argparse.Namespace, deadline: float,
                        logs: Path, only: set[str]) -> bool:
    """runner_vs_mlx_lm and concurrency share one warmed 1-rank runner."""
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with running(model_dir, "pipeline", 1, logs) as ranks:
            ok = "runner" not in only or guarded(
                "runner_vs_mlx_lm", bench_runner_vs_mlx_lm, ranks, model_dir, label, args, deadline)
            return ("concurrency" not in only or guarded(
                "concurrency", bench_concurrency, ranks[0], label, args, deadline)) and ok
    except Exception as exc:  # the runner never came up: neither bench has numbers
        emit({"bench": "single_runner", "error": f"{type(exc).__name__}: {exc}"[:3000]})
        return False


def run_all(args: argparse.Namespace, tmp: Path, deadline: float) -> bool:
    model_dir, label = prepare_model(args, tmp)
    only = set(args.only.split(","))
    ok = True
    if only & {"runner", "concurrency"}:
        ok = bench_single_runner(model_dir, label, args, deadline, tmp / "single", only)
    if "parallel" not in only:
        return ok
    ok = guarded("parallel", bench_parallel, model_dir, label, args, deadline, tmp / "main") and ok
    if tensor_split_problem(model_dir, 2):  # also measure Tensor on a same-shape model that splits
        twin = build_tensor_twin(model_dir, tmp / "tensor-twin")
        if twin is not None:
            heads = json.loads((twin / "config.json").read_text())["num_attention_heads"]
            twin_label = f"random-weight {label} re-cut to {heads} heads"
            ok = guarded("parallel", bench_parallel, twin, twin_label, args, deadline, tmp / "twin") and ok
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with_blas_preload()
    deadline = time.monotonic() + args.budget_s
    emit(environment_record())
    with tempfile.TemporaryDirectory(prefix="skulk-bench-engine-") as tmp:
        try:
            ok = run_all(args, Path(tmp), deadline)
        finally:
            stop_ranks(_STARTED)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
