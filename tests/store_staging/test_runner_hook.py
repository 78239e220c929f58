"""The runner supervisor prepares (stages) its model before resolving it: a staging failure
fails the runner with that message and never starts a process; a shutdown cancels staging."""

import trio
import trio.testing

from skulk.runner import RunnerSupervisor
from skulk.store.errors import StoreUnreachable
from skulk.types.runners import RunnerFailed, RunnerShutdown
from tests.runner.harness import ring_instance


def supervisor(tmp_path, prepare, statuses):
    return RunnerSupervisor("runner-0", ring_instance(1), "node-0", models_dir=tmp_path,
                            on_status=lambda rid, s: statuses.append(s), on_output=lambda out: None,
                            prepare_model=prepare)


def test_a_staging_failure_fails_the_runner_with_its_message(tmp_path):
    statuses = []

    async def unreachable(model_id):
        raise StoreUnreachable(f"Store unreachable: cannot stage {model_id}")

    sup = supervisor(tmp_path, unreachable, statuses)
    trio.run(sup.run)
    assert sup.pid is None
    assert statuses[-1] == RunnerFailed(error_message="Store unreachable: cannot stage test/tiny-llama")


def test_a_shutdown_during_staging_cancels_it_cleanly(tmp_path):
    statuses, cancelled = [], []

    async def slow(model_id):
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(model_id)

    async def main():
        sup = supervisor(tmp_path, slow, statuses)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.run)
            await trio.testing.wait_all_tasks_blocked()
            await sup.shutdown()
        return sup

    sup = trio.run(main)
    assert cancelled == ["test/tiny-llama"] and sup.pid is None
    assert isinstance(statuses[-1], RunnerShutdown)
