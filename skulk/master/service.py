"""MasterService: runs only while this node leads a session. Orders, persists, fans out."""

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

from skulk.errors import SkulkError
from skulk.master.decide import ReconcileParams, decide_command, reconcile
from skulk.master.persistence import MasterPersistence
from skulk.master.sequencer import Sequencer
from skulk.master.snapshot_policy import REPLAY_TAIL_RETENTION_EVENTS, SNAPSHOT_EVENT_CADENCE
from skulk.types import events as ev
from skulk.types.ids import NodeId, SessionId
from skulk.types.state import State
from skulk.types.wire import CatchUpRequest, ForwardedCommand, IndexedEvents, LocalEvents

log = logging.getLogger(__name__)

SendToPeer = Callable[[NodeId, object], Awaitable[None]]
CommandHook = Callable[[State, object], Awaitable[list]]
ReconcileHook = Callable[[State, float], list]  # (state, seconds since this master started)
PUSH_BATCH_LIMIT = 2_000


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MasterService:
    def __init__(
        self, node_id: NodeId, session: SessionId, send: SendToPeer, *,
        seed: State | None = None, log_dir: Path | None = None,
        reconcile_params: ReconcileParams | None = None, reconcile_interval: float = 2.0,
        command_hook: CommandHook | None = None, reconcile_hook: ReconcileHook | None = None,
        log_min_free_bytes: int = 2 * 1024**3, snapshot_cadence: int = SNAPSHOT_EVENT_CADENCE,
        log_tail_events: int = REPLAY_TAIL_RETENTION_EVENTS,
    ):
        self.node_id = node_id
        self.session = session
        self._send = send
        self._seed = seed
        self._params = reconcile_params or ReconcileParams(timedelta(seconds=30), timedelta(seconds=60))
        self._reconcile_interval = reconcile_interval
        self._command_hook = command_hook
        self._reconcile_hook = reconcile_hook
        self.sequencer = Sequencer()
        self.inbox_send, self._inbox = trio.open_memory_channel(math.inf)
        self._pushers: dict[NodeId, trio.MemorySendChannel] = {}
        self.started_at = _utc_now()
        self.counters = {"indexed": 0, "commands": 0, "command_errors": 0}
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
                if self._seed is not None:  # carried facts become event 0 of the new session
                    self._commit([self.sequencer.index(ev.StateSnapshotHydrated(state=self._seed), _utc_now())])
                nursery.start_soon(self._reconcile_loop)
                task_status.started()
                async for peer, msg in self._inbox:
                    await self._handle(peer, msg)
        finally:
            await self.persistence.close(self.state)  # forced snapshot: shielded, time-bounded

    def set_log_free_space_floor(self, floor_bytes: int) -> None:
        self.persistence.set_free_space_floor(floor_bytes)

    async def _handle(self, peer: NodeId, msg) -> None:
        if getattr(msg, "session", None) != self.session:
            return
        if isinstance(msg, LocalEvents):
            self._commit(self.sequencer.accept(msg.origin, msg.first_origin_idx, msg.events, _utc_now()))
        elif isinstance(msg, CatchUpRequest):
            self._subscribe(peer)
            missing = self.sequencer.catch_up(msg.next_idx)
            if missing:
                self._push_to(peer, missing)
        elif isinstance(msg, ForwardedCommand):
            await self._handle_command(msg.command)

    async def _handle_command(self, command) -> None:
        self.counters["commands"] += 1
        try:
            events = decide_command(self.state, command)
            if not events and self._command_hook is not None:
                events = await self._command_hook(self.state, command)
        except SkulkError as exc:
            self.counters["command_errors"] += 1
            log.warning("command %s refused: %s", type(command).__name__, exc.message)
            return
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
        for peer in list(self._pushers):
            self._push_to(peer, indexed)

    def _subscribe(self, peer: NodeId) -> None:
        if peer in self._pushers:
            return
        send, recv = trio.open_memory_channel(math.inf)
        self._pushers[peer] = send
        self._nursery.start_soon(self._pusher, peer, recv)

    def _push_to(self, peer: NodeId, indexed: list[ev.IndexedEvent]) -> None:
        channel = self._pushers.get(peer)
        if channel is not None:
            channel.send_nowait(indexed)

    async def _pusher(self, peer: NodeId, recv: trio.MemoryReceiveChannel) -> None:
        """One ordered sender per follower; a failure unsubscribes it until it asks again."""
        async with recv:
            while True:
                batch = list(await recv.receive())
                while len(batch) < PUSH_BATCH_LIMIT:
                    try:
                        batch.extend(recv.receive_nowait())
                    except trio.WouldBlock:
                        break
                try:
                    await self._send(peer, IndexedEvents(session=self.session, events=batch))
                except Exception as exc:  # noqa: BLE001 - follower will catch up by itself
                    log.debug("push to %s failed: %s", peer, exc)
                    self._pushers.pop(peer, None)
                    return

    async def _reconcile_loop(self) -> None:
        while True:
            await trio.sleep(self._reconcile_interval)
            now = _utc_now()
            self.index_local(reconcile(self.state, now, self.started_at, self._params))
            if self._reconcile_hook is not None:
                try:
                    self.index_local(self._reconcile_hook(self.state, (now - self.started_at).total_seconds()))
                except SkulkError as exc:
                    log.info("reconcile hook: %s", exc.message)
