"""The router's per-batch boundary: an indexed event that fails to apply is counted, the batch is
dropped from there, and the next catch-up asks the master for it again; the node goes on."""

import trio

from skulk.faults import FAULTS
from skulk.routing import service
from skulk.routing.service import EventRouter
from skulk.types.events import IndexedEvent, TestEvent
from skulk.types.ids import SessionId
from skulk.types.wire import CatchUpRequest, IndexedEvents, LocalEvents

S1 = SessionId(master_node_id="m1", election_clock=1)


def batch(start, stop):
    return IndexedEvents(session=S1, events=[
        IndexedEvent(idx=i, event=TestEvent(event_id=f"e{i}", note=f"e{i}")) for i in range(start, stop)])


def test_an_event_that_does_not_apply_is_asked_for_again(monkeypatch):
    sent = []

    async def send(peer, msg):
        sent.append(msg)

    router = EventRouter("me", send)
    router.set_session(S1)
    real_apply, poisoned = service.apply, {"e2"}

    def apply(state, ie):  # stands in for a bug in apply() on one event
        if ie.event.event_id in poisoned:
            raise RuntimeError("apply bug")
        return real_apply(state, ie)
    monkeypatch.setattr(service, "apply", apply)
    before = FAULTS.counts["routing.apply_failed"]
    router.on_indexed(batch(0, 5))
    assert router.state.last_event_applied_idx == 1 and router.counters["apply_failures"] == 1
    assert FAULTS.counts["routing.apply_failed"] == before + 1
    trio.run(router._flush)
    assert isinstance(sent[-1], CatchUpRequest) and sent[-1].next_idx == 2
    poisoned.clear()
    router.on_indexed(batch(2, 5))  # the master's answer to the catch-up
    assert router.state.last_event_applied_idx == 4
    assert [ie.event.note for ie in router.history] == ["e0", "e1", "e2", "e3", "e4"]


def test_sends_stop_at_the_first_failure_and_resume_later():
    calls = []

    async def send(peer, msg):
        calls.append(msg)
        raise OSError("master unreachable")

    router = EventRouter("me", send)
    router.set_session(S1)
    router._outbox.batch_events = 2
    for i in range(5):
        router.send_event(TestEvent(note=str(i)))
    trio.run(router._flush)
    local = [m for m in calls if isinstance(m, LocalEvents)]
    assert len(local) == 1 and router.counters["outbox_pending"] == 5  # one try, nothing given up
