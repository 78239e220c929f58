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


def test_outbox_retries_until_acknowledged_then_gives_up():
    box = Outbox(origin="o", retry_after=2.0, give_up_after=10.0)
    events = [ev.TestEvent(note=str(i)) for i in range(3)]
    for e in events:
        box.add(e)
    assert box.due(0.0) == [(0, events)]
    assert box.due(1.0) == []
    box.acknowledge([ie(0, events[1])])
    assert box.due(2.5) == [(0, [events[0]]), (2, [events[2]])]
    assert box.due(11.0) == [] and box.given_up == 2 and box.pending == {}
