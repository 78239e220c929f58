"""Start-up of a llama.cpp runner: threads, KV budget, the model, and the loading/ready frames."""

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skulk.engine.admission import max_concurrent_from_env
from skulk.engine.llama_engine import LlamaEngine
from skulk.engine.llama_model import LlamaModel
from skulk.types.devices import LLAMA_KV_CELLS

# KV cells one runner allocates (every sequence's stream together). llama.cpp clears the whole
# cache at start, so this is real memory: 32k cells of the default model are ~0.75 GB.
KV_CELLS_BUDGET_ENV = "SKULK_LLAMA_KV_CELLS"
DEFAULT_KV_CELLS = LLAMA_KV_CELLS  # the master's GPU layer arithmetic assumes the same
MOCK_DEVICE_ENV = "SKULK_MOCK_DEVICE"  # the runner was placed on a devices.mock GPU
DEFAULT_CONTEXT = 8192  # per request, when neither the instance nor the GGUF says less


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # honours --cpus pinning
    except AttributeError:  # macOS has no affinity API
        return max(1, os.cpu_count() or 1)


def kv_plan(context_limit: int | None, max_concurrent: int, budget: int) -> tuple[int, int]:
    """(sequences, cells per sequence): every slot gets the same window, within the budget."""
    want = context_limit or DEFAULT_CONTEXT
    per_seq = max(256, min(want, budget // max(1, max_concurrent)))
    return max(1, max_concurrent), per_seq


def gpu_layers(planned: int | None, env: Mapping[str, str] = os.environ) -> int | None:
    """The placement's n_gpu_layers; 0 on a mock device, whose layers the CPU runs underneath."""
    if planned is not None and env.get(MOCK_DEVICE_ENV) == "1":
        return 0
    return planned


def load_llama_engine(args: argparse.Namespace, send: Callable[[dict[str, Any]], None]) -> LlamaEngine:
    path = Path(args.gguf)
    budget = int(os.environ.get(KV_CELLS_BUDGET_ENV) or DEFAULT_KV_CELLS)
    n_seq, n_ctx_seq = kv_plan(args.context_limit, args.max_concurrent or max_concurrent_from_env(), budget)
    send({"op": "loading", "layers_loaded": 0, "total_layers": 1})
    model = LlamaModel(path, n_seq=n_seq, n_ctx_seq=n_ctx_seq, n_threads=_threads(),
                       n_batch=max(args.prefill_step, n_seq), n_gpu_layers=gpu_layers(args.n_gpu_layers))
    engine = LlamaEngine(model, max_concurrent=n_seq, context_limit=args.context_limit,
                         prefill_step=args.prefill_step)
    send({"op": "loading", "layers_loaded": 1, "total_layers": 1})
    send({"op": "ready", "rank": 0, "world_size": 1, "start_layer": 0, "end_layer": None,
          "active_memory": model.size_bytes(), "engine": "llama_cpp",
          "context_limit": engine.context_limit})
    return engine
