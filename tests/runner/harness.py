"""Helpers for supervisor tests: instances on 127.0.0.1, a recorder of statuses/outputs with
condition waits, and a check that no runner process outlives its test."""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import trio

from skulk.engine.distributed import free_local_ports
from skulk.runner import RunnerOutput, RunnerSupervisor, cpus_for_rank
from skulk.runner.outputs import RunnerTraces
from skulk.types.ids import Memory
from skulk.types.instances import Host, MlxRingInstance, ShardAssignments
from skulk.types.models import ModelCard
from skulk.types.runners import RunnerStatus
from skulk.types.shards import PipelineShardMetadata
from skulk.types.tasks import ChatMessage, TextGenerationTaskParams

MODEL_ID = "test/tiny-llama"
N_LAYERS = 6


def ring_instance(world: int, model_id: str = MODEL_ID) -> MlxRingInstance:
    """A Pipeline instance whose ranks all live on this machine (node-0, node-1, ...)."""
    card = ModelCard(model_id=model_id, n_layers=N_LAYERS, hidden_size=64, supports_tensor=True,
                     tasks=["TextGeneration"], storage_size=Memory(in_bytes=1), num_key_value_heads=2,
                     num_attention_heads=4)
    ports = free_local_ports(world)
    bounds = [round(i * N_LAYERS / world) for i in range(world + 1)]
    shards, runners, hosts = {}, {}, {}
    for rank in range(world):
        node, runner = f"node-{rank}", f"runner-{rank}"
        shards[runner] = PipelineShardMetadata(model_card=card, device_rank=rank, world_size=world,
                                               start_layer=bounds[rank], end_layer=bounds[rank + 1],
                                               n_layers=N_LAYERS)
        runners[node] = runner
        hosts[node] = [Host(ip="0.0.0.0" if r == rank else "127.0.0.1", port=p) for r, p in enumerate(ports)]
    return MlxRingInstance(
        instance_id=f"inst-{world}", hosts_by_node=hosts, ephemeral_port=ports[0],
        shard_assignments=ShardAssignments(model_id=model_id, runner_to_shard=shards, node_to_runner=runners))


def greedy(text: str, max_tokens: int = 12) -> TextGenerationTaskParams:
    return TextGenerationTaskParams(model=MODEL_ID, input=[ChatMessage(role="user", content=text)],
                                    max_output_tokens=max_tokens, temperature=0.0)


class Recorder:
    """Everything one supervisor reported, in order, and a way to wait for a condition on it."""

    def __init__(self) -> None:
        self.log: list[RunnerStatus | RunnerOutput] = []
        self._changed: trio.Event | None = None

    def on_status(self, runner_id: str, status: RunnerStatus) -> None:
        self._add(status)

    def on_output(self, output: RunnerOutput) -> None:
        self._add(output)

    def on_traces(self, runner_id: str, traces: RunnerTraces) -> None:
        self._add(traces)

    def traces(self, task_id: str) -> RunnerTraces | None:
        return next((i for i in self.log if isinstance(i, RunnerTraces) and i.task_id == task_id), None)

    def _add(self, item: RunnerStatus | RunnerOutput | RunnerTraces) -> None:
        self.log.append(item)
        if self._changed is not None:
            self._changed.set()

    @property
    def statuses(self) -> list[RunnerStatus]:
        return [i for i in self.log if not isinstance(i, (RunnerOutput, RunnerTraces))]

    def outputs(self, task_id: str | None = None) -> list[RunnerOutput]:
        return [i for i in self.log if isinstance(i, RunnerOutput) and task_id in (None, i.task_id)]

    def status_names(self) -> list[str]:
        """Status class names with consecutive repeats (Loading k/n) collapsed."""
        names: list[str] = []
        for s in self.statuses:
            name = type(s).__name__
            if not names or names[-1] != name:
                names.append(name)
        return names

    def finished(self, task_id: str) -> RunnerOutput | None:
        return next((o for o in self.outputs(task_id) if o.finished), None)

    async def wait_for(self, predicate: Callable[[], object], timeout: float) -> None:
        """Return once predicate() holds, re-checking after every report; TooSlowError at the deadline."""
        with trio.fail_after(timeout):
            while not predicate():
                self._changed = trio.Event()
                await self._changed.wait()

    async def wait_status(self, sup: RunnerSupervisor, cls: type, timeout: float) -> None:
        try:
            await self.wait_for(lambda: isinstance(sup.status, cls), timeout)
        except trio.TooSlowError:
            raise AssertionError(f"{sup.runner_id}: no {cls.__name__} within {timeout}s; "
                                 f"statuses {self.status_names()}, now {sup.status}") from None


def supervisor(instance: MlxRingInstance, rank: int, models_dir: Path, rec: Recorder,
               **env_overrides: str) -> RunnerSupervisor:
    world = len(instance.shard_assignments.runner_to_shard)
    return RunnerSupervisor(
        f"runner-{rank}", instance, f"node-{rank}", models_dir=models_dir, offline=True,
        on_status=rec.on_status, on_output=rec.on_output, on_traces=rec.on_traces, env={**os.environ, **env_overrides},
        cpus=cpus_for_rank(rank, world))


def alive(pid: int | None) -> bool:
    """True while pid names a process that has not exited (a zombie has exited)."""
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_leftovers(pids: list[int | None]) -> list[int]:
    """SIGKILL (after SIGCONT, for stopped ones) whatever is still running; returns those pids."""
    left = [p for p in pids if alive(p)]
    for pid in left:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    return left
