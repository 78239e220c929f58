"""The master's disk: its event log, State snapshots and log compaction, all off the event loop.

Appends are small synchronous writes. Every `cadence` indexed events a snapshot of the State is
written in a worker thread (appends go on meanwhile: State is immutable), then the log is cut,
also in a worker thread, to the `tail` events up to the snapshot while new appends wait in
memory. Disk trouble is never fatal: a failed snapshot logs a warning and is retried a cadence
later. A forced snapshot, bounded in time, is written when the master stops. The master never
reads any of this back: a new master starts from an empty State (load_latest_snapshot is for
tests and diagnostics).
"""

import logging
import threading
from pathlib import Path

import trio

from skulk.master.snapshot_policy import (
    REPLAY_TAIL_RETENTION_EVENTS,
    SNAPSHOT_EVENT_CADENCE,
    SNAPSHOTS_KEPT,
    compaction_keep_last,
    snapshot_due,
    stop_snapshot_due,
)
from skulk.store.deferred_writes import DeferredWrites
from skulk.store.event_log import DiskEventLog
from skulk.store.snapshots import SNAPSHOT_DIR_NAME, write_snapshot
from skulk.types.events import IndexedEvent
from skulk.types.ids import SessionId
from skulk.types.state import State

log = logging.getLogger(__name__)

STOP_SNAPSHOT_SECONDS = 5.0

# One master's disk jobs at a time per folder: a new master opening (and archiving) the log must
# not interleave with the compaction or snapshot of the one it replaces, still winding down.
_DIR_LOCKS: dict[Path, threading.Lock] = {}
_DIR_LOCKS_GUARD = threading.Lock()


def _dir_lock(directory: Path) -> threading.Lock:
    with _DIR_LOCKS_GUARD:
        return _DIR_LOCKS.setdefault(directory.absolute(), threading.Lock())


class MasterPersistence:
    """The master's log folder: `events.bin` plus `snapshots/`. `directory` None disables it."""

    def __init__(self, directory: Path | None, session: SessionId, counters: dict, *,
                 cadence: int = SNAPSHOT_EVENT_CADENCE, tail: int = REPLAY_TAIL_RETENTION_EVENTS,
                 keep: int = SNAPSHOTS_KEPT, free_space_floor_bytes: int = 2 * 1024**3):
        self._dir = Path(directory) if directory is not None else None
        self._session = session
        self._cadence, self._tail, self._keep = cadence, tail, keep
        self._floor = free_space_floor_bytes
        self._log: DiskEventLog | None = None
        self._writes: DeferredWrites[IndexedEvent] = DeferredWrites(self._write)
        self._attempt_idx = -1  # the last index a periodic snapshot was tried at
        self._due: State | None = None
        self._latest: State | None = None  # the State after the last append
        self._wake = trio.Event()
        self._failing = False
        if self._dir is not None:
            self._writes.hold()  # what is indexed before the log opens waits in memory
        self.counters = counters
        counters.update(master_snapshots=0, master_last_snapshot_idx=-1, master_snapshot_failures=0,
                        master_log_compactions=0)

    @property
    def mode(self) -> str:
        """persisting | counting_only (disk trouble or under the free-space floor) | disabled (no
        folder, or it could not be opened; also while it is being opened)."""
        return self._log.mode if self._log is not None else "disabled"

    @property
    def disk_log(self) -> DiskEventLog | None:
        return self._log

    @property
    def snapshot_dir(self) -> Path | None:
        return self._dir / SNAPSHOT_DIR_NAME if self._dir is not None else None

    def set_free_space_floor(self, floor_bytes: int) -> None:
        self._floor = floor_bytes
        if self._log is not None:
            self._log.set_free_space_floor(floor_bytes)

    def append(self, indexed: list[IndexedEvent], state: State) -> None:
        """Store newly indexed events; `state` is the master's State after the last of them."""
        if self._dir is None:
            return
        for ie in indexed:
            self._writes.append(ie)
        self._latest = state
        self._check_due()

    async def run(self) -> None:
        """Open the log in a worker thread (archiving a leftover file; a failure disables it),
        then take each due snapshot (the newest requested) and compact after it."""
        if self._dir is None:
            return
        await self._writes.run_in_thread(self._open_locked)
        self._check_due()  # what was indexed while the log opened
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            state, self._due = self._due, None
            if state is not None and await self._snapshot(state, abandon_on_cancel=False):
                await self._compact(state.last_event_applied_idx)

    async def close(self, state: State) -> None:
        """The forced snapshot (at most STOP_SNAPSHOT_SECONDS, even when cancelled), then release
        the log. Call once the run loop has ended, so that no job holds the log."""
        try:
            if stop_snapshot_due(state.last_event_applied_idx, self.counters["master_last_snapshot_idx"], self.mode):
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + STOP_SNAPSHOT_SECONDS
                    await self._snapshot(state, abandon_on_cancel=True)
                if scope.cancelled_caught:
                    log.warning("master snapshot at stop still unfinished after %g s; left to the "
                                "background", STOP_SNAPSHOT_SECONDS)
        finally:
            disk_log, self._log = self._log, None
            if disk_log is not None:
                disk_log.close()

    def _check_due(self) -> None:
        state = self._latest
        if state is None:
            return
        idx = state.last_event_applied_idx
        if snapshot_due(idx, self._attempt_idx, self._cadence, self.mode):
            self._attempt_idx = idx
            self._due = state  # a newer one replaces a request still waiting
            self._wake.set()

    async def _snapshot(self, state: State, *, abandon_on_cancel: bool) -> bool:
        idx = state.last_event_applied_idx
        error = await trio.to_thread.run_sync(self._write_snapshot, state, abandon_on_cancel=abandon_on_cancel)
        if error is not None:
            self.counters["master_snapshot_failures"] += 1
            log.warning("master snapshot at index %d failed (%s); retrying in %d events",
                        idx, error, self._cadence)
            self._failing = True
            return False
        if self._failing:
            log.info("master snapshots written again from index %d", idx)
            self._failing = False
        self.counters["master_snapshots"] += 1
        self.counters["master_last_snapshot_idx"] = max(idx, self.counters["master_last_snapshot_idx"])
        return True

    async def _compact(self, snapshot_idx: int) -> None:
        if await self._writes.run_in_thread(self._compact_locked, snapshot_idx):
            self.counters["master_log_compactions"] += 1

    # --- worker-thread side -------------------------------------------------------------------

    def _open_locked(self) -> None:
        """Sets the log here, in the thread, so that the appends waiting meanwhile reach it."""
        assert self._dir is not None
        try:
            with _dir_lock(self._dir):
                self._log = DiskEventLog(self._dir, free_space_floor_bytes=self._floor)
        except Exception as exc:  # noqa: BLE001 - serving must go on without a disk log
            log.warning("master event log unavailable (%s); not persisting", exc)

    def _write_snapshot(self, state: State) -> str | None:
        """None once written, else why not (the caller, back on the loop, counts and logs)."""
        assert self._dir is not None
        try:
            with _dir_lock(self._dir):
                write_snapshot(self._dir / SNAPSHOT_DIR_NAME, state, master_id=self._session.master_node_id,
                               clock=self._session.election_clock, keep=self._keep)
        except Exception as exc:  # noqa: BLE001 - OSError mostly (ENOSPC); never fatal
            return f"{type(exc).__name__}: {exc}"
        return None

    def _compact_locked(self, snapshot_idx: int) -> bool:
        disk_log = self._log
        if disk_log is None or disk_log.mode != "persisting":
            return False
        with _dir_lock(disk_log.directory):
            return disk_log.compact(compaction_keep_last(disk_log.next_idx, snapshot_idx, self._tail))

    def _write(self, ie: IndexedEvent) -> None:
        if self._log is not None:
            self._log.append(ie)
