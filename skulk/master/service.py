"""MasterService: runs only while this node leads a session. Orders, persists, fans out."""

import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

from skulk import codec
from skulk.errors import SkulkError
from skulk.faults import count, isolate
from skulk.master.batches import PUSH_BATCH_LIMIT, take_batch
from skulk.master.decide import ReconcileParams, reconcile
from skulk.master import deployments, preemption, warm_cache
from skulk.master.dispatch import DecideContext, auto_place, decide, expired_keys, place
from skulk.master.notifier import Notifier
from skulk.master.persistence import MasterPersistence
from skulk.master.sequencer import Sequencer
from skulk.master.snapshot_policy import REPLAY_TAIL_RETENTION_EVENTS, SNAPSHOT_EVENT_CADENCE
from skulk.types import events as ev
from skulk.types.ids import NodeId, SessionId
from skulk.types.commands import RefuseInstancePlacement
from skulk.types.state import State
from skulk.types.wire import CatchUpRequest, ForwardedCommand, IndexedEvents, LocalEvents

log = logging.getLogger(__name__)

SendToPeer = Callable[[NodeId, object], Awaitable[None]]
ContextSource = Callable[[], DecideContext]  # live facts for the deciders, gathered per decision
INBOX_LIMIT = 10_000  # messages from peers waiting for the master; the sender drops past it
PUSH_QUEUE_LIMIT = 1_000  # commits waiting per follower; one that lags further is unsubscribed
SIZE_CACHE_LIMIT = 20_000
CATCH_UP_MIN_INTERVAL = 0.5  # seconds between two catch-up ranges sent to one follower


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MasterService:
    def __init__(
        self, node_id: NodeId, session: SessionId, send: SendToPeer, *,
        seed: State | None = None, log_dir: Path | None = None,
        reconcile_params: ReconcileParams | None = None, reconcile_interval: float = 2.0,
        context: ContextSource | None = None,
        log_min_free_bytes: int = 2 * 1024**3, snapshot_cadence: int = SNAPSHOT_EVENT_CADENCE,
        log_tail_events: int = REPLAY_TAIL_RETENTION_EVENTS,
        webhook_url: Callable[[], str] | None = None,
    ):
        self.node_id = node_id
        self.session = session
        self._send = send
        self._seed = seed
        self._params = reconcile_params or ReconcileParams(timedelta(seconds=30), timedelta(seconds=60))
        self._reconcile_interval = reconcile_interval
        self._context = context or DecideContext
        self._refused: set[str] = set()  # instances widened once already
        self._backoff: dict[str, deployments.Backoff] = {}  # placement backoff per deployment
        self._crashes: deque[deployments.Crash] = deque(maxlen=1024)  # runner failures since the last pass
        self.sequencer = Sequencer()
        self.inbox_send, self._inbox = trio.open_memory_channel(INBOX_LIMIT)
        self._pushers: dict[NodeId, trio.MemorySendChannel] = {}
        self._sizes: OrderedDict[int, int] = OrderedDict()  # encoded size by index, for push batches
        self._last_catch_up: dict[NodeId, float] = {}
        self.started_at = _utc_now()
        self.uses = warm_cache.UseTracker(since=self.started_at)  # deployments' last requests, for pausing
        self.counters = {"indexed": 0, "commands": 0, "command_errors": 0}
        # webhooks for what this session sequences (never replayed by a later master)
        self.notifier = Notifier(webhook_url or (lambda: ""))
        self._notified_state = self.sequencer.state  # the state before the next commit
        # the event log, State snapshots every `snapshot_cadence` events, compaction after each
        self.persistence = MasterPersistence(log_dir, session, self.counters, cadence=snapshot_cadence,
                                             tail=log_tail_events, free_space_floor_bytes=log_min_free_bytes)

    @property
    def state(self) -> State:
        return self.sequencer.state

    @property
    def event_log_mode(self) -> str:
        """persisting | counting_only (disk trouble or under the free-space floor) | disabled."""
        return self.persistence.mode

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.persistence.run)
                await nursery.start(self.notifier.run)
                if self._seed is not None:  # carried facts become event 0 of the new session
                    self._commit([self.sequencer.index(ev.StateSnapshotHydrated(state=self._seed), _utc_now())])
                nursery.start_soon(self._reconcile_loop)
                task_status.started()
                async for peer, msg in self._inbox:
                    with isolate("master.message"):  # one bad message ends only itself
                        await self._handle(peer, msg)
        finally:
            await self.persistence.close(self.state)  # forced snapshot: shielded, time-bounded

    def set_log_free_space_floor(self, floor_bytes: int) -> None:
        self.persistence.set_free_space_floor(floor_bytes)

    async def _handle(self, peer: NodeId, msg) -> None:
        if getattr(msg, "session", None) != self.session:
            return
        if isinstance(msg, LocalEvents):
            before = self.state
            indexed = self.sequencer.accept(msg.origin, msg.first_origin_idx, msg.events, _utc_now(), peer=peer)
            self._crashes.extend(deployments.crashes_in(before, indexed, _utc_now()))
            for refusal in self.sequencer.take_refusals():
                count(refusal.kind, refusal.detail)
            self._commit(indexed)
        elif isinstance(msg, CatchUpRequest):
            self._catch_up(peer, msg.next_idx)
        elif isinstance(msg, ForwardedCommand):
            with isolate("master.command"):
                self._handle_command(peer, msg.command)

    def decide_context(self, sender: NodeId) -> DecideContext:
        now = _utc_now()
        return replace(self._context(), sender=sender, now=now, refused=frozenset(self._refused),
                       master_age_s=(now - self.started_at).total_seconds())

    def _handle_command(self, peer: NodeId, command) -> None:
        self.counters["commands"] += 1
        try:
            events = decide(self.state, command, self.decide_context(peer))
        except SkulkError as exc:
            self.counters["command_errors"] += 1
            count("master.command_refused", f"{type(command).__name__} from {peer}: {exc.message}")
            return
        if isinstance(command, RefuseInstancePlacement) and events:  # only real instances: bounded
            self._refused.add(command.instance_id)
        self.index_local(events)

    def index_local(self, events: list) -> None:
        """Master-originated events skip the per-origin buffer: they are already in order."""
        now = _utc_now()
        self._commit([ie for e in events if (ie := self.sequencer.index(e, now)) is not None])

    def _commit(self, indexed: list[ev.IndexedEvent]) -> None:
        if not indexed:
            return
        self.counters["indexed"] += len(indexed)
        self.persistence.append(indexed, self.state)
        self.notifier.observe(self._notified_state, indexed, self.state)
        self._notified_state = self.state
        self.uses.observe(self.state, indexed, _utc_now())
        for peer in list(self._pushers):
            self._push_to(peer, indexed)

    def _catch_up(self, peer: NodeId, next_idx: int) -> None:
        """Subscribe the follower and queue what it misses, at most once per interval: a range can
        be the whole tail, and asking again every few milliseconds must not make us resend it."""
        self._subscribe(peer)
        now = trio.current_time()
        if now - self._last_catch_up.get(peer, -CATCH_UP_MIN_INTERVAL) < CATCH_UP_MIN_INTERVAL:
            return
        missing = self.sequencer.catch_up(next_idx)
        if missing:
            self._last_catch_up[peer] = now
            self._push_to(peer, missing)

    def _subscribe(self, peer: NodeId) -> None:
        if peer in self._pushers:
            return
        send, recv = trio.open_memory_channel(PUSH_QUEUE_LIMIT)
        self._pushers[peer] = send
        self._nursery.start_soon(self._pusher, peer, send, recv)

    def _unsubscribe(self, peer: NodeId, channel: trio.MemorySendChannel) -> None:
        if self._pushers.get(peer) is channel:
            del self._pushers[peer]
        channel.close()

    def _push_to(self, peer: NodeId, indexed: list[ev.IndexedEvent]) -> None:
        channel = self._pushers.get(peer)
        if channel is None:
            return
        try:
            channel.send_nowait(indexed)
        except trio.WouldBlock:  # it catches up by itself with its next CatchUpRequest
            count("master.follower_lagging", f"{peer}: {PUSH_QUEUE_LIMIT} commits queued")
            self._unsubscribe(peer, channel)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._unsubscribe(peer, channel)

    async def _pusher(self, peer: NodeId, send: trio.MemorySendChannel, recv: trio.MemoryReceiveChannel) -> None:
        """One ordered sender per follower; a failure unsubscribes it until it asks again."""
        pending: deque[ev.IndexedEvent] = deque()
        async with recv:
            while self._pushers.get(peer) is send:
                if not pending:
                    try:
                        pending.extend(await recv.receive())
                    except trio.EndOfChannel:
                        return
                while len(pending) < PUSH_BATCH_LIMIT:  # what is queued joins the next batches
                    try:
                        pending.extend(recv.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                batch = take_batch(pending, self._size_of)
                try:
                    await self._send(peer, IndexedEvents(session=self.session, events=batch))
                except Exception as exc:  # noqa: BLE001 - follower will catch up by itself
                    log.debug("push to %s failed: %s", peer, exc)
                    self._unsubscribe(peer, send)
                    return

    def _size_of(self, indexed: ev.IndexedEvent) -> int:
        size = self._sizes.get(indexed.idx)
        if size is None:
            size = self._sizes[indexed.idx] = len(codec.encode(indexed))
            while len(self._sizes) > SIZE_CACHE_LIMIT:
                self._sizes.popitem(last=False)
        return size

    async def _reconcile_loop(self) -> None:
        while True:
            await trio.sleep(self._reconcile_interval)
            with isolate("master.reconcile"):
                now = _utc_now()
                self.index_local(reconcile(self.state, now, self.started_at, self._params))
                self.index_local(auto_place(self.state, self.decide_context(self.node_id)))
                self.index_local(expired_keys(self.state, now))  # nodes refuse them already
            with isolate("master.deployments"):
                self._reconcile_deployments()
            with isolate("master.warm_cache"):
                local = self.decide_context(self.node_id).local_config
                self.index_local(warm_cache.warm_events(self.state, _utc_now(), self.uses.last_used, self.started_at, local))

    def _reconcile_deployments(self) -> None:
        crashes, self._crashes = list(self._crashes), deque(maxlen=1024)
        events, self._backoff = deployments.reconcile_deployments(
            self.state, self.decide_context(self.node_id), place, self._backoff, crashes,
            preemption.Uses(since=self.started_at, last_used=dict(self.uses.last_used)))
        self.index_local(events)
