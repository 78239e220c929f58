"""MasterService bounds and fault guards: byte-bounded push batches, lagging followers dropped,
bounded inbox, refused and broken input counted while the loop goes on."""

from collections import deque
from datetime import datetime, timezone

import trio

from skulk import codec
from skulk.faults import FAULTS
from skulk.master.batches import PUSH_BATCH_BYTES, take_batch
from skulk.master.service import INBOX_LIMIT, PUSH_QUEUE_LIMIT, MasterService
from skulk.types import commands as cmd
from skulk.types import events as ev
from skulk.types.ids import SessionId
from skulk.types.node import NodeNetworkInterfaces
from skulk.types.state import State
from skulk.types.wire import CatchUpRequest, ForwardedCommand, IndexedEvents, LocalEvents

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SESSION = SessionId(master_node_id="m", election_clock=1)


def indexed(i: int, size: int = 10) -> ev.IndexedEvent:
    return ev.IndexedEvent(idx=i, event=ev.TestEvent(note="x" * size))


def test_take_batch_bounds_bytes_and_count_and_sends_a_snapshot_alone():
    pending = deque(indexed(i, 1000) for i in range(10))
    size = lambda ie: len(codec.encode(ie))  # noqa: E731
    first = take_batch(pending, size, max_bytes=3 * size(indexed(0, 1000)))
    assert [ie.idx for ie in first] == [0, 1, 2]
    assert [ie.idx for ie in take_batch(pending, size, max_events=2)] == [3, 4]
    snap = ev.IndexedEvent(idx=10, event=ev.StateSnapshotHydrated(state=State()))
    pending = deque([indexed(0), snap, indexed(11)])
    assert [len(take_batch(pending, size)) for _ in range(3)] == [1, 1, 1]
    huge = deque([indexed(0, 100), indexed(1)])
    assert len(take_batch(huge, size, max_bytes=1)) == 1  # one event always goes, however big


async def until(condition, seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.005)


def test_catch_up_is_pushed_in_batches_bounded_in_bytes():
    sent: list[IndexedEvents] = []

    async def send(peer, msg):
        sent.append(msg)

    async def main():
        master = MasterService("m", SESSION, send, reconcile_interval=3600)
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            master.index_local([ev.TestEvent(note="y" * 200_000) for _ in range(50)])  # ~10 MB
            master.inbox_send.send_nowait(("f", CatchUpRequest(session=SESSION, next_idx=0)))
            await until(lambda: sum(len(m.events) for m in sent) == 50)
            nursery.cancel_scope.cancel()
        assert len(sent) >= 3
        assert all(len(codec.encode(m)) <= PUSH_BATCH_BYTES + 1024 for m in sent)
        assert [ie.idx for m in sent for ie in m.events] == list(range(50))

    trio.run(main)


def test_a_follower_that_cannot_keep_up_is_unsubscribed_and_the_inbox_is_bounded():
    async def stuck(peer, msg):
        await trio.sleep_forever()

    async def main():
        master = MasterService("m", SESSION, stuck, reconcile_interval=3600)
        assert master.inbox_send.statistics().max_buffer_size == INBOX_LIMIT
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            master.inbox_send.send_nowait(("slow", CatchUpRequest(session=SESSION, next_idx=0)))
            await until(lambda: "slow" in master._pushers)
            lagging = FAULTS.counts["master.follower_lagging"]
            for i in range(PUSH_QUEUE_LIMIT + 5):
                master.index_local([ev.TestEvent(note=str(i))])
                await trio.sleep(0)
            assert "slow" not in master._pushers
            assert FAULTS.counts["master.follower_lagging"] == lagging + 1
            master.inbox_send.send_nowait(("slow", CatchUpRequest(session=SESSION, next_idx=0)))
            await until(lambda: "slow" in master._pushers)  # it asks again and is served again
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_forged_refused_and_broken_input_is_counted_and_the_master_goes_on():
    def broken_context():
        raise RuntimeError("a bug while gathering facts")

    async def no_send(peer, msg):
        return None

    async def main():
        master = MasterService("m", SESSION, no_send, reconcile_interval=3600, context=broken_context)
        before = dict(FAULTS.counts)
        info = ev.NodeGatheredInfo(node_id="w", when=T0, info=NodeNetworkInterfaces(ifaces=[]))
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            inbox = master.inbox_send
            inbox.send_nowait(("w", LocalEvents(session=SESSION, origin="m/forged", first_origin_idx=0, events=[info])))
            inbox.send_nowait(("w", LocalEvents(session=SESSION, origin="w/s", first_origin_idx=0,
                                                events=[ev.ClusterConfigChanged(config={"x": 1}), info])))
            inbox.send_nowait(("w", ForwardedCommand(session=SESSION, origin="w",
                                                     command=cmd.SetTracingEnabled(enabled=True))))
            inbox.send_nowait(("w", LocalEvents(session=SESSION, origin="w/s", first_origin_idx=2,
                                                events=[ev.TestEvent(note="after")])))
            await until(lambda: master.state.last_event_applied_idx == 1)
            nursery.cancel_scope.cancel()
        moved = {k: FAULTS.counts[k] - before.get(k, 0) for k in
                 ("master.origin_forged", "master.event_refused", "master.command")}
        assert moved == {"master.origin_forged": 1, "master.event_refused": 1, "master.command": 1}
        assert master.state.cluster_config is None and not master.state.tracing_enabled
        assert list(master.state.topology.nodes) == ["w"]

    trio.run(main)


def test_repeated_catch_up_requests_do_not_resend_the_range_at_once():
    sent: list[IndexedEvents] = []

    async def send(peer, msg):
        sent.append(msg)

    async def main():
        master = MasterService("m", SESSION, send, reconcile_interval=3600)
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            master.index_local([ev.TestEvent(note=str(i)) for i in range(10)])
            for _ in range(5):
                master.inbox_send.send_nowait(("f", CatchUpRequest(session=SESSION, next_idx=0)))
            await until(lambda: "f" in master._pushers and master._inbox.statistics().current_buffer_used == 0)
            master.index_local([ev.TestEvent(note="live")])  # FIFO: once it arrives, so has any resend
            await until(lambda: any(ie.idx == 10 for m in sent for ie in m.events))
            nursery.cancel_scope.cancel()
        assert [ie.idx for m in sent for ie in m.events] == list(range(11))

    trio.run(main)
