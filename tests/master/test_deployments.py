"""The deployment reconciler and deployment commands, driven as plain calls (no event loop, no clock)."""

from datetime import timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skulk.errors import BadRequest, NotFound
from skulk.master import deployments as dep
from skulk.master.dispatch import decide, place
from skulk.master.sequencer import Sequencer
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus as S
from skulk.types.runners import RunnerFailed, RunnerLoading, RunnerReady
from tests.factories import card
from tests.master.test_command_table import T0, cluster, ctx as base_ctx

AB = ("a", "b")
IDS = count()


def ctx(nodes=AB, **fields):
    return base_ctx(nodes, **{"new_id": lambda: f"id{next(IDS)}", **fields})


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def spec(deployment_id="d1", **fields) -> Deployment:
    c = fields.pop("model_card", card())
    return Deployment(deployment_id=deployment_id, model_id=c.model_id, model_card=c, **fields)


def index(seq: Sequencer, events: list) -> list:
    for e in events:
        seq.index(e, T0)
    return events


def create(seq: Sequencer, nodes=AB, **fields) -> list:
    return index(seq, decide(seq.state, cmd.CreateDeployment(deployment=spec(**fields)), ctx(nodes)))


class Reconciler:
    """The master's reconcile pass with its backoff carried between calls, as MasterService does."""

    def __init__(self, seq: Sequencer):
        self.seq, self.backoff, self.placements = seq, {}, 0

    def placer(self, state, command, context):
        self.placements += 1
        return place(state, command, context)

    def __call__(self, seconds: float = 0, nodes=AB, crashes=()) -> list:
        events, self.backoff = dep.reconcile_deployments(
            self.seq.state, ctx(nodes, now=at(seconds)), self.placer, self.backoff, crashes)
        return index(self.seq, events)


def ready(seq: Sequencer, deployment_id="d1") -> None:
    for inst in dep.instances_of(seq.state, deployment_id):
        for rid in inst.shard_assignments.runner_to_shard:
            seq.index(ev.RunnerStatusUpdated(runner_id=rid, runner_status=RunnerReady()), T0)


def status(seq: Sequencer, deployment_id="d1"):
    d = seq.state.deployments[deployment_id]
    return d.status, d.reason


def nodes_of(seq: Sequencer, deployment_id="d1") -> list[str]:
    return sorted(n for i in dep.instances_of(seq.state, deployment_id) for n in i.node_ids())


def test_create_places_the_first_instance_and_reconcile_places_up_to_replicas():
    seq = cluster(AB)
    created = create(seq, replicas=2)
    assert [type(e) for e in created] == [ev.DeploymentCreated, ev.InstanceCreated, ev.DeploymentStatusChanged]
    assert created[1].instance.deployment_id == "d1" and status(seq) == (S.starting, None)
    rec = Reconciler(seq)
    rec()
    assert len(dep.instances_of(seq.state, "d1")) == 2 and status(seq) == (S.starting, None)
    first = dep.instances_of(seq.state, "d1")[0]
    seq.index(ev.RunnerStatusUpdated(runner_id=next(iter(first.shard_assignments.runner_to_shard)),
                                     runner_status=RunnerReady()), T0)
    assert [type(e) for e in rec()] == [ev.DeploymentStatusChanged] and status(seq) == (S.degraded, None)
    ready(seq)
    rec()
    assert status(seq) == (S.ready, None)
    assert rec() == []  # nothing changed: no event at all


def test_refused_placement_backs_off_and_keeps_the_reason():
    seq = cluster(AB)
    create(seq, model_card=card(gb=1000))
    assert status(seq)[0] == S.pending and "no candidate cycle fits" in status(seq)[1].lower()
    rec = Reconciler(seq)
    assert rec(0) == [] and rec.placements == 1  # tried: refused again, same status and reason
    rec(1)
    assert rec.placements == 1  # inside the 2 s backoff: no attempt
    rec(2)
    assert rec.placements == 2
    rec(5)
    assert rec.placements == 2  # the next wait doubled to 4 s
    rec(6)
    assert rec.placements == 3 and rec.backoff["d1"].attempts == 3


def test_node_loss_places_again_on_the_remaining_nodes():
    seq = cluster(AB)
    create(seq, excluded_nodes=["a"])
    assert nodes_of(seq) == ["b"]
    ready(seq)
    seq.index(ev.NodeTimedOut(node_id="b"), T0)  # the liveness pass drops b and its instance
    assert dep.instances_of(seq.state, "d1") == []
    rec = Reconciler(seq)
    rec(nodes=("a",))
    # a is excluded by the deployment: nothing else fits, the reason says why, no instance appears
    assert nodes_of(seq) == [] and status(seq)[0] == S.pending and status(seq)[1]
    seq2 = cluster(AB)
    create(seq2)
    lost = nodes_of(seq2)[0]
    seq2.index(ev.NodeTimedOut(node_id=lost), T0)
    remaining = [n for n in AB if n != lost]
    Reconciler(seq2)(nodes=tuple(remaining))
    assert nodes_of(seq2) == remaining and status(seq2) == (S.starting, None)


def test_crash_loop_fails_the_deployment_with_the_cause_and_stops_placing():
    seq = cluster(AB)
    create(seq, max_restarts=2)
    inst = dep.instances_of(seq.state, "d1")[0]
    rid = next(iter(inst.shard_assignments.runner_to_shard))
    before = seq.state
    failed = [seq.index(ev.RunnerStatusUpdated(runner_id=rid, runner_status=RunnerFailed(error_message="boom")), T0),
              seq.index(ev.RunnerStatusUpdated(runner_id=rid, runner_status=RunnerFailed(error_message="boom")), T0)]
    crashes = dep.crashes_in(before, failed, at(1))
    assert [(c.deployment_id, c.error) for c in crashes] == [("d1", "boom")]  # a repeat is not a new crash
    rec = Reconciler(seq)
    rec(1, crashes=crashes)
    assert status(seq)[0] == S.starting and len(seq.state.deployments["d1"].restarts) == 1
    events = rec(2, crashes=[dep.Crash("d1", at(2), "out of memory")])
    assert status(seq)[0] == S.failed and "out of memory" in status(seq)[1] and "2 runner crashes" in status(seq)[1]
    assert any(isinstance(e, ev.InstanceDeleted) for e in events) and dep.instances_of(seq.state, "d1") == []
    assert rec(10) == [] and rec.placements == 0
    index(seq, decide(seq.state, cmd.RestartDeployment(deployment_id="d1"), ctx(AB)))
    assert seq.state.deployments["d1"].restarts == []
    rec(11)
    assert status(seq)[0] == S.starting and rec.placements == 1


def test_crashes_outside_the_window_do_not_count():
    seq = cluster(AB)
    seq.index(ev.ClusterConfigChanged(config={"runner": {"max_restarts": 2, "restart_window_seconds": 10}}), T0)
    create(seq)
    rec = Reconciler(seq)
    rec(1, crashes=[dep.Crash("d1", at(1))])
    rec(20, crashes=[dep.Crash("d1", at(20))])
    assert status(seq)[0] != S.failed and seq.state.deployments["d1"].restarts == [at(20)]


def test_lease_warns_once_then_expires_and_extend_moves_it():
    seq = cluster(AB)
    seq.index(ev.ClusterConfigChanged(config={"deployments": {"expiry_warning_seconds": 5}}), T0)
    index(seq, decide(seq.state, cmd.CreateDeployment(deployment=spec(lease_seconds=20)), ctx(AB, now=T0)))
    assert seq.state.deployments["d1"].expires_at == at(20)
    rec = Reconciler(seq)
    assert not any(isinstance(e, ev.LeaseExpiring) for e in rec(10))
    assert [type(e) for e in rec(15)] == [ev.LeaseExpiring]
    assert rec(16) == []  # warned once
    index(seq, decide(seq.state, cmd.ExtendDeploymentLease(deployment_id="d1", seconds=30), ctx(AB, now=at(16))))
    d = seq.state.deployments["d1"]
    assert d.expires_at == at(50) and not d.expiry_warned
    assert rec(30) == []
    assert [type(e) for e in rec(46)] == [ev.LeaseExpiring]
    events = rec(50)
    assert [type(e) for e in events] == [ev.LeaseExpired, ev.InstanceDeleted, ev.DeploymentDeleted]
    assert events[1].reason == "lease expired" and "d1" not in seq.state.deployments and not seq.state.instances


def test_a_short_lease_is_warned_at_once():
    seq = cluster(AB)
    index(seq, decide(seq.state, cmd.CreateDeployment(deployment=spec(lease_seconds=20)), ctx(AB, now=T0)))
    assert [type(e) for e in Reconciler(seq)(1)] == [ev.LeaseExpiring]  # 300 s warning capped to the lease


def test_draining_node_is_replaced_first_then_its_instance_goes():
    seq = cluster(AB)
    create(seq, excluded_nodes=["a"])
    ready(seq)
    old = dep.instances_of(seq.state, "d1")[0].instance_id
    seq.index(ev.DeploymentUpdated(deployment=seq.state.deployments["d1"].model_copy(update={"excluded_nodes": []})), T0)
    seq.index(ev.NodeCordoned(node_id="b", draining=True), T0)
    rec = Reconciler(seq)
    rec()
    assert nodes_of(seq) == ["a", "b"] and old in seq.state.instances  # b still serves meanwhile
    assert status(seq) == (S.ready, None)  # a planned move: still serving, no status change to alarm anyone
    ready(seq)
    events = rec()
    gone = [e for e in events if isinstance(e, ev.InstanceDeleted)]
    assert [(e.instance_id, e.reason) for e in gone] == [(old, "node drained")]
    assert nodes_of(seq) == ["a"] and status(seq) == (S.ready, None)


def test_cordoned_node_keeps_its_instance_but_it_does_not_count():
    seq = cluster(AB)
    create(seq, excluded_nodes=["a"])
    ready(seq)
    seq.index(ev.DeploymentUpdated(deployment=seq.state.deployments["d1"].model_copy(update={"excluded_nodes": []})), T0)
    seq.index(ev.NodeCordoned(node_id="b"), T0)
    rec = Reconciler(seq)
    rec()
    ready(seq)
    rec()
    assert nodes_of(seq) == ["a", "b"] and status(seq) == (S.ready, None)  # cordon: no new shards, no eviction


def test_paused_deployment_is_left_alone_and_resume_reconciles_again():
    seq = cluster(AB)
    create(seq)
    index(seq, decide(seq.state, cmd.SetDeploymentPaused(deployment_id="d1", paused=True), ctx(AB)))
    assert status(seq) == (S.paused, "paused")
    seq.index(ev.InstanceDeleted(instance_id=dep.instances_of(seq.state, "d1")[0].instance_id), T0)
    rec = Reconciler(seq)
    assert rec() == [] and rec.placements == 0
    index(seq, decide(seq.state, cmd.SetDeploymentPaused(deployment_id="d1", paused=False), ctx(AB)))
    rec()
    assert status(seq)[0] == S.starting and rec.placements == 1


def test_delete_and_unknown_ids_and_bounds():
    seq = cluster(AB)
    create(seq, replicas=2)
    Reconciler(seq)()
    events = index(seq, decide(seq.state, cmd.DeleteDeployment(deployment_id="d1"), ctx(AB)))
    assert [type(e) for e in events] == [ev.InstanceDeleted, ev.InstanceDeleted, ev.DeploymentDeleted]
    assert not seq.state.instances and not seq.state.deployments
    for command in (cmd.DeleteDeployment(deployment_id="d1"), cmd.RestartDeployment(deployment_id="d1"),
                    cmd.ExtendDeploymentLease(deployment_id="d1", seconds=5)):
        with pytest.raises(NotFound):
            decide(seq.state, command, ctx(AB))
    create(seq)
    with pytest.raises(BadRequest, match="already exists"):
        create(seq)
    with pytest.raises(BadRequest, match="no lease"):
        decide(seq.state, cmd.ExtendDeploymentLease(deployment_id="d1", seconds=5), ctx(AB))
    with pytest.raises(BadRequest, match="no model card"):
        decide(seq.state, cmd.CreateDeployment(deployment=Deployment(deployment_id="d2", model_id="org/x")), ctx(AB))
    with pytest.raises(ValueError):
        Deployment(deployment_id="../etc", model_id="org/x")
    with pytest.raises(ValueError):
        Deployment(deployment_id="d3", model_id="org/x", replicas=10_000)


def test_replicas_lowered_drops_the_extra_instance():
    seq = cluster(AB)
    create(seq, replicas=2)
    rec = Reconciler(seq)
    rec()
    seq.index(ev.DeploymentUpdated(deployment=seq.state.deployments["d1"].model_copy(update={"replicas": 1})), T0)
    rec()
    assert len(dep.instances_of(seq.state, "d1")) == 1


def test_a_refused_shard_of_a_deployment_is_replaced_for_the_same_deployment():
    seq = cluster(AB)
    create(seq)
    inst = dep.instances_of(seq.state, "d1")[0]
    node = inst.node_ids()[0]
    rid = next(iter(inst.shard_assignments.runner_to_shard))
    seq.index(ev.RunnerStatusUpdated(runner_id=rid, runner_status=RunnerLoading()), T0)
    refusal = cmd.RefuseInstancePlacement(instance_id=inst.instance_id, node_id=node, reason="tight")
    events = decide(seq.state, refusal, ctx(AB, sender=node))
    assert all(e.instance.deployment_id == "d1" for e in events if isinstance(e, ev.InstanceCreated))


def test_deleting_the_last_instance_by_hand_deletes_the_deployment_but_a_workers_deletion_does_not():
    seq = cluster(AB)
    create(seq)
    inst = dep.instances_of(seq.state, "d1")[0].instance_id
    crashed = decide(seq.state, cmd.DeleteInstance(instance_id=inst, reason="runner crashed 3 times"), ctx())
    assert [type(e) for e in crashed] == [ev.InstanceDeleted]  # the reconciler places again and counts crashes
    by_hand = index(seq, decide(seq.state, cmd.DeleteInstance(instance_id=inst), ctx()))
    assert [type(e) for e in by_hand] == [ev.InstanceDeleted, ev.DeploymentDeleted] and not seq.state.deployments


def test_policy_comes_from_the_cluster_config_then_the_masters_own_settings():
    local = {"runner": {"max_restarts": 7, "restart_window_seconds": 60}, "deployments": {"expiry_warning_seconds": 9}}
    assert dep.policy_of(cluster(AB).state, local) == dep.Policy(7, 60, 9)
    state = cluster(AB).state.model_copy(update={"cluster_config": {"runner": {"max_restarts": 1}}})
    assert dep.policy_of(state, local) == dep.Policy(1, 300, 9)
    broken = state.model_copy(update={"cluster_config": {"runner": {"max_restarts": "lots"}}})
    assert dep.policy_of(broken) == dep.Policy()  # a bad config never stops the reconciler


OPS = st.lists(st.tuples(st.sampled_from(["reconcile", "ready", "lose", "crash", "drain", "replicas"]),
                         st.integers(min_value=0, max_value=3)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_whatever_happens_instances_serve_known_deployments_and_never_exceed_replicas(ops):
    seq = cluster(("a", "b", "c"))
    create(seq, nodes=("a", "b", "c"), replicas=2)
    rec, live, now = Reconciler(seq), ["a", "b", "c"], 0
    for op, arg in ops:
        now += 1
        d = seq.state.deployments.get("d1")
        if op == "reconcile":
            rec(now, nodes=tuple(live) or ("a",))
        elif op == "ready":
            ready(seq)
        elif op == "lose" and len(live) > 1:
            seq.index(ev.NodeTimedOut(node_id=live.pop(arg % len(live))), T0)
        elif op == "crash":
            rec(now, nodes=tuple(live), crashes=[dep.Crash("d1", at(now), "boom")])
        elif op == "drain" and live:
            seq.index(ev.NodeCordoned(node_id=live[arg % len(live)], draining=True), T0)
        elif op == "replicas" and d is not None:
            seq.index(ev.DeploymentUpdated(deployment=d.model_copy(update={"replicas": arg + 1})), T0)
        d = seq.state.deployments.get("d1")
        mine = dep.instances_of(seq.state, "d1")
        assert all(i.deployment_id in seq.state.deployments for i in seq.state.instances.values())
        if d is None or d.status == S.failed:
            assert not mine
            continue
        staying = [i for i in mine if not dep.leaving_nodes(seq.state) & set(i.node_ids())]
        if op in ("reconcile", "crash"):
            assert len(staying) <= d.replicas
            assert len(seq.state.deployments["d1"].restarts) <= 64
