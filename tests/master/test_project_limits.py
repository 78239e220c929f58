"""Project admission and usage windows, pure: the master's decisions without an event loop."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from skulk.errors import Conflict, NotFound
from skulk.master.dispatch import DecideContext, decide
from skulk.master.sequencer import Sequencer
from skulk.state.usage import key_series, project_series, record, window, windows
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.access import ApiKeyRecord
from skulk.types.chunks import Usage
from skulk.types.projects import MAX_REJECTIONS, ProjectPolicy
from skulk.types.tasks import TaskStatus, TextGenerationTaskParams
from skulk.types.runners import RunnerReady
from tests.factories import ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARAMS = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "hi"}])


def key(key_id: str, project: str | None) -> ApiKeyRecord:
    return ApiKeyRecord(id=key_id, name=key_id, role="user", project=project, created_at=T0,
                        salt="00" * 16, key_hash="11" * 32)


class Cluster:
    """A sequencer fed with the deciders' own events, like the master does."""

    def __init__(self, **policy):
        self.seq = Sequencer()
        self.now = T0
        self.n = 0
        self.index(ev.InstanceCreated(instance=ring_instance("i1", ["a"])),
                   ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerReady()),  # admission: ready only
                   ev.ApiKeyCreated(record=key("k1", "team")), ev.ApiKeyCreated(record=key("k2", "team")),
                   ev.ApiKeyCreated(record=key("solo", None)))
        self.run(cmd.CreateProject(project=ProjectPolicy(name="team", **policy)))

    def index(self, *events):
        for e in events:
            self.seq.index(e, self.now)

    @property
    def state(self):
        return self.seq.state

    def _id(self) -> str:
        self.n += 1
        return f"id{self.n}"

    def run(self, command, sender="a") -> list:
        events = decide(self.state, command, DecideContext(now=self.now, sender=sender, new_id=self._id))
        self.index(*events)
        return events

    def ask(self, key_id="k1", model="org/tiny", sender="a"):
        c = cmd.GenerateText(task_params=PARAMS.model_copy(update={"model": model}), key_id=key_id)
        return c, self.run(c, sender)

    def finish(self, c, prompt=0, completion=0):
        return self.run(cmd.FinishCommand(finished_command_id=c.command_id,
                                          usage=Usage(prompt_tokens=prompt, completion_tokens=completion)))


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_requests_per_minute_admits_exactly_the_limit_across_senders_then_refuses_with_reset():
    c = Cluster(requests_per_minute=10)
    admitted = 0
    for i in range(15):  # three API nodes, interleaved: the master's order is what counts
        command, events = c.ask(key_id="k1" if i % 2 else "k2", sender="abc"[i % 3])
        admitted += "TaskCreated" in kinds(events)
        if "TaskCreated" in kinds(events):
            c.finish(command)
        c.now += timedelta(seconds=1)
    assert admitted == 10
    rejection = c.state.rejections[command.command_id]
    assert (rejection.status, rejection.limit, rejection.remaining, rejection.project) == (429, 10, 0, "team")
    assert rejection.owner_node == "c"  # the sender, whatever the command claimed
    # the first admission (t=0) leaves the 1-minute window at t=61
    assert 1 <= rejection.reset_s <= 61
    c.now = T0 + timedelta(seconds=61)
    assert "TaskCreated" in kinds(c.ask()[1])
    u = windows(c.state.usage[project_series("team")], c.now.timestamp())
    assert u["1h"]["requests"] == 11 and u["1h"]["rejections"] == 5


def test_concurrency_counts_open_tasks_of_the_project_only():
    c = Cluster(max_concurrent_requests=1)
    first, events = c.ask()
    assert "TaskCreated" in kinds(events)
    second, events = c.ask(key_id="k2")
    assert kinds(events) == ["RequestRejected"] and events[0].rejection.limit == 1
    assert "TaskCreated" in kinds(c.ask(key_id="solo")[1])  # a key without a project is not limited
    c.finish(first)
    assert "TaskCreated" in kinds(c.ask(key_id="k2")[1])


def test_a_completed_task_no_longer_counts_as_open():
    c = Cluster(max_concurrent_requests=1)
    first, events = c.ask()
    c.index(ev.TaskStatusUpdated(task_id=events[0].task_id, task_status=TaskStatus.Complete))
    assert "TaskCreated" in kinds(c.ask()[1])


def test_tokens_per_minute_count_prompt_and_completion_of_finished_requests():
    c = Cluster(tokens_per_minute=100)
    first, _ = c.ask()
    second, _ = c.ask()
    c.finish(first, prompt=30, completion=40)
    assert "TaskCreated" in kinds(c.ask()[1])
    c.finish(second, prompt=20, completion=15)  # 105 >= 100
    _, events = c.ask()
    assert kinds(events) == ["RequestRejected"] and events[0].rejection.limit == 100
    k = window(c.state.usage[key_series("k1")], c.now.timestamp(), 60)
    assert (k["prompt_tokens"], k["completion_tokens"], k["requests"], k["rejections"]) == (50, 55, 3, 1)


def test_a_model_outside_the_project_is_refused_with_403():
    c = Cluster(allowed_models=["org/tiny"])
    _, events = c.ask(model="org/other")
    assert events[0].rejection.status == 403
    assert "TaskCreated" in kinds(c.ask()[1])


def test_the_project_comes_from_the_key_record_and_tasks_carry_it():
    c = Cluster(requests_per_minute=1)
    _, events = c.ask(key_id="solo")
    assert events[0].task.project is None and events[0].task.key_id == "solo"
    _, events = c.ask(key_id="k1")
    assert events[0].task.project == "team"
    assert kinds(c.ask(key_id="unknown-key")[1])[0] == "TaskCreated"  # no record: no project to limit


def test_project_commands_create_refuse_duplicates_and_delete():
    c = Cluster()
    with pytest.raises(Conflict):
        c.run(cmd.CreateProject(project=ProjectPolicy(name="team")))
    assert c.state.projects["team"].created_at == T0
    c.run(cmd.DeleteProject(name="team"))
    assert "team" not in c.state.projects
    with pytest.raises(NotFound):
        c.run(cmd.DeleteProject(name="team"))


@pytest.mark.parametrize("bad", [{"name": "../etc"}, {"name": ""}, {"name": "a" * 64}, {"name": "x y"},
                                 {"name": "p", "requests_per_minute": 0}, {"name": "p", "max_instances": -1}])
def test_policy_validation_refuses_bad_names_and_numbers(bad):
    with pytest.raises(ValidationError):
        ProjectPolicy(**bad)


def test_rejections_kept_in_state_are_bounded():
    c = Cluster(requests_per_minute=1)
    for _ in range(MAX_REJECTIONS + 20):
        c.ask()
    assert len(c.state.rejections) == MAX_REJECTIONS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200_000), st.integers(0, 5)), max_size=80),
       st.integers(0, 100_000))
def test_windows_match_a_direct_count(points, later):
    """Every window equals a brute-force count of what fell inside it (at its bucket resolution)."""
    now = max((at for at, _ in points), default=0) + later  # the master's clock only moves on
    series = None
    for at, n in sorted(points):
        series = record(series, at, requests=n)
    got = windows(series, now)
    for label, seconds, width in (("1m", 60, 1), ("1h", 3600, 60), ("24h", 86400, 3600)):
        want = sum(n for at, n in points if at - at % width + width > now - seconds and at - at % width <= now)
        assert got[label]["requests"] == want, label
    if series is not None:
        assert len(series.seconds) <= 61 and len(series.minutes) <= 61 and len(series.hours) <= 25


def test_max_instances_counts_placements_made_with_the_projects_keys():
    from skulk.master.limits import InstancesExceeded, placement_project
    c = Cluster(max_instances=1)
    assert placement_project(c.state, "k1") == "team"
    inst = ring_instance("i2", ["a"])
    c.index(ev.InstanceCreated(instance=inst, project="team"))
    assert c.state.instance_projects == {"i2": "team"}
    with pytest.raises(InstancesExceeded):
        placement_project(c.state, "k2")
    assert placement_project(c.state, "solo") is None  # a key without a project places freely
    c.index(ev.InstanceDeleted(instance_id="i2"), ev.InstanceCreated(instance=ring_instance("i3", ["a"])))
    assert placement_project(c.state, "k1") == "team" and c.state.instance_projects == {}


def test_a_hand_written_instance_counts_toward_max_instances_too():
    from skulk.master.limits import InstancesExceeded

    from skulk.types.node import NetworkInterfaceInfo, NodeNetworkInterfaces

    c = Cluster(max_instances=1)
    iface = NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="lo", ip_address="127.0.0.1")])
    c.index(ev.NodeGatheredInfo(node_id="a", when=T0, info=iface))  # an instance must name known nodes
    c.run(cmd.CreateInstance(instance=ring_instance("i2", ["a"]), key_id="k1"))
    assert c.state.instance_projects == {"i2": "team"}
    with pytest.raises(InstancesExceeded):
        c.run(cmd.CreateInstance(instance=ring_instance("i3", ["a"]), key_id="k2"))
    c.run(cmd.CreateInstance(instance=ring_instance("i4", ["a"]), key_id="solo"))
    assert "i4" in c.state.instances and "i4" not in c.state.instance_projects
