"""The planner forwards the tasks it finds in one pass high priority first, FIFO within one, so
requests that arrive together reach the runner's queue in priority order."""

from skulk.types.runners import RunnerReady
from skulk.types.state import State
from skulk.types.tasks import TextGeneration
from skulk.worker.plan import Forward, LocalRunner, WorkerPlanInput, plan
from tests.factories import ring_instance


def task(tid: str, priority: str) -> TextGeneration:
    return TextGeneration(task_id=tid, instance_id="i1", command_id=f"c{tid}", model="org/tiny", priority=priority)


def test_forwards_high_first_then_normal_then_low_each_in_arrival_order():
    order = [("t1", "low"), ("t2", "normal"), ("t3", "high"), ("t4", "normal"), ("t5", "high")]
    state = State(instances={"i1": ring_instance("i1", ["a"])}, runners={"i1-r0": RunnerReady()},
                  tasks={tid: task(tid, p) for tid, p in order})
    mine = {"i1-r0": LocalRunner(runner_id="i1-r0", instance_id="i1", status=RunnerReady())}
    actions = plan(WorkerPlanInput("a", state, mine, params=frozenset(t for t, _ in order)))
    assert actions == [Forward("i1-r0", t) for t in ("t3", "t5", "t2", "t4", "t1")]
