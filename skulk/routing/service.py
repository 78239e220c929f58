"""EventRouter: a node's link to the session's master for the ordered event log.

Outbound, it sequences this node's events and retries them until they come back indexed.
Inbound, it releases the master's indexed events strictly in order and folds them into state.
"""

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from uuid import uuid4

import trio

from skulk.faults import count, isolate
from skulk.routing.buffer import IndexedBuffer
from skulk.routing.outbox import Outbox
from skulk.state.apply import apply
from skulk.store.api_event_log import ApiEventLog
from skulk.types.events import IndexedEvent, NodeGatheredInfo
from skulk.types.ids import NodeId, SessionId
from skulk.types.state import State
from skulk.types.wire import CatchUpRequest, IndexedEvents, LocalEvents

log = logging.getLogger(__name__)

SendToPeer = Callable[[NodeId, object], Awaitable[None]]
CATCH_UP_INTERVAL = 1.0
EVENT_HISTORY_LIMIT = 20_000


class EventRouter:
    def __init__(self, node_id: NodeId, send: SendToPeer, *, api_log: ApiEventLog | None = None):
        self.node_id = node_id
        self._send = send
        self.session: SessionId | None = None
        self.state = State()
        self.api_log = api_log  # this session's indexed events on disk, for GET /events
        self.history: list[IndexedEvent] = []  # the same, bounded in memory, when there is no api_log
        self.counters = {"events_applied": 0, "stale_messages": 0, "send_failures": 0, "apply_failures": 0,
                         "outbox_pending": 0, "outbox_dropped": 0, "outbox_resyncs": 0}
        self._buffer = IndexedBuffer()
        self._outbox = Outbox(origin="")
        self._members: set[str] = set()  # nodes whose own reports this session indexed
        self._wake = trio.Event()
        self._listeners: list[trio.MemorySendChannel] = []
        self.changed = trio.Event()

    @property
    def master_id(self) -> NodeId | None:
        return self.session.master_node_id if self.session else None

    def set_session(self, session: SessionId) -> None:
        """A new session starts from nothing: the master sends a snapshot or the whole log."""
        old, self.session = self.session, session
        # Events the old master never indexed are not given up on: they open the new session. A
        # session we mastered that the new master never joined is abandoned: what it indexed goes too.
        abandoned = (old is not None and old.master_node_id == self.node_id != session.master_node_id
                     and session.master_node_id not in self._members)
        self._outbox = self._outbox.carried(f"{self.node_id}/{uuid4()}", resend_confirmed=abandoned)
        self._members = set()
        self.state = State()
        self.history = []
        if self.api_log is not None:
            self.api_log.reset()
        self._buffer = IndexedBuffer()
        self._notify()

    def subscribe(self) -> trio.MemoryReceiveChannel:
        send, recv = trio.open_memory_channel(math.inf)
        self._listeners.append(send)
        return recv

    def send_event(self, event) -> None:
        if self.session is None:
            log.debug("dropping %s: no session yet", type(event).__name__)
            return
        box = self._outbox
        dropped, resyncs = box.dropped, box.resyncs
        box.add(event, _size(event))
        if box.resyncs != resyncs:
            count("routing.outbox_resync", f"outbox over its bounds: dropped {box.dropped - dropped} event(s), "
                                           f"resent {len(box.pending)} under origin {box.origin}")
        self._wake.set()

    def on_indexed(self, msg: IndexedEvents) -> None:
        if msg.session != self.session:
            self.counters["stale_messages"] += 1
            return
        released = self._apply_released(self._buffer.ingest(msg.events))
        if released:
            self.counters["events_applied"] += len(released)
            self._outbox.acknowledge(released)
            self._publish(released)
            self._notify()
        if self._buffer.has_gap:
            self._wake.set()

    def _apply_released(self, released: list[IndexedEvent]) -> list[IndexedEvent]:
        """Fold released events into state; one that does not apply ends the batch there and
        rewinds the buffer, so the next catch-up asks the master for it again."""
        for n, ie in enumerate(released):
            try:
                self.state = apply(self.state, ie)
            except Exception as exc:  # noqa: BLE001 - a bad batch must not end the node
                self.counters["apply_failures"] += 1
                count("routing.apply_failed", f"event {ie.idx} ({type(ie.event).__name__}): "
                                              f"{type(exc).__name__}: {exc}"[:500])
                self._buffer.rewind(ie.idx)
                self._wake.set()
                released = released[:n]
                break
            if isinstance(ie.event, NodeGatheredInfo):
                self._members.add(ie.event.node_id)
            with isolate("routing.record"):
                self._record(ie)
        return released

    def _record(self, ie: IndexedEvent) -> None:
        if self.api_log is not None:
            self.api_log.append(ie)
            return
        self.history.append(ie)
        if len(self.history) > EVENT_HISTORY_LIMIT:
            del self.history[: len(self.history) - EVENT_HISTORY_LIMIT]

    async def read_history(self) -> list[IndexedEvent]:
        """This session's indexed events, oldest first: what GET /events serves."""
        if self.api_log is not None:
            return await self.api_log.read_all()
        return list(self.history)

    @property
    def history_length(self) -> int:
        return self.api_log.stored if self.api_log is not None else len(self.history)

    def _publish(self, released: list[IndexedEvent]) -> None:
        for listener in list(self._listeners):
            try:
                listener.send_nowait(released)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._listeners.remove(listener)

    def _notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if self.api_log is not None:
                await nursery.start(self.api_log.run)
            task_status.started()
            while True:
                with trio.move_on_after(CATCH_UP_INTERVAL):
                    await self._wake.wait()
                self._wake = trio.Event()
                with isolate("routing.flush"):
                    await self._flush()

    async def _flush(self) -> None:
        session = self.session
        if session is None:
            return
        master, box = session.master_node_id, self._outbox
        for first_idx, events in box.due(trio.current_time()):
            msg = LocalEvents(session=session, origin=box.origin, first_origin_idx=first_idx, events=events)
            if not await self._try_send(master, msg):
                break  # the master is unreachable: the rest are retried with the same backoff
        self.counters.update(outbox_pending=len(box.pending), outbox_dropped=box.dropped,
                             outbox_resyncs=box.resyncs)
        await self._try_send(master, CatchUpRequest(session=session, next_idx=self._buffer.next_idx))

    async def _try_send(self, peer: NodeId, msg) -> bool:
        try:
            await self._send(peer, msg)
            return True
        except Exception as exc:  # noqa: BLE001 - any transport failure is retried later
            self.counters["send_failures"] += 1
            log.debug("send to master %s failed: %s", peer, exc)
            return False


def _size(event) -> int:
    # The JSON size tracks the msgpack one closely enough to bound the outbox and its batches.
    try:
        return len(event.model_dump_json())
    except Exception:  # noqa: BLE001 - a size estimate must never refuse an event
        return 0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
