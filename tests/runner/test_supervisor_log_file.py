"""A real runner process's stderr lands in its log file, under a header naming the runner."""

import os

import trio

from skulk.runner import RunnerSupervisor, cpus_for_rank
from skulk.runner.runner_log import RunnerLogConfig
from skulk.types.runners import RunnerFailed

from .harness import Recorder, alive, kill_leftovers, ring_instance


def test_a_failing_runner_leaves_its_stderr_in_its_log_file(models_dir, tmp_path):
    rec, pids = Recorder(), []
    logs = tmp_path / "logs" / "runners"
    inst = ring_instance(2)  # rank 1 never starts, so rank 0 gives up connecting and says why on stderr

    async def scenario():
        sup = RunnerSupervisor(
            "runner-0", inst, "node-0", models_dir=models_dir, offline=True, on_status=rec.on_status,
            on_output=rec.on_output, env={**os.environ, "SKULK_GROUP_CONNECT_DEADLINE_SECONDS": "1"},
            cpus=cpus_for_rank(0, 2), runner_log=RunnerLogConfig(logs))
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(sup.run)
                pids.append(sup.pid)
                await rec.wait_status(sup, RunnerFailed, 30)
        return sup

    try:
        sup = trio.run(scenario)
    finally:
        assert not kill_leftovers(pids)
    assert sup.log_file.path == logs / "runner-0.log" and not alive(pids[0])
    lines = sup.log_file.path.read_text().splitlines()
    assert lines[0].endswith(f"==== runner=runner-0 instance={inst.instance_id} "
                             f"model={inst.shard_assignments.model_id} rank=0/2 pid={pids[0]}")
    assert any("skulk worker: fatal" in line for line in lines[1:])
