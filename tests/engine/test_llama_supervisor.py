"""RunnerSupervisor driving a LlamaRpc instance: the statuses, deadlines and failures of the MLX
runner, with llama.cpp underneath. Every test checks that no runner process outlives it."""

import os

import pytest
import trio

from skulk.runner import RunnerSupervisor
from skulk.types.ids import Memory, model_dir_name
from skulk.types.instances import LLAMA_CPP_BACKEND, LlamaRpcInstance, ShardAssignments
from skulk.types.models import ModelCard
from skulk.types.runners import RunnerFailed, RunnerLoaded, RunnerReady, RunnerShutdown
from skulk.types.shards import PipelineShardMetadata
from tests.runner.harness import Recorder, greedy, kill_leftovers

from .test_llama_engine import GGUF, PARIS


def llama_instance(model_id: str, gguf_file: str, package: str | None) -> LlamaRpcInstance:
    card = ModelCard(model_id=model_id, n_layers=30, hidden_size=576, supports_tensor=False,
                     tasks=["TextGeneration"], storage_size=Memory(in_bytes=100_000_000),
                     gguf_file=gguf_file, source_package=package, engines=["llama_cpp"])
    shard = PipelineShardMetadata(model_card=card, device_rank=0, world_size=1, start_layer=0, end_layer=30,
                                  n_layers=30, resolved_backend=LLAMA_CPP_BACKEND)
    return LlamaRpcInstance(instance_id="inst-llama", driver_node="node-0", context_token_limit=1024,
                            shard_assignments=ShardAssignments(model_id=model_id, runner_to_shard={"runner-0": shard},
                                                               node_to_runner={"node-0": "runner-0"}))


def run(instance: LlamaRpcInstance, models_dir, body) -> tuple[RunnerSupervisor, Recorder]:
    rec, pids = Recorder(), []
    sup = RunnerSupervisor("runner-0", instance, "node-0", models_dir=models_dir, offline=True,
                           on_status=rec.on_status, on_output=rec.on_output,
                           env={**os.environ, "SKULK_MAX_CONCURRENT_REQUESTS": "2"})

    async def scenario():
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                await nursery.start(sup.run)
                pids.append(sup.pid)
                await body(sup, rec)

    try:
        trio.run(scenario)
    finally:
        assert not kill_leftovers(pids), "runner processes left behind"
    return sup, rec


def test_default_model_gguf_serves_through_the_supervisor(tmp_path):
    async def body(sup, rec):
        await rec.wait_status(sup, RunnerLoaded, 60)
        await sup.warmup()
        await rec.wait_status(sup, RunnerReady, 30)
        await sup.submit("t", greedy(PARIS, max_tokens=24))
        await rec.wait_for(lambda: rec.finished("t"), 60)
        await rec.wait_status(sup, RunnerReady, 5)  # the slot is back
        await sup.shutdown()

    sup, rec = run(llama_instance("HuggingFaceTB/SmolLM2-135M-Instruct", GGUF[1], GGUF[0]), tmp_path, body)
    assert "Paris" in "".join(o.text for o in rec.outputs("t") if o.text)
    assert rec.status_names()[:2] == ["RunnerIdle", "RunnerLoading"] and isinstance(sup.status, RunnerShutdown)


@pytest.mark.parametrize("layout", ["missing", "corrupt"])
def test_missing_or_corrupt_gguf_fails_the_runner_naming_the_file(tmp_path, layout):
    model_id = "acme/broken-gguf"
    if layout == "corrupt":
        folder = tmp_path / model_dir_name(model_id)
        folder.mkdir()
        (folder / "model.Q4_0.gguf").write_bytes(b"GGUF" + b"\x00" * 100)

    async def body(sup, rec):
        await rec.wait_for(lambda: isinstance(sup.status, RunnerFailed), 60)

    sup, rec = run(llama_instance(model_id, "model.Q4_0.gguf", None), tmp_path, body)
    message = sup.status.error_message
    assert "model.Q4_0.gguf" in message
    if layout == "missing":
        assert sup.pid is None and "is not on this node" in message  # nothing was started
    else:
        assert str(tmp_path / model_dir_name(model_id) / "model.Q4_0.gguf") in message
