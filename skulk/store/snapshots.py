"""Master State snapshots on disk: `snapshot.<masterId>.<clock>.<idx>.json.zst`.

A snapshot is zstd-compressed JSON of State (the gossip encoding, camelCase and tagged),
written to a temp file that is renamed into place, so a reader sees a whole file or none. The
newest few are kept ("newest" is by modification time, then election clock, then index).
Synchronous file work: callers run it in a worker thread.
"""

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import NamedTuple

import zstandard

from skulk import codec
from skulk.models.atomic import write_file_atomically
from skulk.types.state import State

log = logging.getLogger(__name__)

SNAPSHOT_DIR_NAME = "snapshots"
_NAME = re.compile(r"^snapshot\.(?P<master>[^.]+)\.(?P<clock>\d+)\.(?P<idx>\d+)\.json\.zst$")
_TMP_SUFFIX = ".tmp"
_ZSTD_LEVEL = 3


class SnapshotFile(NamedTuple):
    path: Path
    clock: int
    idx: int
    mtime_ns: int


def snapshot_name(master_id: str, clock: int, idx: int) -> str:
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", master_id) or "_"
    return f"snapshot.{safe_id}.{clock}.{idx}.json.zst"


def write_snapshot(directory: Path, state: State, *, master_id: str, clock: int, keep: int) -> Path:
    """Write `state` atomically, then prune to the newest `keep`.

    Raises OSError (a full disk, a read-only volume) and leaves no partial file behind.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / snapshot_name(master_id, clock, state.last_event_applied_idx)
    data = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(codec.encode_json(state))
    write_file_atomically(path, data)
    _fsync_dir(directory)
    prune_snapshots(directory, keep)
    return path


def list_snapshots(directory: Path) -> list[SnapshotFile]:
    """Well-named snapshot files, newest first; [] when the folder is missing or unreadable."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is None:
            continue
        with contextlib.suppress(OSError):
            found.append(SnapshotFile(Path(entry.path), int(match["clock"]), int(match["idx"]),
                                      entry.stat().st_mtime_ns))
    found.sort(key=lambda s: (s.mtime_ns, s.clock, s.idx), reverse=True)
    return found


def prune_snapshots(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` snapshots, and leftover temp files (best effort)."""
    for old in list_snapshots(directory)[max(0, keep):]:
        with contextlib.suppress(OSError):
            old.path.unlink()
    with contextlib.suppress(OSError):
        for tmp in Path(directory).glob(f".snapshot.*{_TMP_SUFFIX}"):  # write_file_atomically's temp names
            with contextlib.suppress(OSError):
                tmp.unlink()


def load_latest_snapshot(directory: Path) -> tuple[int, State] | None:
    """The newest snapshot that reads back whole, as (idx, State); None if there is none.

    A corrupt, truncated or mislabelled file is skipped with a log line; this never raises.
    """
    for snap in list_snapshots(directory):
        try:
            state = read_snapshot(snap.path)
        except Exception as exc:  # noqa: BLE001 - any bad file is skipped, never fatal
            log.warning("snapshot %s unreadable, skipped: %s", snap.path.name, exc)
            continue
        if state.last_event_applied_idx != snap.idx:
            log.warning("snapshot %s holds index %d, skipped", snap.path.name, state.last_event_applied_idx)
            continue
        return snap.idx, state
    return None


def read_snapshot(path: Path) -> State:
    """Decode one snapshot file; raises OSError, zstandard.ZstdError or CodecError."""
    raw = zstandard.ZstdDecompressor().decompress(Path(path).read_bytes())
    return codec.decode_json(raw, State)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows it (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
