"""RunnerSupervisor paths that start no process: early shutdown, requests to a runner that is
not ready, and instances it cannot run."""

import pytest
import trio

from skulk.errors import SkulkError
from skulk.runner import RunnerSupervisor
from skulk.types.runners import RunnerIdle, RunnerShutdown

from .harness import Recorder, greedy, ring_instance, supervisor


def test_shutdown_before_run_means_run_starts_nothing(tmp_path):
    rec = Recorder()
    sup = supervisor(ring_instance(1), 0, tmp_path, rec)

    async def main():
        await sup.shutdown()
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
        await sup.shutdown()

    trio.run(main)
    assert sup.pid is None and isinstance(sup.status, RunnerShutdown)
    assert rec.status_names() == ["RunnerShutdown"]


def test_requests_to_a_runner_that_is_not_ready_end_at_once(tmp_path):
    rec = Recorder()
    sup = supervisor(ring_instance(1), 0, tmp_path, rec)

    async def main():
        await sup.submit("t", greedy("hi"))
        await sup.cancel("t")  # unknown by now: ignored
        await sup.warmup()  # not loaded yet: remembered for when it is, nothing sent now

    trio.run(main)
    (out,) = rec.outputs("t")
    assert out.finished and out.error_code == "runner_unavailable" and "RunnerIdle" in out.error_message
    assert isinstance(sup.status, RunnerIdle) and not sup.active_tasks
    assert rec.status_names() == []  # run() was never called: not even RunnerIdle was reported


def test_a_runner_not_in_the_instance_is_refused_at_construction(tmp_path):
    inst = ring_instance(2)
    kw = dict(models_dir=tmp_path, on_status=lambda *_: None, on_output=lambda _: None)
    with pytest.raises(SkulkError, match="no shard"):
        RunnerSupervisor("runner-9", inst, "node-0", **kw)
    RunnerSupervisor("runner-0", inst, "node-elsewhere", **kw)  # ring hosts: checked by run(), see faults
    sup = RunnerSupervisor("runner-1", inst, "node-1", **kw, env={"SKULK_MODEL_LOAD_TIMEOUT": "7"})
    assert (sup.rank, sup.world_size, sup.deadlines.load_s) == (1, 2, 7.0)
