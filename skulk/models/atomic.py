"""Build a directory all at once: readers see either nothing or the finished directory.

A builder writes into a temporary sibling of the target, which is renamed into place only
after the builder returns. A per-target lock file (fcntl) serialises concurrent builders,
across processes, so two callers never interleave and the second one just finds the result.
"""

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from skulk.atomic_files import fsync_dir, write_file_atomically

log = logging.getLogger(__name__)

__all__ = ["build_dir_atomically", "target_lock", "write_file_atomically"]

_TMP_MARK = ".partial-"


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def target_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock for `target` (blocking). The kernel drops it if we die."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # The lock file stays behind on purpose: unlinking it would let a waiter lock a stale inode.
    fd = os.open(_lock_path(target), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remove_stale_partials(target: Path) -> None:
    """Delete temp dirs left by builders that crashed; safe because we hold the lock."""
    prefix = f".{target.name}{_TMP_MARK}"
    for entry in target.parent.iterdir():
        if entry.name.startswith(prefix) and entry.is_dir():
            log.warning("removing unfinished build %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    """Flush file contents so a power cut after the rename cannot expose empty files."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def build_dir_atomically(
    target: Path, builder: Callable[[Path], None], *, is_done: Callable[[Path], bool] | None = None
) -> Path:
    """Run `builder(tmp_dir)` and rename tmp_dir to `target`, unless `target` already exists.

    `is_done(target)` decides whether an existing target counts as finished (default: it
    exists). Returns `target`. If the builder raises, the temp dir is removed and the
    exception propagates; `target` is untouched.
    """
    done = is_done or (lambda p: p.is_dir())
    target = Path(target)
    if done(target):
        return target
    with target_lock(target):
        if done(target):  # another process finished while we waited for the lock
            return target
        _remove_stale_partials(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{_TMP_MARK}", dir=target.parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it owner-only; the model dir is shared read-only
            builder(tmp)
            _fsync_tree(tmp)
            if target.exists():
                # Not finished by `is_done`'s standard (a leftover); replace it whole.
                shutil.rmtree(target)
            os.rename(tmp, target)
            fsync_dir(target.parent)  # the rename itself survives a power cut
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
