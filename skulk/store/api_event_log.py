"""The API-side event log (event_log/api): what GET /events serves, kept on disk.

Every indexed event the node applies goes in except StateSnapshotHydrated (whose jump ahead
leaves a gap); the log is recreated, the old file archived, on every API reset (session change).
Every `check_every` appends, a file over `compact_above_bytes` is cut to the last `keep_last`
events. An append is one small synchronous write; opening, compaction and reads run in a worker
thread one at a time, and events applied meanwhile wait in memory until it ends.
"""

import logging
import shutil
from pathlib import Path

import trio

from skulk.faults import isolate
from skulk.store.deferred_writes import DeferredWrites
from skulk.store.event_log import DiskEventLog, DiskUsageFn, GiB
from skulk.types.events import IndexedEvent, StateSnapshotHydrated

log = logging.getLogger(__name__)

MiB = 1024**2
CHECK_EVERY = 4096
COMPACT_ABOVE_BYTES = 256 * MiB
KEEP_LAST = 20_000


class ApiEventLog:
    """A DiskEventLog of this node's applied events, with its compaction policy and resets."""

    def __init__(self, directory: Path, *, check_every: int = CHECK_EVERY,
                 compact_above_bytes: int = COMPACT_ABOVE_BYTES, keep_last: int = KEEP_LAST,
                 free_space_floor_bytes: int = 2 * GiB, free_check_every: int = 1024,
                 disk_usage: DiskUsageFn = shutil.disk_usage):
        self._directory = Path(directory)
        self._check_every = max(1, check_every)
        self._compact_above = compact_above_bytes
        self._keep_last = keep_last
        self._log_options = {"free_space_floor_bytes": free_space_floor_bytes,
                             "free_check_every": free_check_every, "disk_usage": disk_usage}
        self._writes: DeferredWrites[IndexedEvent] = DeferredWrites(self._write)
        self._reopen_due = False  # appends wait (held) until the reopen starts
        self._compact_due = False
        self._since_check = 0
        self._wake = trio.Event()
        self.compactions = 0
        self._log: DiskEventLog | None = self._open()

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def mode(self) -> str:
        """persisting | counting_only (disk trouble or under the free-space floor) | disabled."""
        return self._log.mode if self._log is not None else "disabled"

    @property
    def stored(self) -> int:
        """Events on disk that GET /events can serve (pending ones not counted yet)."""
        return self._log.persisted_count if self._log is not None else 0

    def append(self, ie: IndexedEvent) -> None:
        self._writes.append(ie)

    def set_free_space_floor(self, floor_bytes: int) -> None:
        """Applies to this log now and to the logs opened after the next reset."""
        self._log_options["free_space_floor_bytes"] = floor_bytes
        if self._log is not None:
            self._log.set_free_space_floor(floor_bytes)

    def reset(self) -> None:
        """A new session: drop what waits, archive the old file and start a fresh one."""
        self._writes.discard()
        self._since_check = 0
        self._compact_due = False
        self._reopen_due = True
        self._writes.hold()
        self._wake.set()

    async def read_all(self) -> list[IndexedEvent]:
        """Every event the log holds, oldest first (a counting-only spell leaves it thinner)."""
        async with self._writes.lock:
            await self._maintain()  # a due reset must hide the old session's events
            disk_log = self._log
            if disk_log is None:
                return []
            try:
                return await self._writes.in_thread(disk_log.read_range, disk_log.start_idx)
            finally:
                self._writes.flush()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Runs the due jobs (reopen, compaction) as appends and resets ask for them."""
        task_status.started()
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                async with self._writes.lock:
                    with isolate("api_log.maintain"):  # a failed compaction is retried when next due
                        await self._maintain()
        finally:
            if not self._writes.busy:
                self.close()

    def close(self) -> None:
        """Release the file (later appends are dropped); the next log opened here archives it."""
        disk_log, self._log = self._log, None
        if disk_log is not None:
            disk_log.close()

    def _write(self, ie: IndexedEvent) -> None:
        disk_log = self._log
        if disk_log is None or ie.idx < disk_log.next_idx:
            return
        if isinstance(ie.event, StateSnapshotHydrated):
            disk_log.skip_to(ie.idx + 1)
            return
        disk_log.skip_to(ie.idx)
        disk_log.append(ie)
        self._since_check += 1
        if self._since_check >= self._check_every:
            self._since_check = 0
            if disk_log.active_bytes > self._compact_above:
                self._compact_due = True
                self._wake.set()

    async def _maintain(self) -> None:
        """Run due jobs in a worker thread (the caller holds the lock), then write what waited."""
        while self._reopen_due or self._compact_due:
            if self._reopen_due:
                self._reopen_due = self._compact_due = False
                self._writes.release()  # the job holds the log from here
                self._log = await self._writes.in_thread(self._reopen, self._log)
            else:
                self._compact_due = False
                if self._log is not None and await self._writes.in_thread(self._log.compact, self._keep_last):
                    self.compactions += 1
        self._writes.flush()

    def _reopen(self, old: DiskEventLog | None) -> DiskEventLog | None:
        if old is not None:
            old.close()
        return self._open()

    def _open(self) -> DiskEventLog | None:
        try:
            return DiskEventLog(self._directory, **self._log_options)
        except Exception as exc:  # noqa: BLE001 - serving must go on without a disk log
            log.warning("API event log unavailable (%s); GET /events serves nothing", exc)
            return None
