"""The router's per-batch boundary: an indexed event that fails to apply is counted, the batch is
dropped from there, and the next catch-up asks the master for it again; the node goes on."""

from datetime import datetime, timezone

import trio

from skulk.faults import FAULTS
from skulk.routing import service
from skulk.routing.service import EventRouter
from skulk.types.events import IndexedEvent, NodeGatheredInfo, TestEvent
from skulk.types.ids import SessionId
from skulk.types.node import NodeNetworkInterfaces
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


def own_session_indexes(router, events, others=()):
    """This node, as master of its own session, indexes `events` (and reports from `others`)."""
    infos = [NodeGatheredInfo(node_id=n, when=datetime.now(timezone.utc), info=NodeNetworkInterfaces(ifaces=[]))
             for n in others]
    indexed = [IndexedEvent(idx=i, event=e) for i, e in enumerate([*events, *infos])]
    router.on_indexed(IndexedEvents(session=router.session, events=indexed))


def pending_notes(router):
    return [p.event.note for p in sorted(router._outbox.pending.values(), key=lambda p: p.origin_idx)]


def test_events_of_an_abandoned_session_we_mastered_are_resent_to_the_new_master():
    router = EventRouter("me", lambda peer, msg: None)
    router.set_session(SessionId(master_node_id="me", election_clock=3))
    events = [TestEvent(note=f"mine{i}") for i in range(3)]
    for e in events:
        router.send_event(e)
    own_session_indexes(router, events[:2])
    router.set_session(S1)  # m1 never took part in our session: it has none of them
    assert pending_notes(router) == ["mine0", "mine1", "mine2"]
    assert sorted(p.origin_idx for p in router._outbox.pending.values()) == [0, 1, 2]


def test_a_new_master_that_was_a_member_of_our_session_has_our_events_already():
    router = EventRouter("me", lambda peer, msg: None)
    router.set_session(SessionId(master_node_id="me", election_clock=3))
    events = [TestEvent(note=f"mine{i}") for i in range(3)]
    for e in events:
        router.send_event(e)
    own_session_indexes(router, events[:2], others=["m1"])
    router.set_session(S1)
    assert pending_notes(router) == ["mine2"]
