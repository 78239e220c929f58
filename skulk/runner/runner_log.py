"""Per-runner log files: a runner process's stderr copied to `<dir>/<runner_id>.log`.

The file rotates by size (`.log.1` ... `.log.N`, oldest dropped) and every process start, and
every new file, begins with a header line naming the instance, model, rank and pid. The janitor
deletes files not written for `retention_days`. Writes are small, buffered, and flushed once per
chunk read from the pipe; a disk error turns the file off (logged once), never the runner.
"""

import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO


log = logging.getLogger(__name__)

MIB = 1 << 20
DAY_S = 86400.0
LOG_SUFFIX = ".log"
STALE_CHECK_S = 60.0  # after this long without a write, check the janitor has not removed the file
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_LOG_NAME = re.compile(r".*\.log(\.\d+)?$")


@dataclass(frozen=True)
class RunnerLogConfig:
    """Where runner log files go and how big they grow before rotating."""

    directory: Path
    max_bytes: int = 10 * MIB
    backups: int = 3

    def path_for(self, runner_id: str) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', runner_id) or '_'}{LOG_SUFFIX}"


def should_rotate(size: int, incoming: int, max_bytes: int) -> bool:
    """Rotate before a write that would take a non-empty file past max_bytes."""
    return size > 0 and size + incoming > max_bytes


def backup_paths(path: Path, backups: int) -> list[Path]:
    """path.1 (newest) .. path.N (oldest): where rotated files go."""
    return [path.with_name(f"{path.name}.{i}") for i in range(1, backups + 1)]


def rotate_files(path: Path, backups: int) -> None:
    """Shift path -> path.1 -> ... -> path.N; what falls off the end (or path, with no backups) goes."""
    names = backup_paths(path, backups)
    if not names:
        path.unlink(missing_ok=True)
        return
    names[-1].unlink(missing_ok=True)
    for older, newer in zip(reversed(names[1:]), reversed(names[:-1]), strict=True):
        if newer.exists():
            newer.rename(older)
    path.rename(names[0])


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RunnerLogFile:
    """One runner's log file; without a config every call does nothing and `path` is None."""

    def __init__(self, config: RunnerLogConfig | None, runner_id: str, **header: object):
        self.path = config.path_for(runner_id) if config is not None else None
        self._config = config
        self._header = " ".join([f"runner={runner_id}", *(f"{k}={v}" for k, v in header.items())])
        self._file: BinaryIO | None = None
        self._size = 0
        self._last_write = 0.0
        self._pid: int | None = None

    def start(self, pid: int) -> None:
        """A process started: the next line opens the file (or starts a new one) with a header."""
        self.close()
        self._pid = pid

    def write(self, line: str) -> None:
        if self._config is None:
            return
        try:
            self._reopen_if_removed()
            if self._file is None:
                self._open()
            data = f"{_stamp()} {line}\n".encode(errors="replace")
            if should_rotate(self._size, len(data), self._config.max_bytes):
                self._file.close()
                rotate_files(self.path, self._config.backups)
                self._open()
            self._put(data)
        except OSError as exc:
            self._disable(exc)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                self._disable(exc)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                log.warning("runner log %s: %s", self.path, exc)
            self._file = None

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across writes, closed in close()
        self._size = self._file.tell()
        self._put(f"{_stamp()} ==== {self._header} pid={self._pid}\n".encode(errors="replace"))

    def _put(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)
        self._last_write = time.monotonic()

    def _reopen_if_removed(self) -> None:
        # A runner quiet for longer than the retention may have had its open file pruned.
        if self._file is not None and time.monotonic() - self._last_write > STALE_CHECK_S:
            if os.fstat(self._file.fileno()).st_nlink == 0:
                self.close()

    def _disable(self, exc: OSError) -> None:
        log.warning("runner log %s disabled: %s", self.path, exc)
        self._config = None
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


# ----- the janitor -----

def expired_logs(files: Iterable[tuple[Path, float]], retention_days: float, now: float) -> list[Path]:
    """The janitor's decision, from (path, mtime) pairs; retention <= 0 keeps everything."""
    if retention_days <= 0:
        return []
    return [path for path, mtime in files if now - mtime > retention_days * DAY_S]


def prune_old_runner_logs(directory: Path, retention_days: float, now: float) -> list[Path]:
    """Delete runner log files (current and rotated) not written within the retention."""
    if retention_days <= 0 or not directory.is_dir():
        return []
    files = []
    for path in directory.iterdir():
        try:
            if _LOG_NAME.fullmatch(path.name) and path.is_file():
                files.append((path, path.stat().st_mtime))
        except OSError:
            continue  # gone meanwhile
    removed = []
    for path in expired_logs(files, retention_days, now):
        try:
            path.unlink()
            removed.append(path)
        except OSError as exc:
            log.warning("runner log janitor could not remove %s: %s", path, exc)
    return removed
