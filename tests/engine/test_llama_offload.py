"""The layer split a placement promises loads on this machine's llama.cpp build: on a CPU-only
build (and on a mock device) n_gpu_layers > 0 runs on the CPU and answers the same."""

from skulk.engine.llama_engine import LlamaEngine
from skulk.engine.llama_load import gpu_layers
from skulk.engine.llama_model import LlamaModel
from skulk.runner.launch import MOCK_DEVICE_ENV

from .test_llama_engine import PARIS, ask, gguf_path, run_all


def _answer(n_gpu_layers):
    model = LlamaModel(gguf_path(), n_seq=1, n_ctx_seq=512, n_threads=1, n_gpu_layers=n_gpu_layers)
    try:
        (text, _), = run_all(LlamaEngine(model, max_concurrent=1), {"a": ask(PARIS)}).values()
        return text
    finally:
        model.close()


def test_partial_and_full_offload_load_and_answer_like_cpu_only():
    cpu = _answer(0)
    assert "Paris" in cpu
    assert _answer(18) == cpu and _answer(-1) == cpu
    assert gpu_layers(18, {MOCK_DEVICE_ENV: "1"}) == 0  # a mock device never asks the build for a GPU
