"""Append-only event log on disk, one directory per log (event_log/master, event_log/api).

`events.bin` holds records of a 4-byte big-endian length + a codec frame of an IndexedEvent.
Indices are absolute and survive compaction; a leftover file is archived at startup.
Synchronous: an append is one small write; run `compact` off the event loop.
"""

import contextlib
import errno
import logging
import os
import shutil
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import zstandard

from skulk import codec
from skulk.errors import CodecError
from skulk.types.events import IndexedEvent

log = logging.getLogger(__name__)

GiB = 1024**3
ACTIVE_NAME = "events.bin"
_TMP_SUFFIX = ".tmp"
_ARCHIVE_GLOB = "events.*.bin.zst"
_HEADER = struct.Struct(">I")
_ZSTD_LEVEL = 3
_COPY_CHUNK = 8 * 1024 * 1024

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


def _iter_frames(buf: bytes) -> Iterator[memoryview]:
    """The payload of each whole record in `buf`, stopping at a torn one."""
    view, pos = memoryview(buf), 0
    while pos + _HEADER.size <= len(view):
        (length,) = _HEADER.unpack_from(view, pos)
        end = pos + _HEADER.size + length
        if length == 0 or end > len(view):
            return
        yield view[pos + _HEADER.size:end]
        pos = end


def _valid_prefix(path: Path) -> int:
    """Bytes of whole records at the start of `path`; the last one must also decode."""
    good = last = 0
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while good + _HEADER.size <= size:
            f.seek(good)
            (length,) = _HEADER.unpack(f.read(_HEADER.size))
            if length == 0 or good + _HEADER.size + length > size:
                break
            last, good = good, good + _HEADER.size + length
        if good:
            f.seek(last + _HEADER.size)
            try:
                codec.decode(f.read(good - last - _HEADER.size), IndexedEvent)
            except CodecError:
                good = last
    return good


def _archive_key(path: Path) -> tuple[str, int]:
    # events.<stamp>[.<n>].bin.zst; <n> only disambiguates archives made in the same microsecond
    stamp, _, n = path.name[len("events."):-len(".bin.zst")].partition(".")
    return stamp, int(n) if n.isdigit() else 0


def archive_paths(directory: Path) -> list[Path]:
    """The archived logs in `directory`, oldest first."""
    return sorted(Path(directory).glob(_ARCHIVE_GLOB), key=_archive_key)


def _new_archive_path(directory: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path, n = directory / f"events.{stamp}.bin.zst", 0
    while path.exists():
        n += 1
        path = directory / f"events.{stamp}.{n}.bin.zst"
    return path


def _compress_into_archive(source: Path, directory: Path) -> Path:
    """zstd `source` into a new archive (via a temp name), then delete `source`."""
    target = _new_archive_path(directory)
    tmp = target.with_name(target.name + _TMP_SUFFIX)
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            zstandard.ZstdCompressor(level=_ZSTD_LEVEL).copy_stream(src, dst)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    source.unlink()
    return target


def _prune_archives(directory: Path, max_files: int, max_bytes: int) -> None:
    """Delete the oldest archives until both the count and the byte budget hold."""
    archives = archive_paths(directory)
    sizes = [p.stat().st_size for p in archives]
    total = sum(sizes)
    while archives and (len(archives) > max_files or total > max_bytes):
        archives.pop(0).unlink(missing_ok=True)
        total -= sizes.pop(0)


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
        for payload in _iter_frames(buf):
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
                self._copy_range(fd, begin, stop)
                size += stop - begin
            os.fsync(fd)
            os.replace(tmp, self._path)
        except BaseException:
            os.close(fd)
            raise
        return fd, offsets, runs, size

    def _copy_range(self, out_fd: int, begin: int, stop: int) -> None:
        assert self._fd is not None
        while begin < stop:
            chunk = os.pread(self._fd, min(_COPY_CHUNK, stop - begin), begin)
            if not chunk:
                raise OSError(errno.EIO, "event log shorter than its index")
            _write_all(out_fd, chunk)
            begin += len(chunk)

    def _open_fresh(self) -> bool:
        """Archive any leftover active file and open an empty one; False if the disk refused."""
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            for stale in [self._path.with_name(ACTIVE_NAME + _TMP_SUFFIX),
                          *self._dir.glob(_ARCHIVE_GLOB + _TMP_SUFFIX)]:
                stale.unlink(missing_ok=True)
            self._archive_active()
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        except OSError as exc:
            self._degrade(f"cannot open {self._path}: {exc}")
            return False
        self._fd, self._size = fd, 0
        self._offsets, self._runs = array("Q"), []
        return True

    def _archive_active(self) -> None:
        if self._path.exists():
            valid = _valid_prefix(self._path)
            if valid < self._path.stat().st_size:
                log.warning("event log %s: dropping a torn tail after byte %d", self._dir, valid)
                os.truncate(self._path, valid)
            if valid == 0:
                self._path.unlink()
            else:
                archived = _compress_into_archive(self._path, self._dir)
                log.info("event log %s: archived the last session as %s", self._dir, archived.name)
        _prune_archives(self._dir, self._archive_max_files, self._archive_max_bytes)

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
