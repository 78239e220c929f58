"""Notification derivation: each kind from its event, planned changes raise no failure, no duplicates."""

from datetime import datetime, timezone

from tests.factories import ring_instance
from skulk.master.notifications import KINDS, notifications_for, notifications_for_batch
from skulk.state.apply import apply
from skulk.types import events as ev
from skulk.types.deployments import Deployment, DeploymentStatus as DS
from skulk.types.node import NodeHeartbeatInfo
from skulk.types.state import State

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Log:
    """Applies events one by one and collects what each raised (a tiny transcript driver)."""

    def __init__(self, state: State | None = None):
        self.state = state or State()
        self.lost: frozenset[str] = frozenset()
        self.raised: list = []

    def __call__(self, *events) -> list[str]:
        kinds = []
        for e in events:
            ie = ev.IndexedEvent(idx=self.state.last_event_applied_idx + 1, event=e)
            after = apply(self.state, ie)
            notes, self.lost = notifications_for(self.state, ie, after, now=NOW, lost=self.lost)
            self.raised.extend(notes)
            kinds.extend(n.event for n in notes)
            self.state = after
        return kinds


def dep(status: DS = DS.pending, **kw) -> Deployment:
    return Deployment(deployment_id="d1", model_id="org/tiny", status=status, **kw)


def status(s: DS, reason: str | None = None) -> ev.DeploymentStatusChanged:
    return ev.DeploymentStatusChanged(deployment_id="d1", status=s, reason=reason)


def seen(node: str) -> ev.NodeGatheredInfo:
    return ev.NodeGatheredInfo(node_id=node, when=NOW, info=NodeHeartbeatInfo())


def test_ready_once_per_transition_with_model_and_deployment() -> None:
    log = Log()
    assert log(ev.DeploymentCreated(deployment=dep()), status(DS.starting)) == []
    assert log(status(DS.ready)) == ["deployment.ready"]
    assert log(status(DS.ready), status(DS.ready)) == []  # no duplicate for a repeated status
    note = log.raised[0]
    assert (note.deployment_id, note.model_id, note.node_id) == ("d1", "org/tiny", None)
    assert note.body()["event"] == "deployment.ready" and note.body()["at"] == NOW.isoformat()
    assert log(status(DS.degraded), status(DS.ready)) == ["deployment.ready"]


def test_failed_carries_its_cause() -> None:
    log = Log()
    log(ev.DeploymentCreated(deployment=dep(DS.starting)))
    assert log(status(DS.failed, "runner crashed 3 times in 300 s")) == ["deployment.failed"]
    assert "runner crashed 3 times" in log.raised[-1].message


def test_paused_and_woken() -> None:
    log = Log()
    log(ev.DeploymentCreated(deployment=dep(DS.ready)))
    assert log(status(DS.paused, "idle for 600 s")) == ["deployment.paused"]
    assert log(status(DS.starting)) == ["deployment.woken"]
    assert log(status(DS.ready)) == ["deployment.ready"]
    log(status(DS.paused))
    # straight from paused to ready: woken and ready, each once
    assert log(ev.DeploymentUpdated(deployment=dep(DS.ready))) == ["deployment.woken", "deployment.ready"]


def test_leases() -> None:
    log = Log()
    log(ev.DeploymentCreated(deployment=dep(DS.ready, lease_seconds=20)))
    assert log(ev.LeaseExpiring(deployment_id="d1", expires_at=NOW)) == ["lease.expiring"]
    assert log.raised[-1].model_id == "org/tiny"
    assert log(ev.LeaseExpired(deployment_id="d1")) == ["lease.expired"]


def test_planned_changes_raise_no_failure() -> None:
    log = Log()
    log(ev.DeploymentCreated(deployment=dep(DS.ready, lease_seconds=20)))
    # lease expiry stops it: stopping, then a failure while stopping, then deletion: only lease.expired
    assert log(ev.LeaseExpired(deployment_id="d1"), status(DS.failed, "runner stopped"),
               ev.DeploymentDeleted(deployment_id="d1", reason="lease expired")) == ["lease.expired"]
    log(ev.DeploymentCreated(deployment=dep(DS.ready)))
    assert log(status(DS.stopping), status(DS.failed), ev.DeploymentDeleted(deployment_id="d1")) == []
    # a drained (or cordoned) node that goes away is not "lost"
    log(seen("n2"), ev.NodeCordoned(node_id="n2", draining=True))
    assert log(ev.NodeTimedOut(node_id="n2")) == []
    assert log(seen("n2")) == []  # and so its return is no recovery either


def test_node_lost_then_recovered_once() -> None:
    log = Log()
    assert log(seen("n1"), seen("n2")) == []  # a first join is no recovery
    log(ev.InstanceCreated(instance=ring_instance("i1", ["n2"])))
    assert log(ev.NodeTimedOut(node_id="n2")) == ["node.lost"]
    assert log.raised[-1].node_id == "n2" and "org/tiny" in log.raised[-1].message
    assert log(ev.NodeTimedOut(node_id="n2")) == []  # already gone
    assert log(seen("n2")) == ["node.recovered"]
    assert log(seen("n2")) == []


def test_a_new_session_seed_replays_nothing() -> None:
    log = Log()
    seeded = State(deployments={"d1": dep(DS.ready)})
    assert log(ev.StateSnapshotHydrated(state=seeded)) == []


def test_batch_matches_event_by_event() -> None:
    events = [ev.DeploymentCreated(deployment=dep()), seen("n1"), status(DS.starting), status(DS.ready),
              ev.NodeTimedOut(node_id="n1"), ev.TestEvent(), seen("n1"), status(DS.paused), status(DS.ready),
              status(DS.failed, "oom")]
    one_by_one = Log()
    one_by_one(*events)
    indexed = [ev.IndexedEvent(idx=i, event=e) for i, e in enumerate(events)]
    notes, lost = notifications_for_batch(State(), indexed, now=NOW, lost=frozenset(), apply=apply)
    assert [n.event for n in notes] == [n.event for n in one_by_one.raised]
    assert {n.event for n in notes} <= set(KINDS) and lost == frozenset()
    # a recovery in a batch of heartbeats alone (no replay needed) is still seen
    notes, lost = notifications_for_batch(State(), [ev.IndexedEvent(idx=0, event=seen("n9"))], now=NOW,
                                          lost=frozenset({"n9"}), apply=apply)
    assert [n.event for n in notes] == ["node.recovered"] and lost == frozenset()
