"""Admission by queue depth (skulk.master.admission), through the master's command table."""

import itertools
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skulk.errors import NotFound
from skulk.master import admission
from skulk.master.dispatch import DecideContext, decide
from skulk.master.sequencer import Sequencer
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.projects import ProjectPolicy
from skulk.types.runners import RunnerLoading, RunnerReady, RunnerRunning
from skulk.types.tasks import TaskStatus, TextEmbeddingTaskParams, TextGenerationTaskParams
from tests.factories import ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARAMS = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])


def cluster(instances: dict[str, list[str]], ready: set[str] | None = None) -> Sequencer:
    """Instances by id -> nodes; those in `ready` (default all) have every runner ready."""
    s = Sequencer()
    for iid, nodes in instances.items():
        s.index(ev.InstanceCreated(instance=ring_instance(iid, nodes)), T0)
        up = ready is None or iid in ready
        for rank in range(len(nodes)):
            status = RunnerReady() if up else RunnerLoading()
            s.index(ev.RunnerStatusUpdated(runner_id=f"{iid}-r{rank}", runner_status=status), T0)
    return s


def ctx(limit: int) -> DecideContext:
    ids = itertools.count()
    return DecideContext(pending_limit=limit, new_id=lambda: f"t{next(ids)}", now=T0)


def run(s: Sequencer, command, c: DecideContext) -> list:
    events = decide(s.state, command, c)
    for e in events:
        s.index(e, T0)
    return events


def generate(owner: str = "a", **kw) -> cmd.GenerateText:
    return cmd.GenerateText(task_params=PARAMS, owner_node=owner, **kw)


def test_a_full_instance_refuses_with_429_and_a_finished_request_makes_room():
    s, c = cluster({"i1": ["a"]}), ctx(2)
    first, second = generate(), generate()
    assert [type(e) for e in run(s, first, c)] == [ev.TaskCreated]
    assert [type(e) for e in run(s, second, c)] == [ev.TaskCreated]
    [refused] = run(s, generate(), c)
    assert isinstance(refused, ev.RequestRejected)
    r = refused.rejection
    assert r.status == 429 and r.reason.startswith("pending limit") and r.limit == 2 and r.retry_after_s >= 1
    assert len(s.state.tasks) == 2  # a refusal leaves no task behind
    run(s, cmd.FinishCommand(finished_command_id=first.command_id), c)
    [created] = run(s, generate(), c)
    assert isinstance(created, ev.TaskCreated)


def test_load_spreads_by_depth_and_ties_go_to_the_callers_own_node():
    s, c = cluster({"i1": ["a"], "i2": ["b"]}), ctx(8)
    [on_b] = run(s, generate(owner="b"), c)
    assert on_b.task.instance_id == "i2"  # tie at 0: b's own instance, though i1 sorts first
    [next_one] = run(s, generate(owner="b"), c)
    assert next_one.task.instance_id == "i1"  # i2 is deeper now
    placed = [run(s, generate(owner="a"), c)[0].task.instance_id for _ in range(4)]
    assert sorted(placed) == ["i1", "i1", "i2", "i2"]
    assert admission.depths(s.state) == {"i1": 3, "i2": 3}


def test_only_ready_instances_take_requests_and_none_ready_is_503():
    s, c = cluster({"i1": ["a"], "i2": ["b"]}, ready={"i2"}), ctx(8)
    [created] = run(s, generate(owner="a"), c)
    assert created.task.instance_id == "i2"  # the local one is still loading
    loading = cluster({"i1": ["a"]}, ready=set())
    [refused] = run(loading, generate(), c)
    assert refused.rejection.status == 503 and "ready" in refused.rejection.reason
    assert loading.state.tasks == {}


def test_running_tasks_count_as_open_and_unknown_models_are_404():
    s, c = cluster({"i1": ["a"]}), ctx(1)
    [created] = run(s, generate(), c)
    s.index(ev.TaskStatusUpdated(task_id=created.task_id, task_status=TaskStatus.Running), T0)
    s.index(ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerRunning()), T0)
    assert isinstance(run(s, generate(), c)[0], ev.RequestRejected)
    other = cmd.GenerateText(task_params=PARAMS.model_copy(update={"model": "org/other"}), owner_node="a")
    with pytest.raises(NotFound):
        decide(s.state, other, c)


def test_embeddings_share_the_limit():
    s, c = cluster({"i1": ["a"]}), ctx(1)
    embed = cmd.EmbedText(task_params=TextEmbeddingTaskParams(model="org/tiny", input=["x"]), owner_node="a")
    assert isinstance(run(s, embed, c)[0], ev.TaskCreated)
    assert isinstance(run(s, generate(), c)[0], ev.RequestRejected)


def test_capacity_is_checked_before_the_project_so_a_full_refusal_counts_no_request():
    s, c = cluster({"i1": ["a"]}), ctx(1)
    s.index(ev.ProjectCreated(project=ProjectPolicy(name="p", requests_per_minute=100)), T0)
    run(s, generate(), c)
    [refused] = run(s, generate(key_id="k1"), c)
    assert isinstance(refused, ev.RequestRejected) and refused.rejection.status == 429
    assert s.state.usage["key:k1"].total.requests == 0 and s.state.usage["key:k1"].total.rejections == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["gen", "finish"]), st.sampled_from(["a", "b", "c"])), max_size=40),
       st.integers(min_value=1, max_value=4))
def test_no_instance_ever_holds_more_than_the_limit_and_refusals_mean_all_full(steps, limit):
    s, c = cluster({"i1": ["a"], "i2": ["b"]}), ctx(limit)
    open_commands: list[str] = []
    for kind, owner in steps:
        if kind == "finish" and open_commands:
            run(s, cmd.FinishCommand(finished_command_id=open_commands.pop(0)), c)
            continue
        command = generate(owner=owner)
        full_before = all(admission.depths(s.state)[i] >= limit for i in ("i1", "i2"))
        [e] = run(s, command, c)
        assert isinstance(e, ev.RequestRejected) == full_before
        if isinstance(e, ev.TaskCreated):
            open_commands.append(command.command_id)
        assert max(admission.depths(s.state).values(), default=0) <= limit
