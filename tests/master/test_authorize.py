"""Sender authorization on the master: a peer may only state facts about itself."""

from datetime import datetime, timezone

import pytest

from skulk.master.authorize import authorize_event, origin_problem
from skulk.master.sequencer import MAX_AHEAD, ORIGINS_PER_PEER, Sequencer
from skulk.types import events as ev
from skulk.types.downloads import DownloadOngoing
from skulk.types.node import NodeNetworkInterfaces
from skulk.types.runners import RunnerLoaded
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.types.topology import Connection, SocketConnection
from tests.factories import ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARAMS = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "x"}])
INFO = NodeNetworkInterfaces(ifaces=[])


def cluster() -> Sequencer:
    """Nodes a and b run instance i1 (runners i1-r0 on a, i1-r1 on b) with task t; c is idle."""
    seq = Sequencer()
    for n in ("a", "b", "c"):
        seq.index(ev.NodeGatheredInfo(node_id=n, when=T0, info=INFO), T0)
    seq.index(ev.InstanceCreated(instance=ring_instance("i1", ["a", "b"])), T0)
    task = TextGeneration(task_id="t", instance_id="i1", command_id="cmd", owner_node="c", task_params=PARAMS)
    seq.index(ev.TaskCreated(task_id="t", task=task), T0)
    return seq


def edge(source: str, sink: str) -> Connection:
    return Connection(source=source, sink=sink, edge=SocketConnection(sink_multiaddr="/ip4/127.0.0.1/tcp/1"))


MASTER_DECISIONS = [
    ev.StateSnapshotHydrated(state=State()),
    ev.ClusterConfigChanged(config={"tracing": {"enabled": True}}),
    ev.InstanceCreated(instance=ring_instance("i2", ["a"])),
    ev.InstanceDeleted(instance_id="i1"),
    ev.NodeTimedOut(node_id="b"),
    ev.TracingStateChanged(enabled=True),
    ev.TracesMerged(task_id="t", traces=[]),
    ev.TaskCreated(task_id="t2", task=TextGeneration(task_id="t2", instance_id="i1", command_id="c2",
                                                    task_params=PARAMS)),
    ev.TaskDeleted(task_id="t"),
    ev.CustomModelCardDeleted(model_id="org/tiny"),
    ev.ChunkGenerated(command_id="cmd"),
    ev.StagingPurgeRequested(requested_at=T0),
]


@pytest.mark.parametrize("event", MASTER_DECISIONS, ids=lambda e: type(e).__name__)
def test_master_decisions_are_refused_from_any_peer_even_the_masters_own_node(event):
    state = cluster().state
    for peer in ("a", "c"):
        assert authorize_event(state, peer, event) is not None


def test_a_worker_may_state_facts_about_itself():
    state = cluster().state
    own = [
        ("a", ev.NodeGatheredInfo(node_id="a", when=T0, info=INFO)),
        ("b", ev.RunnerStatusUpdated(runner_id="i1-r1", runner_status=RunnerLoaded())),
        ("a", ev.TaskStatusUpdated(task_id="t", task_status=TaskStatus.Running)),
        ("b", ev.TaskFailed(task_id="t", error_type="x", error_message="y")),
        ("c", ev.TopologyEdgeCreated(conn=edge("c", "a"))),
        ("c", ev.TopologyEdgeDeleted(conn=edge("c", "a"))),
        ("c", ev.NodeDownloadProgress(download_progress=DownloadOngoing(node_id="c", model_id="org/tiny"))),
        ("b", ev.TracesCollected(task_id="t", rank=1, node_id="b", traces=[])),
        ("c", ev.TestEvent(note="debug")),
    ]
    for peer, event in own:
        assert authorize_event(state, peer, event) is None, type(event).__name__


def test_facts_about_someone_else_are_refused():
    state = cluster().state
    foreign = [
        ev.NodeGatheredInfo(node_id="a", when=T0, info=INFO),
        ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerLoaded()),
        ev.TaskStatusUpdated(task_id="t", task_status=TaskStatus.Complete),  # c runs no shard of i1
        ev.TaskFailed(task_id="t", error_type="x", error_message="y"),
        ev.TopologyEdgeCreated(conn=edge("a", "b")),
        ev.TopologyEdgeDeleted(conn=edge("a", "b")),
        ev.NodeDownloadProgress(download_progress=DownloadOngoing(node_id="a", model_id="org/tiny")),
        ev.TracesCollected(task_id="t", rank=0, node_id="a", traces=[]),
    ]
    for event in foreign:
        assert authorize_event(state, "c", event) is not None, type(event).__name__
    phantom = ev.TopologyEdgeCreated(conn=edge("c", "nobody"))  # would add a node no one is
    assert authorize_event(state, "c", phantom) is not None


def test_an_event_that_cannot_apply_is_dropped_alone(monkeypatch):
    from skulk.master import sequencer as sequencer_mod

    real = sequencer_mod.apply

    def fragile(state, indexed):
        if getattr(indexed.event, "note", "") == "boom":
            raise ValueError("cannot apply")
        return real(state, indexed)

    monkeypatch.setattr(sequencer_mod, "apply", fragile)
    seq = cluster()
    idx = seq.next_idx
    out = seq.accept("c/s", 0, [ev.TestEvent(note="boom"), ev.TestEvent(note="fine")], T0, peer="c")
    assert [ie.event.note for ie in out] == ["fine"] and out[0].idx == idx and seq.tail[-1] == out[0]
    assert [r.kind for r in seq.take_refusals()] == ["master.event_failed"]


def test_origins_belong_to_the_peer_whose_id_starts_them():
    assert origin_problem("a", "a") is None and origin_problem("a", "a/uuid") is None
    assert origin_problem("a", "b/uuid") and origin_problem("a", "ab/uuid") and origin_problem("a", "")


def test_a_forged_origin_is_refused_whole_and_counted():
    seq = cluster()
    before = seq.state
    assert seq.accept("a/session", 0, [ev.TestEvent(note="x")], T0, peer="c") == []
    assert seq.state == before and "a/session" not in seq.buffer.origins
    assert [r.kind for r in seq.take_refusals()] == ["master.origin_forged"]


def test_a_refused_event_is_consumed_and_does_not_stall_later_events_of_its_origin():
    seq = cluster()
    sent = [ev.ClusterConfigChanged(config={"evil": 1}), ev.InstanceDeleted(instance_id="i1"),
            ev.NodeGatheredInfo(node_id="c", when=T0, info=INFO)]
    out = seq.accept("c/s", 0, sent, T0, peer="c")
    assert [type(ie.event) for ie in out] == [ev.NodeGatheredInfo]
    assert seq.state.cluster_config is None and "i1" in seq.state.instances
    assert [r.kind for r in seq.take_refusals()] == ["master.event_refused"] * 2
    later = seq.accept("c/s", 3, [ev.TestEvent(note="next")], T0, peer="c")
    assert [ie.event.note for ie in later] == ["next"]  # origin index 3 follows the refused ones


def test_the_masters_own_worker_events_pass_like_anyone_elses():
    seq = cluster()
    own = seq.accept("a/s", 0, [ev.RunnerStatusUpdated(runner_id="i1-r0", runner_status=RunnerLoaded())], T0, peer="a")
    assert len(own) == 1 and isinstance(seq.state.runners["i1-r0"], RunnerLoaded)


def test_one_peer_holds_a_bounded_number_of_origins_and_gap():
    seq = cluster()
    for i in range(ORIGINS_PER_PEER + 3):
        seq.accept(f"c/{i}", 1, [ev.TestEvent()], T0, peer="c")  # index 0 missing: held
    assert len([o for o in seq.buffer.origins if o.startswith("c/")]) == ORIGINS_PER_PEER
    assert seq.accept("c/far", MAX_AHEAD + 1, [ev.TestEvent()], T0, peer="c") == []
    assert seq.take_refusals()[-1].kind == "master.origin_flood"
