"""A failing planner step or supervisor call fails that runner (RunnerFailed with the reason, in
state) and the worker goes on; a start that keeps failing is retried with a backoff, never hot."""

import trio
import trio.testing

from skulk.errors import SkulkError
from skulk.faults import FAULTS
from skulk.types.events import RunnerStatusUpdated, TaskFailed
from skulk.types.ids import SessionId
from skulk.types.instances import MlxRingInstance
from skulk.types.runners import RunnerFailed, RunnerReady
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.worker.service import WorkerService
from tests.factories import ring_instance


class FakeRouter:
    def __init__(self, state: State):
        self.state = state
        self.session = SessionId(master_node_id="n0", election_clock=1)
        self.changed = trio.Event()
        self.sent = []

    def send_event(self, event):
        self.sent.append(event)

    def failures(self, rid):
        return [e.runner_status.error_message for e in self.sent
                if isinstance(e, RunnerStatusUpdated) and e.runner_id == rid
                and isinstance(e.runner_status, RunnerFailed)]


def state_with(*instances, runners=None, tasks=None):
    return State(instances={i.instance_id: i for i in instances}, runners=runners or {}, tasks=tasks or {},
                 last_event_applied_idx=0)


def run_worker(worker, scenario):
    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            await scenario(nursery)
            nursery.cancel_scope.cancel()
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_supervisor_that_cannot_be_built_fails_its_runner_and_is_retried_with_backoff():
    bad, good = ring_instance("bad", ["n1", "n2"]), ring_instance("good", ["n1"])
    router = FakeRouter(state_with(bad))
    calls = []

    def make_supervisor(rid, instance, **_):
        calls.append((trio.current_time(), rid))
        if instance.instance_id == "bad":
            raise SkulkError("instance bad: node n1 has none ring hosts, expected 2", code="runner_bad_hosts")
        return FakeSupervisor(rid, instance, **_)

    worker = WorkerService("n1", router, make_supervisor, send_output=lambda *_: None, plan_interval=0.5)
    before = FAULTS.counts["worker.spawn_failed"]

    async def scenario(nursery):
        await trio.sleep(3.0)  # six planner ticks
        assert [rid for _, rid in calls] == ["bad-r0"]  # not retried in a hot loop
        assert router.failures("bad-r0") == ["runner bad-r0 could not start: instance bad: node n1 has none "
                                             "ring hosts, expected 2"]
        await trio.sleep(30.0)
        times = [t for t, _ in calls]
        assert len(times) == 3 and 4.5 <= times[1] - times[0] <= 6.0 and times[2] - times[1] >= 9.5
        router.state = state_with(bad, good)  # the worker still serves other instances
        await trio.sleep(1.0)
        assert "good-r0" in worker.supervisors and isinstance(worker.local["good-r0"].status, RunnerReady)
    run_worker(worker, scenario)
    assert FAULTS.counts["worker.spawn_failed"] == before + 3


PARAMS = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])


def text_task(tid, iid):
    params = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])
    return TextGeneration(task_id=tid, instance_id=iid, command_id=f"c{tid}", task_params=params,
                          task_status=TaskStatus.Pending)


class FakeSupervisor:
    """Ready at once; its submit raises, as a bug in a supervisor call would."""

    def __init__(self, rid, instance, *, on_status, on_output, on_traces=None):
        self.runner_id, self.instance, self.rank = rid, instance, 0
        self._on_status = on_status
        self.status = RunnerReady()
        self.aborted = None
        self._done = trio.Event()

    async def run(self):
        self._on_status(self.runner_id, RunnerReady())
        await self._done.wait()

    async def submit(self, task_id, params, trace=False, priority="normal"):
        raise RuntimeError("boom in submit")

    async def shutdown(self):
        self._done.set()

    def abort(self, reason):
        self.aborted = reason
        self.status = RunnerFailed(error_message=reason)
        self._on_status(self.runner_id, self.status)
        self._done.set()


def test_a_supervisor_call_that_raises_fails_that_runner_only():
    inst = ring_instance("i1", ["n1"])
    router = FakeRouter(state_with(inst, runners={"i1-r0": RunnerReady()}, tasks={"t1": text_task("t1", "i1")}))
    made = []
    worker = WorkerService("n1", router, lambda *a, **kw: made.append(FakeSupervisor(*a, **kw)) or made[-1],
                           send_output=lambda *_: None, plan_interval=0.5)
    worker.params.put("t1", PARAMS)  # as the API node's RequestParams would
    before = FAULTS.counts["worker.action_failed"]

    async def scenario(nursery):
        await trio.sleep(2.0)
        assert made[0].aborted is not None and "boom in submit" in made[0].aborted
        assert any("boom in submit" in m for m in router.failures("i1-r0"))
        await trio.sleep(20.0)
        assert len(made) == 3  # respawned as after a crash, until the crash breaker opens
    run_worker(worker, scenario)
    assert FAULTS.counts["worker.action_failed"] > before


def test_a_forward_whose_task_cannot_be_read_fails_the_task_not_the_runner():
    inst = ring_instance("i1", ["n1"])
    router = FakeRouter(state_with(inst, runners={"i1-r0": RunnerReady()}))
    made = []
    worker = WorkerService("n1", router, lambda *a, **kw: made.append(FakeSupervisor(*a, **kw)) or made[-1],
                           send_output=lambda *_: None, plan_interval=0.5)

    async def scenario(nursery):
        await trio.sleep(0.6)
        worker._forward = lambda action: (_ for _ in ()).throw(KeyError(action.task_id))  # a planner-step bug
        task = text_task("t2", "i1")
        worker.params.put("t2", PARAMS)
        router.state = router.state.model_copy(update={"tasks": {"t2": task}})
        await trio.sleep(2.0)
    run_worker(worker, scenario)
    failed = [e for e in router.sent if isinstance(e, TaskFailed)]
    assert [e.task_id for e in failed] == ["t2"] and made[0].aborted is None


def test_a_malformed_instance_in_state_stops_only_itself():
    # Built without validation, as a bug or an old log might.
    bad = MlxRingInstance.model_construct(instance_id="bad", shard_assignments=None, hosts_by_node={})
    router = FakeRouter(state_with(bad, ring_instance("good", ["n1"])))
    worker = WorkerService("n1", router, FakeSupervisor, send_output=lambda *_: None, plan_interval=0.5)
    before = FAULTS.snapshot()

    async def scenario(nursery):
        await trio.sleep(1.2)
        assert list(worker.supervisors) == ["good-r0"]
    run_worker(worker, scenario)
    assert FAULTS.counts["worker.plan_failed"] > before.get("worker.plan_failed", 0)
    assert FAULTS.counts["worker.plan_instance"] > before.get("worker.plan_instance", 0)
