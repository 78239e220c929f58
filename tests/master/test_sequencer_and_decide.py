from datetime import datetime, timedelta, timezone

import pytest

from skulk.errors import NotFound
from skulk.master.decide import ReconcileParams, decide_command, reconcile
from skulk.master.sequencer import Sequencer
from skulk.state.apply import apply
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.node import NodeNetworkInterfaces
from skulk.types.state import State
from skulk.types.tasks import TaskStatus, TextGeneration, TextGenerationTaskParams
from tests.factories import ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_sequencer_indexes_each_origin_in_order_exactly_once():
    seq = Sequencer()
    a = [ev.TestEvent(note=f"a{i}") for i in range(5)]
    b = [ev.TestEvent(note=f"b{i}") for i in range(3)]
    out = seq.accept("A", 2, a[2:], T0) + seq.accept("B", 0, b, T0)
    out += seq.accept("A", 0, a, T0) + seq.accept("B", 0, b, T0)  # retries
    notes = [ie.event.note for ie in out]
    assert [ie.idx for ie in out] == list(range(8))
    assert [n for n in notes if n.startswith("a")] == [f"a{i}" for i in range(5)]
    assert seq.state.last_event_applied_idx == 7


def test_sequencer_stamps_master_time_and_drops_unknown_task_updates():
    seq = Sequencer()
    info = ev.NodeGatheredInfo(node_id="n", when=T0 - timedelta(days=3), info=NodeNetworkInterfaces(ifaces=[]))
    ghost = ev.TaskStatusUpdated(task_id="ghost", task_status=TaskStatus.Complete)
    out = seq.accept("n/1", 0, [info, ghost], T0)
    assert len(out) == 1 and out[0].event.when == T0 and seq.dropped == 1


def test_catch_up_gives_range_or_snapshot():
    seq = Sequencer(tail_limit=3)
    for i in range(6):
        seq.index(ev.TestEvent(note=str(i)), T0)
    assert [ie.idx for ie in seq.catch_up(4)] == [4, 5]
    snap = seq.catch_up(0)
    assert len(snap) == 1 and isinstance(snap[0].event, ev.StateSnapshotHydrated) and snap[0].idx == 5
    follower = apply(State(), snap[0])
    assert follower == seq.state
    assert seq.catch_up(6) == []


def test_delete_instance_cancels_open_tasks_first():
    s = Sequencer()
    params = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "x"}])
    s.index(ev.InstanceCreated(instance=ring_instance("i1", ["a"])), T0)
    s.index(ev.TaskCreated(task_id="t", task=TextGeneration(task_id="t", instance_id="i1", command_id="c", task_params=params)), T0)
    events = decide_command(s.state, cmd.DeleteInstance(instance_id="i1"))
    assert [type(e).__name__ for e in events] == ["TaskStatusUpdated", "InstanceDeleted"]
    assert events[0].task_status == TaskStatus.Cancelled
    with pytest.raises(NotFound):
        decide_command(s.state, cmd.DeleteInstance(instance_id="nope"))


def test_reconcile_respects_settle_grace_and_fails_tasks_before_deleting():
    seq = Sequencer()
    params = TextGenerationTaskParams(model="org/tiny", input=[{"role": "user", "content": "x"}])
    info = NodeNetworkInterfaces(ifaces=[])
    for n in ("a", "b"):
        seq.index(ev.NodeGatheredInfo(node_id=n, when=T0, info=info), T0)
    seq.index(ev.InstanceCreated(instance=ring_instance("i1", ["a", "b"])), T0)
    seq.index(ev.TaskCreated(task_id="t", task=TextGeneration(task_id="t", instance_id="i1", command_id="c", task_params=params)), T0)
    seq.index(ev.NodeGatheredInfo(node_id="b", when=T0, info=info), T0 + timedelta(seconds=40))
    p = ReconcileParams(node_timeout=timedelta(seconds=30), settle_grace=timedelta(seconds=60))
    assert reconcile(seq.state, T0 + timedelta(seconds=45), T0, p) == []  # still settling
    out = reconcile(seq.state, T0 + timedelta(seconds=61), T0, p)
    assert [type(e).__name__ for e in out] == ["TaskFailed", "InstanceDeleted", "NodeTimedOut"]
    assert out[2].node_id == "a"
