"""The outbox against the master's per-origin buffer: no event is given up while later ones
wait behind it, so a long break to the master never leaves a gap in an origin's sequence."""

from hypothesis import given, settings, strategies as st

from skulk.routing.buffer import MultiSourceBuffer
from skulk.routing.outbox import Outbox
from skulk.types import events as ev
from skulk.types.downloads import DownloadPending


class Master:
    """The master's ordering step, reduced to what the outbox must satisfy."""

    def __init__(self):
        self.buffer = MultiSourceBuffer()
        self.indexed: list[ev.IndexedEvent] = []

    def receive(self, origin, first_idx, events) -> list[ev.IndexedEvent]:
        released = self.buffer.ingest(origin, first_idx, events)
        new = [ev.IndexedEvent(idx=len(self.indexed) + i, event=e) for i, e in enumerate(released)]
        self.indexed += new
        return new

    def notes(self) -> list[str]:
        return [ie.event.note for ie in self.indexed if isinstance(ie.event, ev.TestEvent)]


def deliver(box: Outbox, master: Master, now: float) -> None:
    for first_idx, events in box.due(now):
        box.acknowledge(master.receive(box.origin, first_idx, events))


def test_forty_seconds_without_acknowledgement_then_every_event_is_indexed_in_order():
    box, master = Outbox(origin="n1/s"), Master()
    sent_at: list[float] = []
    t = 0.0
    while t < 40.0:  # the master is gone: every send is lost
        box.add(ev.TestEvent(note=str(len(sent_at))))
        sent_at.append(t)
        box.due(t)  # sent and lost
        t += 0.5
    assert len(box.pending) == len(sent_at)  # nothing was given up
    waits = []
    last = None
    for step in range(200):  # retries back off, but never beyond 5 s
        now = 40.0 + step * 0.1
        if box.due(now):
            if last is not None:
                waits.append(now - last)
            last = now
    assert waits and max(waits) <= 5.0 + 1e-9
    deliver(box, master, 1000.0)  # the master is back
    assert master.notes() == [str(i) for i in range(len(sent_at))]
    assert box.pending == {} and all(not b.held for b in master.buffer.origins.values())


def test_retries_back_off_up_to_the_cap():
    box = Outbox(origin="n1/s", retry_after=2.0, max_retry_after=5.0)
    box.add(ev.TestEvent())
    times = [t / 10 for t in range(0, 400) if box.due(t / 10)]
    gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
    assert gaps[:3] == [2.0, 4.0, 5.0] and set(gaps[3:]) == {5.0}


def test_batches_are_bounded_in_count_and_bytes():
    box = Outbox(origin="n1/s", batch_events=3, batch_bytes=250)
    for i in range(7):
        box.add(ev.TestEvent(note=str(i)), size=100)
    batches = box.due(0.0)
    assert [(first, len(events)) for first, events in batches] == [(0, 2), (2, 2), (4, 2), (6, 1)]
    box = Outbox(origin="n1/s", batch_events=3)
    for i in range(7):
        box.add(ev.TestEvent(note=str(i)))
    assert [len(events) for _, events in box.due(0.0)] == [3, 3, 1]


def info(node="n1"):
    return ev.NodeDownloadProgress(download_progress=DownloadPending(node_id=node, model_id="org/m"))


def test_over_its_bound_it_drops_oldest_telemetry_first_and_resyncs_without_a_gap():
    box, master = Outbox(origin="n1/s", max_events=5), Master()
    box.add(ev.TestEvent(note="0"))
    box.due(0.0)  # sent, lost
    box.add(info())
    for i in range(1, 5):
        box.add(ev.TestEvent(note=str(i)))
    assert box.dropped == 1 and box.resyncs == 1  # the telemetry went, not a TestEvent
    assert box.origin.startswith("n1/s") and box.origin != "n1/s"
    assert sorted(p.origin_idx for p in box.pending.values()) == [0, 1, 2, 3, 4]
    deliver(box, master, 10.0)
    assert master.notes() == ["0", "1", "2", "3", "4"] and box.pending == {}


def test_over_its_byte_bound_it_drops_the_oldest_of_any_kind_when_nothing_is_droppable():
    box, master = Outbox(origin="n1/s", max_bytes=300), Master()
    for i in range(5):
        box.add(ev.TestEvent(note=str(i)), size=100)
    assert box.dropped == 2 and box.pending_bytes == 300
    deliver(box, master, 0.0)
    assert master.notes() == ["2", "3", "4"]


ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.booleans()),  # (add, telemetry?)
    st.tuples(st.just("send"), st.floats(0, 1)),  # (send, share of batches delivered)
    st.tuples(st.just("ack_lost"), st.just(0)),
), max_size=60)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_whatever_is_lost_every_kept_event_is_indexed_once_in_order(script):
    box, master = Outbox(origin="n1/s", max_events=8), Master()
    added, now = [], 0.0
    for op, arg in script:
        now += 1.0
        if op == "add":
            event = info() if arg else ev.TestEvent(note=str(len(added)))
            added.append(event)
            box.add(event)
        elif op == "send":
            batches = box.due(now)
            for first_idx, events in batches[: int(len(batches) * arg)]:
                box.acknowledge(master.receive(box.origin, first_idx, events))
        else:
            for first_idx, events in box.due(now):
                master.receive(box.origin, first_idx, events)  # indexed, but the ack is lost
    for _ in range(3):  # the link heals: acknowledgements arrive (the catch-up in the router)
        now += 10.0
        deliver(box, master, now)
        box.acknowledge(master.indexed)
    assert box.pending == {}
    ids = [ie.event.event_id for ie in master.indexed]
    kept = [e.event_id for e in added if e.event_id in set(ids)]
    assert ids == kept or box.resyncs  # in order, exactly once, unless a resync resent some
    order = {e.event_id: i for i, e in enumerate(added)}
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == sorted(first_seen, key=order.get)
    if box.dropped == 0:
        assert set(ids) == {e.event_id for e in added}


def test_a_new_session_carries_what_was_never_indexed_renumbered_from_zero():
    box = Outbox(origin="n1/old")
    events = [ev.TestEvent(note=str(i)) for i in range(4)]
    for e in events:
        box.add(e, size=10)
    box.due(0.0)
    box.acknowledge([ev.IndexedEvent(idx=0, event=events[0])])
    new, master = box.carried("n1/new"), Master()
    assert new.origin == "n1/new" and new.pending_bytes == 30 and new.next_origin_idx == 3
    deliver(new, master, 0.0)  # never sent under the new origin: due at once
    assert master.notes() == ["1", "2", "3"] and new.pending == {}


def test_an_event_the_master_released_without_indexing_is_not_retried_once_a_later_one_is_indexed():
    box = Outbox(origin="n1/s")
    events = [ev.TestEvent(note=str(i)) for i in range(4)]
    for e in events:
        box.add(e)
    box.due(0.0)
    # The master refused event 1 (or merged it, or it was stale): it is released but never indexed.
    box.acknowledge([ev.IndexedEvent(idx=7, event=events[0]), ev.IndexedEvent(idx=8, event=events[2])])
    assert [p.event.note for p in box.pending.values()] == ["3"] and box.released_unindexed == 1
    assert [len(b) for _, b in box.due(100.0)] == [1]


def test_it_sends_no_further_ahead_of_the_oldest_pending_than_the_window():
    box = Outbox(origin="n1/s", send_window=5, batch_events=2)
    for i in range(12):
        box.add(ev.TestEvent(note=str(i)))
    assert [(first, len(b)) for first, b in box.due(0.0)] == [(0, 2), (2, 2), (4, 1)]
    box.acknowledge([ev.IndexedEvent(idx=0, event=box.pending[next(iter(box.pending))].event)])
    assert [(first, len(b)) for first, b in box.due(0.1)] == [(5, 1)]  # the window moved on by one


def test_what_it_keeps_for_an_abandoned_session_is_bounded_in_count_and_bytes():
    box = Outbox(origin="n1/s", max_confirmed=3, max_confirmed_bytes=250)
    events = [ev.TestEvent(note=str(i)) for i in range(5)]
    for e in events:
        box.add(e, size=100)
    box.acknowledge([ev.IndexedEvent(idx=i, event=e) for i, e in enumerate(events)])
    assert [p.event.note for p in box.confirmed] == ["3", "4"] and box.confirmed_bytes == 200
    assert [p.event.note for p in box.carried("n1/t", resend_confirmed=True).pending.values()] == ["3", "4"]
