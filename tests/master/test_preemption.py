"""Priority preemption through the master's reconcile pass, as plain calls: one node with memory for
one instance; a high-priority deployment stops an idle low-priority one, is placed once that memory
is free, and the low-priority one comes back by itself after the high-priority one is deleted."""

from datetime import timedelta
from itertools import count

from skulk.master import deployments as dep
from skulk.master import preemption
from skulk.master.dispatch import decide, place
from skulk.master.memory_estimate import estimate_shard_footprint
from skulk.master.sequencer import Sequencer
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus as S
from skulk.types.runners import RunnerReady
from skulk.types.tasks import TaskStatus, TextGeneration
from tests.factories import card
from tests.master.test_command_table import T0, cluster, ctx as base_ctx
from tests.master.test_placement_builders import GIB, memory

LOW, HIGH = card("org/low", gb=5), card("org/high", gb=5)
TOTAL = 12 * GIB  # usable: 9 GiB at most (the 75% ceiling); one instance needs about 6.9 GiB
IDS = count()


def footprint(c) -> int:
    return estimate_shard_footprint(c, 1)


class Node:
    """What node "a" reports: its memory drops by an instance's footprint once that one is loaded."""

    def __init__(self):
        self.loaded: set[str] = set()

    def ctx(self, seconds: float):
        used = sum(footprint(c) for c in (LOW, HIGH) if c.model_id in self.loaded)
        return base_ctx(("a",), node_memory={"a": memory(TOTAL, TOTAL - used)}, now=at(seconds),
                        new_id=lambda: f"id{next(IDS)}")


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def spec(deployment_id: str, c, **fields) -> Deployment:
    return Deployment(deployment_id=deployment_id, model_id=c.model_id, model_card=c, **fields)


class Master:
    def __init__(self, seq: Sequencer, node: Node):
        self.seq, self.node, self.backoff = seq, node, {}
        self.uses = preemption.Uses(since=T0)

    def index(self, events: list) -> list:
        for e in events:
            self.seq.index(e, T0)
        return events

    def create(self, seconds: float, d: Deployment) -> list:
        return self.index(decide(self.seq.state, cmd.CreateDeployment(deployment=d), self.node.ctx(seconds)))

    def reconcile(self, seconds: float) -> list:
        events, self.backoff = dep.reconcile_deployments(self.seq.state, self.node.ctx(seconds), place,
                                                         self.backoff, (), self.uses)
        return self.index(events)

    def load(self, deployment_id: str) -> None:
        """Its runners report ready and the node's memory shows the model loaded."""
        for inst in dep.instances_of(self.seq.state, deployment_id):
            self.node.loaded.add(inst.shard_assignments.model_id)
            for rid in inst.shard_assignments.runner_to_shard:
                self.seq.index(ev.RunnerStatusUpdated(runner_id=rid, runner_status=RunnerReady()), T0)

    def unload_gone(self) -> None:
        """Runners of deleted instances have stopped: their memory is free again."""
        live = {i.shard_assignments.model_id for i in self.seq.state.instances.values()}
        self.node.loaded &= live

    def placed(self, deployment_id: str) -> int:
        return len(dep.instances_of(self.seq.state, deployment_id))

    def deployment(self, deployment_id: str) -> Deployment:
        return self.seq.state.deployments[deployment_id]


def low_serving(priority: str = "low", **fields) -> Master:
    m = Master(cluster(("a",)), Node())
    m.create(0, spec("low", LOW, priority=priority, **fields))
    m.load("low")
    m.reconcile(1)
    assert m.deployment("low").status == S.ready
    return m


def test_the_two_instances_do_not_fit_together():
    assert TOTAL - footprint(LOW) < footprint(HIGH) < TOTAL * 3 // 4


def test_high_priority_stops_an_idle_low_one_and_the_low_one_comes_back_after_it_is_deleted():
    m = low_serving()
    m.create(2, spec("high", HIGH, priority="high"))
    assert m.placed("high") == 0 and m.deployment("high").status == S.pending
    m.reconcile(30)  # low used at most 30 s ago: not idle for preempt_idle_seconds (60) yet
    assert m.placed("low") == 1 and m.placed("high") == 0

    events = m.reconcile(70)
    gone = [e for e in events if isinstance(e, ev.InstanceDeleted)]
    assert len(gone) == 1 and "preempted by deployment high (priority high)" in gone[0].reason
    low = m.deployment("low")
    assert (low.status, low.preempted_by) == (S.pending, "high") and "preempted by deployment high" in low.reason
    assert m.placed("high") == 0  # the node still reports the low model's memory in use

    m.unload_gone()
    m.reconcile(72)
    assert m.placed("high") == 1 and m.placed("low") == 0  # low waits for high, even on free-looking memory
    m.load("high")
    m.reconcile(74)
    assert m.deployment("high").status == S.ready and m.placed("low") == 0
    assert m.deployment("low").status == S.pending  # tried, does not fit: its refusal is its reason

    m.index(decide(m.seq.state, cmd.DeleteDeployment(deployment_id="high"), m.node.ctx(80)))
    m.reconcile(80)  # an instance went away: low tries again at once (memory not reported free yet)
    m.unload_gone()
    for t in (83, 90, 100):
        m.reconcile(t)
        if m.placed("low"):
            break
    assert m.placed("low") == 1, m.deployment("low")
    assert m.deployment("low").preempted_by is None
    m.load("low")
    m.reconcile(101)
    assert m.deployment("low").status == S.ready


def test_no_preemption_of_pinned_busy_equal_or_recently_used_deployments():
    pinned = low_serving(pinned=True)
    pinned.create(2, spec("high", HIGH, priority="high"))
    pinned.reconcile(100)
    assert pinned.placed("low") == 1 and pinned.deployment("low").preempted_by is None

    equal = low_serving(priority="normal")
    equal.create(2, spec("high", HIGH, priority="normal"))
    equal.reconcile(100)
    assert equal.placed("low") == 1

    busy = low_serving()
    (iid,) = [i.instance_id for i in dep.instances_of(busy.seq.state, "low")]
    task = TextGeneration(task_id="t1", instance_id=iid, command_id="c1", model=LOW.model_id,
                          task_status=TaskStatus.Running)
    busy.index([ev.TaskCreated(task_id="t1", task=task)])
    busy.create(2, spec("high", HIGH, priority="high"))
    busy.reconcile(100)
    assert busy.placed("low") == 1

    used = low_serving()
    used.uses = preemption.Uses(since=T0, last_used={"low": at(90)})
    used.create(2, spec("high", HIGH, priority="high"))
    used.reconcile(100)
    assert used.placed("low") == 1


def test_preemption_off_and_without_a_record_of_requests():
    off = low_serving()
    off.index([ev.ClusterConfigChanged(config={"deployments": {"preempt_idle_seconds": None}})])
    off.create(2, spec("high", HIGH, priority="high"))
    off.reconcile(1000)
    assert off.placed("low") == 1

    no_uses = low_serving()
    no_uses.uses = None
    no_uses.create(2, spec("high", HIGH, priority="high"))
    no_uses.reconcile(1000)
    assert no_uses.placed("low") == 1


def test_just_enough_victims_lowest_priority_first():
    small = card("org/small", gb=2)
    m = Master(cluster(("a",)), Node())
    big = 12 * GIB  # three small ones loaded: 3.4 GiB free; the high one needs 6.8, so two must go
    m.node.ctx = lambda seconds: base_ctx(("a",), node_memory={"a": memory(big, big - 3 * footprint(small))},
                                          now=at(seconds), new_id=lambda: f"id{next(IDS)}")
    for name, priority in (("n1", "normal"), ("l1", "low"), ("l2", "low")):
        m.index(decide(m.seq.state, cmd.CreateDeployment(deployment=spec(name, small, priority=priority)),  # placed on an empty node
                       base_ctx(("a",), node_memory={"a": memory(big)}, now=at(0), new_id=lambda: f"id{next(IDS)}")))
        m.load(name)
    m.reconcile(1)
    victims = preemption.choose_victims(m.seq.state, spec("h", HIGH, priority="high"), m.node.ctx(100),
                                        lambda s, c: dep.place_one(s, spec("h", HIGH, priority="high"), c, place),
                                        m.uses)
    owners = [m.seq.state.instances[i].deployment_id for i in victims]
    assert sorted(owners) == ["l1", "l2"]  # the normal one is left: the two low ones suffice
