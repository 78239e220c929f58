from skulk.routing.buffer import IndexedBuffer, MultiSourceBuffer
from skulk.routing.outbox import Outbox
from skulk.types import events as ev
from skulk.types.state import State


def test_origin_buffer_orders_and_drops_duplicates():
    buf = MultiSourceBuffer()
    assert buf.ingest("a", 1, ["a1", "a2"]) == []  # gap at 0 holds them
    assert buf.ingest("b", 0, ["b0"]) == ["b0"]
    assert buf.ingest("a", 0, ["a0", "a1"]) == ["a0", "a1", "a2"]
    assert buf.ingest("a", 0, ["a0"]) == [] and buf.duplicates == 2


def ie(idx, event=None):
    return ev.IndexedEvent(idx=idx, event=event or ev.TestEvent())


def test_indexed_buffer_releases_contiguously_and_reports_gaps():
    buf = IndexedBuffer()
    assert buf.ingest([ie(1), ie(2)]) == [] and buf.has_gap
    released = buf.ingest([ie(0), ie(1)])
    assert [e.idx for e in released] == [0, 1, 2] and not buf.has_gap
    assert buf.ingest([ie(2)]) == []


def test_indexed_buffer_snapshot_jumps_ahead():
    buf = IndexedBuffer()
    buf.ingest([ie(12)])
    snap = ie(10, ev.StateSnapshotHydrated(state=State(last_event_applied_idx=10)))
    released = buf.ingest([snap, ie(11)])
    assert [e.idx for e in released] == [10, 11, 12] and buf.next_idx == 13


def test_outbox_retries_until_acknowledged_and_never_gives_up():
    box = Outbox(origin="o", retry_after=2.0, max_retry_after=5.0)
    events = [ev.TestEvent(note=str(i)) for i in range(3)]
    for e in events:
        box.add(e)
    assert box.due(0.0) == [(0, events)]
    assert box.due(1.0) == []
    box.acknowledge([ie(0, events[0])])
    assert box.due(2.5) == [(1, events[1:])]
    assert box.due(1000.0) == [(1, events[1:])]  # still there, long after
    assert len(box.pending) == 2


def test_indexed_buffer_rewind_asks_again_from_the_event_that_failed():
    buf = IndexedBuffer()
    assert [e.idx for e in buf.ingest([ie(0), ie(1), ie(2), ie(4)])] == [0, 1, 2]
    buf.rewind(1)
    assert buf.next_idx == 1 and not buf.has_gap
    assert [e.idx for e in buf.ingest([ie(1), ie(2)])] == [1, 2]
