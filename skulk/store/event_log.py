"""Append-only event log on disk, one directory per log (event_log/master, event_log/api).

`events.bin` holds records of a 4-byte big-endian length + a codec frame of an IndexedEvent.
Indices are absolute and survive compaction; a leftover file is archived at startup (the record
format and the archives live in event_archive.py).
Synchronous: an append is one small write; run `compact` off the event loop.
"""

import contextlib
import errno
import logging
import os
import shutil
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from skulk import codec
from skulk.errors import CodecError
from skulk.store.event_archive import (
    HEADER as _HEADER,
    TMP_SUFFIX as _TMP_SUFFIX,
    archive_leftover,
    archive_paths,
    compress_into_archive as _compress_into_archive,
    copy_range,
    iter_frames,
    remove_temp_files,
)
from skulk.types.events import IndexedEvent

log = logging.getLogger(__name__)

GiB = 1024**3
ACTIVE_NAME = "events.bin"
__all__ = ["ACTIVE_NAME", "DiskEventLog", "GiB", "LogMode", "archive_paths"]

LogMode = Literal["persisting", "counting_only"]
DiskUsageFn = Callable[[Path], Any]  # like shutil.disk_usage: returns something with `.free`


@dataclass(slots=True)
class _Run:
    """Consecutive indices stored back to back; counting-only spells leave gaps between runs."""

    first_idx: int
    first_pos: int  # where its first record sits in the offsets array
    count: int


def _write_all(fd: int, data: bytes) -> None:
    """os.write until done. Tests replace this to simulate a full disk."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class DiskEventLog:
    """An append-only log of IndexedEvents with absolute indices.

    `start_idx` is the first index the log covers and `next_idx` one past the last appended;
    `len()` is their difference. An empty log adopts the index of its first event. Disk trouble
    (free space under the floor, any OSError) switches to counting-only; appends never raise it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        archive_max_files: int = 5,
        archive_max_bytes: int = GiB,
        free_space_floor_bytes: int = 2 * GiB,
        free_check_every: int = 1024,
        disk_usage: DiskUsageFn = shutil.disk_usage,
    ) -> None:
        self._dir = Path(directory)
        self._path = self._dir / ACTIVE_NAME
        self._archive_max_files = archive_max_files
        self._archive_max_bytes = archive_max_bytes
        self._floor = free_space_floor_bytes
        self._check_every = max(1, free_check_every)
        self._disk_usage = disk_usage
        self._fd: int | None = None
        self._size = 0  # bytes of whole records in the active file
        self._offsets = array("Q")  # byte offset of every stored record, in file order
        self._runs: list[_Run] = []
        self._start_idx = 0
        self._next_idx = 0
        self._mode: LogMode = "persisting"
        self._since_check = 0
        self._closed = False
        self._warned_corrupt = False
        self._open_fresh()
        self._check_space()

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def mode(self) -> LogMode:
        return self._mode

    @property
    def start_idx(self) -> int:
        return self._start_idx

    @property
    def next_idx(self) -> int:
        return self._next_idx

    @property
    def persisted_count(self) -> int:
        """Records actually on disk (fewer than len() after a counting-only spell)."""
        return len(self._offsets)

    @property
    def active_bytes(self) -> int:
        """Bytes of whole records in the active file (0 while it cannot be written)."""
        return self._size if self._fd is not None else 0

    def __len__(self) -> int:
        return self._next_idx - self._start_idx

    def archives(self) -> list[Path]:
        return archive_paths(self._dir)

    def bytes_on_disk(self) -> int:
        """The active file plus this log's archives."""
        total = 0
        for path in [self._path, *self.archives()]:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def append(self, event: IndexedEvent) -> None:
        """Store `event` (or only count it); indices must be contiguous."""
        if self._closed:
            raise ValueError("event log is closed")
        if self._next_idx == 0:
            self._start_idx = event.idx
        elif event.idx != self._next_idx:
            raise ValueError(f"event index {event.idx} does not follow {self._next_idx - 1}")
        self._since_check += 1
        if self._since_check >= self._check_every:
            self._since_check = 0
            self._check_space()
        if self._mode == "persisting":
            self._persist(event)
        self._next_idx = event.idx + 1

    def set_free_space_floor(self, floor_bytes: int) -> None:
        """A new floor (a live config change); the next append measures the disk against it."""
        self._floor = floor_bytes
        self._since_check = self._check_every

    def skip_to(self, idx: int) -> None:
        """Pass over the indices before `idx` without storing them (a gap, like a counting spell)."""
        if self._closed:
            raise ValueError("event log is closed")
        if idx > self._next_idx:
            if self._next_idx == 0:
                self._start_idx = idx  # an empty log starts where its first stored event will
            self._next_idx = idx

    def _persist(self, event: IndexedEvent) -> None:
        assert self._fd is not None
        payload = codec.encode(event)
        frame = _HEADER.pack(len(payload)) + payload
        try:
            _write_all(self._fd, frame)
        except OSError as exc:
            self._restore_size()  # cut a partly written record, best effort
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            self._degrade(f"write failed ({name}: {exc.strerror})")
            return
        run = self._runs[-1] if self._runs else None
        if run is None or run.first_idx + run.count != event.idx:
            run = _Run(event.idx, len(self._offsets), 0)
            self._runs.append(run)
        run.count += 1
        self._offsets.append(self._size)
        self._size += len(frame)

    def close(self) -> None:
        """Release the file. The next log opened on this directory archives it."""
        self._closed = True
        self._close_fd()

    def __enter__(self) -> "DiskEventLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read_range(self, start: int, end: int | None = None) -> list[IndexedEvent]:
        """Stored events with start <= idx < end, in order, stopping at an unreadable record."""
        end = self._next_idx if end is None else min(end, self._next_idx)
        out: list[IndexedEvent] = []
        if self._fd is None:
            return out
        for run in self._runs:
            lo, hi = max(start, run.first_idx), min(end, run.first_idx + run.count)
            if lo < hi and not self._read_slice(run, lo, hi, out):
                break
        return out

    def _read_slice(self, run: _Run, lo: int, hi: int, out: list[IndexedEvent]) -> bool:
        assert self._fd is not None
        first = run.first_pos + (lo - run.first_idx)
        begin, stop = self._offsets[first], self._end_of(first + (hi - lo))
        try:
            buf = os.pread(self._fd, stop - begin, begin)
        except OSError as exc:
            log.warning("event log %s: read failed: %s", self._dir, exc)
            return False
        expected = lo
        for payload in iter_frames(buf):
            try:
                event = codec.decode(payload, IndexedEvent)
            except CodecError:
                break
            if event.idx != expected:
                break
            out.append(event)
            expected += 1
        if expected != hi and not self._warned_corrupt:
            self._warned_corrupt = True
            log.warning("event log %s: unreadable record at index %d", self._dir, expected)
        return expected == hi

    def _end_of(self, pos: int) -> int:
        """Byte offset where the record at `pos` starts, or the end of data."""
        return self._offsets[pos] if pos < len(self._offsets) else self._size

    def compact(self, keep_last: int) -> bool:
        """Keep only indices >= next_idx - keep_last, with their absolute indices.

        The tail goes to a temp file that is renamed over the active one; on any failure the
        log is left as it was and False is returned.
        """
        if keep_last < 0:
            raise ValueError("keep_last must be >= 0")
        new_start = max(self._start_idx, self._next_idx - keep_last)
        if self._fd is None:
            self._start_idx = new_start
            return True
        kept = self._clip_runs(new_start)
        tmp = self._path.with_name(ACTIVE_NAME + _TMP_SUFFIX)
        try:
            fd, offsets, runs, size = self._write_compacted(kept, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("event log %s: compaction abandoned: %s", self._dir, exc)
            return False
        self._close_fd()
        self._fd, self._offsets, self._runs, self._size = fd, offsets, runs, size
        self._start_idx = new_start
        return True

    def _clip_runs(self, new_start: int) -> list[_Run]:
        kept = []
        for run in self._runs:
            skip = max(0, new_start - run.first_idx)
            if skip < run.count:
                kept.append(_Run(run.first_idx + skip, run.first_pos + skip, run.count - skip))
        return kept

    def _write_compacted(self, kept: list[_Run], tmp: Path) -> tuple[int, array, list[_Run], int]:
        """Copy the kept records into `tmp`, rename it into place, return its open fd."""
        assert self._fd is not None
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        offsets, runs, size = array("Q"), [], 0
        try:
            for run in kept:
                last = run.first_pos + run.count
                begin, stop = self._offsets[run.first_pos], self._end_of(last)
                runs.append(_Run(run.first_idx, len(offsets), run.count))
                offsets.extend(o - begin + size for o in self._offsets[run.first_pos:last])
                copy_range(self._fd, fd, begin, stop, _write_all)
                size += stop - begin
            os.fsync(fd)
            os.replace(tmp, self._path)
        except BaseException:
            os.close(fd)
            raise
        return fd, offsets, runs, size

    def _open_fresh(self) -> bool:
        """Archive any leftover active file and open an empty one; False if the disk refused."""
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            remove_temp_files(self._path)
            self._archive_active()
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as exc:
            self._degrade(f"cannot open {self._path}: {exc}")
            return False
        self._fd, self._size = fd, 0
        self._offsets, self._runs = array("Q"), []
        return True

    def _archive_active(self) -> None:
        # _compress_into_archive is looked up here at call time so tests can break it
        archive_leftover(self._path, max_files=self._archive_max_files, max_bytes=self._archive_max_bytes,
                         compress=_compress_into_archive)

    def _check_space(self) -> None:
        try:
            free = self._disk_usage(self._dir).free
        except OSError as exc:
            self._degrade(f"cannot measure free space: {exc}")
            return
        if free < self._floor:
            self._degrade(f"free space {free} B is below the {self._floor} B floor")
        elif self._mode == "counting_only":
            self._resume()

    def _degrade(self, reason: str) -> None:
        if self._mode == "persisting":
            log.critical("event log %s: %s; only counting events from index %d",
                         self._dir, reason, self._next_idx)
            self._since_check = 0  # wait a full interval before trying the disk again
        self._mode = "counting_only"

    def _resume(self) -> None:
        if self._closed:
            return
        if self._fd is None:
            if not self._open_fresh():
                return
        elif not self._restore_size():
            return
        self._mode = "persisting"
        log.warning("event log %s: persisting again from index %d", self._dir, self._next_idx)

    def _restore_size(self) -> bool:
        """Cut the active file back to its last whole record."""
        assert self._fd is not None
        try:
            if os.fstat(self._fd).st_size != self._size:
                os.ftruncate(self._fd, self._size)
        except OSError:
            return False
        return True

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
