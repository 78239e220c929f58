"""The worker planner's warm-cache steps: pause an idle runner of a paused deployment, resume it awake."""

from skulk.types.deployments import Deployment, DeploymentStatus
from skulk.types.runners import RunnerLoaded, RunnerPaused, RunnerReady, RunnerRunning
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.worker.plan import Forward, LocalRunner, Step, WorkerPlanInput, plan
from tests.factories import ring_instance


def cluster(status: DeploymentStatus, runner_status, tasks=()) -> State:
    inst = ring_instance("i1", ["a"]).model_copy(update={"deployment_id": "d1"})
    dep = Deployment(deployment_id="d1", model_id="org/tiny", status=status)
    params = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])
    tasks = {t: TextGeneration(task_id=t, instance_id="i1", command_id=f"c{t}", task_params=params,
                               task_status=TaskStatus.Pending) for t in tasks}
    return State(instances={"i1": inst}, deployments={"d1": dep}, runners={"i1-r0": runner_status}, tasks=tasks)


def steps(state: State, status, **kw) -> list:
    local = LocalRunner(runner_id="i1-r0", instance_id="i1", status=status, **kw)
    params = frozenset(state.tasks)
    return plan(WorkerPlanInput("a", state, {"i1-r0": local}, params=params))


def test_a_paused_deployment_pauses_its_idle_ready_runner_once():
    assert steps(cluster(DeploymentStatus.paused, RunnerReady()), RunnerReady()) == [Step("i1-r0", "pause")]
    assert steps(cluster(DeploymentStatus.paused, RunnerReady()), RunnerReady(), requested="pause") == []
    assert steps(cluster(DeploymentStatus.ready, RunnerReady()), RunnerReady()) == []


def test_never_pauses_with_work_in_flight_or_waiting():
    busy = steps(cluster(DeploymentStatus.paused, RunnerRunning()), RunnerRunning(), active=frozenset({"t"}))
    assert not any(isinstance(a, Step) for a in busy)
    waiting = steps(cluster(DeploymentStatus.paused, RunnerReady(), tasks=["t1"]), RunnerReady())
    assert waiting == [Forward("i1-r0", "t1")]  # the request is served, not paused away


def test_an_awake_deployment_resumes_its_paused_runner_then_warms_it_up():
    assert steps(cluster(DeploymentStatus.pending, RunnerPaused()), RunnerPaused()) == [Step("i1-r0", "resume")]
    assert steps(cluster(DeploymentStatus.paused, RunnerPaused()), RunnerPaused()) == []
    # the reload reports Loaded: the usual warmup follows
    assert steps(cluster(DeploymentStatus.starting, RunnerLoaded()), RunnerLoaded()) == [Step("i1-r0", "warmup")]
