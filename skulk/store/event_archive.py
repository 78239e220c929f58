"""The event log's file format and archives: record framing, torn-tail repair, zstd archives.

A record is a 4-byte big-endian length + a codec frame of an IndexedEvent. A leftover active
file becomes `events.<UTC stamp>[.<n>].bin.zst`; archives are pruned, oldest first, to a count
and a byte budget. Synchronous file work only; DiskEventLog decides when.
"""

import errno
import logging
import os
import struct
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import zstandard

from skulk import codec
from skulk.errors import CodecError
from skulk.types.events import IndexedEvent

log = logging.getLogger(__name__)

HEADER = struct.Struct(">I")
TMP_SUFFIX = ".tmp"
ARCHIVE_GLOB = "events.*.bin.zst"
_ZSTD_LEVEL = 3
_COPY_CHUNK = 8 * 1024 * 1024

WriteFn = Callable[[int, bytes], None]
CompressFn = Callable[[Path, Path], Path]


def iter_frames(buf: bytes) -> Iterator[memoryview]:
    """The payload of each whole record in `buf`, stopping at a torn one."""
    view, pos = memoryview(buf), 0
    while pos + HEADER.size <= len(view):
        (length,) = HEADER.unpack_from(view, pos)
        end = pos + HEADER.size + length
        if length == 0 or end > len(view):
            return
        yield view[pos + HEADER.size:end]
        pos = end


def valid_prefix(path: Path) -> int:
    """Bytes of whole records at the start of `path`; the last one must also decode."""
    good = last = 0
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while good + HEADER.size <= size:
            f.seek(good)
            (length,) = HEADER.unpack(f.read(HEADER.size))
            if length == 0 or good + HEADER.size + length > size:
                break
            last, good = good, good + HEADER.size + length
        if good:
            f.seek(last + HEADER.size)
            try:
                codec.decode(f.read(good - last - HEADER.size), IndexedEvent)
            except CodecError:
                good = last
    return good


def _archive_key(path: Path) -> tuple[str, int]:
    # events.<stamp>[.<n>].bin.zst; <n> only disambiguates archives made in the same microsecond
    stamp, _, n = path.name[len("events."):-len(".bin.zst")].partition(".")
    return stamp, int(n) if n.isdigit() else 0


def archive_paths(directory: Path) -> list[Path]:
    """The archived logs in `directory`, oldest first."""
    return sorted(Path(directory).glob(ARCHIVE_GLOB), key=_archive_key)


def _new_archive_path(directory: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path, n = directory / f"events.{stamp}.bin.zst", 0
    while path.exists():
        n += 1
        path = directory / f"events.{stamp}.{n}.bin.zst"
    return path


def compress_into_archive(source: Path, directory: Path) -> Path:
    """zstd `source` into a new archive (via a temp name), then delete `source`."""
    target = _new_archive_path(directory)
    tmp = target.with_name(target.name + TMP_SUFFIX)
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            zstandard.ZstdCompressor(level=_ZSTD_LEVEL).copy_stream(src, dst)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    source.unlink()
    return target


def prune_archives(directory: Path, max_files: int, max_bytes: int) -> None:
    """Delete the oldest archives until both the count and the byte budget hold."""
    archives = archive_paths(directory)
    sizes = [p.stat().st_size for p in archives]
    total = sum(sizes)
    while archives and (len(archives) > max_files or total > max_bytes):
        archives.pop(0).unlink(missing_ok=True)
        total -= sizes.pop(0)


def remove_temp_files(active: Path) -> None:
    """Leftovers of an interrupted compaction or archiving."""
    for stale in [active.with_name(active.name + TMP_SUFFIX), *active.parent.glob(ARCHIVE_GLOB + TMP_SUFFIX)]:
        stale.unlink(missing_ok=True)


def archive_leftover(active: Path, *, max_files: int, max_bytes: int,
                     compress: CompressFn = compress_into_archive) -> None:
    """Archive `active` (cut back to its whole records; an empty one is deleted), then prune."""
    directory = active.parent
    if active.exists():
        valid = valid_prefix(active)
        if valid < active.stat().st_size:
            log.warning("event log %s: dropping a torn tail after byte %d", directory, valid)
            os.truncate(active, valid)
        if valid == 0:
            active.unlink()
        else:
            archived = compress(active, directory)
            log.info("event log %s: archived the last session as %s", directory, archived.name)
    prune_archives(directory, max_files, max_bytes)


def copy_range(src_fd: int, out_fd: int, begin: int, stop: int, write: WriteFn) -> None:
    """Copy bytes [begin, stop) of `src_fd` to `out_fd` in bounded chunks."""
    while begin < stop:
        chunk = os.pread(src_fd, min(_COPY_CHUNK, stop - begin), begin)
        if not chunk:
            raise OSError(errno.EIO, "event log shorter than its index")
        write(out_fd, chunk)
        begin += len(chunk)
