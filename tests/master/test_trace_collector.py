"""The master's trace collection: every rank's TracesCollected in, one indexed TracesMerged out."""

from datetime import datetime, timezone

from skulk.master.sequencer import Sequencer
from skulk.master.traces import TraceCollector
from skulk.routing.outbox import Outbox
from skulk.types import events as ev
from skulk.types.tasks import ChatMessage, TextGeneration, TextGenerationTaskParams
from tests.factories import ring_instance

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARAMS = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="hi")])


def task(task_id: str, traced: bool = True) -> TextGeneration:
    return TextGeneration(task_id=task_id, instance_id="i1", command_id=f"c-{task_id}", owner_node="api",
                          trace_enabled=traced, task_params=PARAMS)


def report(task_id: str, rank: int, name: str = "decode") -> ev.TracesCollected:
    span = ev.TraceEventData(name=name, start_us=10 * rank, duration_us=5, rank=rank, category=name,
                             node_id=f"n{rank}")
    return ev.TracesCollected(task_id=task_id, rank=rank, node_id=f"n{rank}", traces=[span])


def sequencer_with(*tasks: TextGeneration) -> Sequencer:
    seq = Sequencer()
    seq.index(ev.InstanceCreated(instance=ring_instance("i1", ["n0", "n1"])), T0)
    for t in tasks:
        seq.index(ev.TaskCreated(task_id=t.task_id, task=t), T0)
    return seq


def test_reports_are_consumed_and_one_merge_is_indexed_once_every_rank_reported():
    seq = sequencer_with(task("t1"))
    before = seq.next_idx
    r1, r0 = report("t1", 1), report("t1", 0)
    assert seq.accept("n1/x", 0, [r1], T0) == []  # waiting for rank 0; nothing indexed
    (merged,) = seq.accept("n0/x", 0, [r0], T0)
    assert merged.idx == before and isinstance(merged.event, ev.TracesMerged)
    assert [t.rank for t in merged.event.traces] == [0, 1] and merged.event.owner_node == "api"
    assert merged.event.consumed_event_ids == [r0.event_id, r1.event_id]
    assert seq.accept("n0/x", 0, [r0], T0) == [] and not seq.traces.pending  # a retry is a duplicate


def test_ranks_reporting_after_the_task_was_deleted_still_merge():
    seq = sequencer_with(task("t1"))
    seq.accept("n0/x", 0, [report("t1", 0)], T0)
    seq.index(ev.TaskDeleted(task_id="t1"), T0)
    (merged,) = seq.accept("n1/x", 0, [report("t1", 1)], T0)
    assert {t.node_id for t in merged.event.traces} == {"n0", "n1"}


def test_untraced_unknown_and_foreign_rank_reports_are_dropped_unindexed():
    seq = sequencer_with(task("plain", traced=False), task("t1"))
    out = seq.accept("n0/x", 0, [report("plain", 0), report("ghost", 0)], T0)
    out += seq.accept("n7/x", 0, [report("t1", 7)], T0)  # its own spans, for a rank it does not run
    assert out == [] and seq.traces.unmatched == 3 and list(seq.traces.pending) == ["t1"]


def test_pending_tasks_are_bounded_oldest_first():
    seq = sequencer_with(task("t1"))
    collector = TraceCollector(limit=2)
    for tid in ("a", "b", "c"):
        state = seq.state.model_copy(update={"tasks": {**seq.state.tasks, tid: task(tid)}})
        collector.expect(state, tid)
    assert list(collector.pending) == ["b", "c"] and collector.evicted == 1
    assert collector.collect(seq.state, report("a", 0)) is None and collector.unmatched == 1


def test_a_merge_acknowledges_the_reports_it_consumed_in_the_senders_outbox():
    box = Outbox(origin="n0/x")
    r0 = report("t1", 0)
    box.add(r0)
    assert box.due(0.0) == [(0, [r0])]
    merged = ev.TracesMerged(task_id="t1", traces=r0.traces, consumed_event_ids=[r0.event_id])
    box.acknowledge([ev.IndexedEvent(idx=5, event=merged)])
    assert box.pending == {} and box.due(100.0) == []
