from skulk.types.runners import (
    RunnerConnected, RunnerFailed, RunnerIdle, RunnerLoaded, RunnerReady, RunnerRunning,
)
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.worker.params import PARAMS_WAIT_S
from skulk.worker.plan import (
    Cancel, FailTask, Forward, LocalRunner, Spawn, Step, Stop, WorkerPlanInput, awaiting_params, plan,
)
from tests.factories import ring_instance


def state_with(instances=(), runners=None, tasks=None):
    return State(instances={i.instance_id: i for i in instances}, runners=runners or {}, tasks=tasks or {})


def text_task(tid, iid, status=TaskStatus.Pending):
    params = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])
    return TextGeneration(task_id=tid, instance_id=iid, command_id=f"c{tid}", task_params=params, task_status=status)


def local(rid, iid, status, **kw):
    return LocalRunner(runner_id=rid, instance_id=iid, status=status, **kw)


def test_spawns_only_runners_assigned_to_this_node():
    s = state_with([ring_instance("i1", ["a", "b"]), ring_instance("i2", ["b"])])
    assert plan(WorkerPlanInput("a", s)) == [Spawn("i1", "i1-r0")]


def test_stops_runner_of_deleted_instance_and_when_sibling_failed():
    s = state_with([ring_instance("i1", ["a", "b"])], runners={"i1-r1": RunnerFailed(error_message="x")})
    acts = plan(WorkerPlanInput("a", s, {"i1-r0": local("i1-r0", "i1", RunnerReady()),
                                         "old": local("old", "gone", RunnerReady())}))
    assert Stop("old", "instance deleted") in acts and any(isinstance(a, Stop) and a.runner_id == "i1-r0" for a in acts)


def test_warmup_waits_for_every_rank_to_load():
    inst = ring_instance("i1", ["a", "b"])
    mine = {"i1-r0": local("i1-r0", "i1", RunnerLoaded())}
    s = state_with([inst], runners={"i1-r0": RunnerLoaded(), "i1-r1": RunnerConnected()})
    assert plan(WorkerPlanInput("a", s, mine)) == []
    s = state_with([inst], runners={"i1-r0": RunnerLoaded(), "i1-r1": RunnerLoaded()})
    assert plan(WorkerPlanInput("a", s, mine)) == [Step("i1-r0", "warmup")]
    requested = {"i1-r0": local("i1-r0", "i1", RunnerLoaded(), requested="warmup")}
    assert plan(WorkerPlanInput("a", s, requested)) == []
    idle = {"i1-r0": local("i1-r0", "i1", RunnerIdle())}
    assert plan(WorkerPlanInput("a", s, idle)) == []


def test_forwards_pending_tasks_only_when_every_rank_serves():
    inst = ring_instance("i1", ["a", "b"])
    tasks = {"t1": text_task("t1", "i1"), "t2": text_task("t2", "i1", TaskStatus.Complete),
             "t3": text_task("t3", "other")}
    mine = {"i1-r0": local("i1-r0", "i1", RunnerReady())}
    s = state_with([inst], runners={"i1-r0": RunnerReady(), "i1-r1": RunnerLoaded()}, tasks=tasks)
    have = frozenset({"t1", "t2", "t3"})  # every task's params arrived
    assert plan(WorkerPlanInput("a", s, mine, params=have)) == []
    s = state_with([inst], runners={"i1-r0": RunnerReady(), "i1-r1": RunnerRunning()}, tasks=tasks)
    assert plan(WorkerPlanInput("a", s, mine, params=have)) == [Forward("i1-r0", "t1")]
    done = {"i1-r0": local("i1-r0", "i1", RunnerRunning(), forwarded=frozenset({"t1"}), active=frozenset({"t1"}))}
    assert plan(WorkerPlanInput("a", s, done, params=have)) == []


def test_a_task_is_held_until_its_params_arrive_then_failed_after_the_bounded_wait():
    inst = ring_instance("i1", ["a"])
    s = state_with([inst], runners={"i1-r0": RunnerReady()}, tasks={"t1": text_task("t1", "i1")})
    mine = {"i1-r0": local("i1-r0", "i1", RunnerReady())}
    held = WorkerPlanInput("a", s, mine, waiting={"t1": 100.0}, now=100.0 + PARAMS_WAIT_S - 0.1)
    assert awaiting_params(held) == {"t1"}
    assert plan(held) == []  # no params: not forwarded, not failed yet
    late = WorkerPlanInput("a", s, mine, waiting={"t1": 100.0}, now=100.0 + PARAMS_WAIT_S)
    (failed,) = plan(late)
    assert isinstance(failed, FailTask) and failed.task_id == "t1" and failed.error_type == "request_params_missing"
    arrived = WorkerPlanInput("a", s, mine, params=frozenset({"t1"}), waiting={"t1": 100.0}, now=200.0)
    assert plan(arrived) == [Forward("i1-r0", "t1")] and awaiting_params(arrived) == set()
    forwarded = {"i1-r0": local("i1-r0", "i1", RunnerRunning(), forwarded=frozenset({"t1"}))}
    assert awaiting_params(WorkerPlanInput("a", s, forwarded, now=200.0)) == set()


def test_cancels_active_tasks_that_were_cancelled_or_removed():
    inst = ring_instance("i1", ["a"])
    tasks = {"t1": text_task("t1", "i1", TaskStatus.Cancelled)}
    mine = {"i1-r0": local("i1-r0", "i1", RunnerRunning(), forwarded=frozenset({"t1", "t2"}),
                           active=frozenset({"t1", "t2"}))}
    s = state_with([inst], runners={"i1-r0": RunnerRunning()}, tasks=tasks)
    assert set(plan(WorkerPlanInput("a", s, mine))) == {Cancel("i1-r0", "t1"), Cancel("i1-r0", "t2")}
