"""Write one file so that readers, and a power cut, see either the old file or the whole new one.

The bytes go to a temp file in the same directory, are flushed and fsynced, the temp file is
renamed over the target, and the directory is fsynced so the rename itself is durable.
Imports nothing of ours: identity, incarnation, config, traces and models all use it.
"""

import contextlib
import os
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"  # temp names are `.<name>.<random>.tmp` (skulk.store.snapshots sweeps them)
DEFAULT_MODE = 0o600  # a new file is private unless the caller says otherwise


def fsync_dir(directory: Path) -> None:
    """Make a rename or create in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode_for(path: Path, mode: int | None) -> int:
    if mode is not None:
        return mode
    try:
        return os.stat(path).st_mode & 0o7777  # replacing a file keeps its permissions
    except OSError:
        return DEFAULT_MODE


def write_file_atomically(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Replace `path` with `data` durably. `mode` defaults to the old file's, or 0600 for a new one.
    If anything fails the temp file is removed and the old file is left as it was."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    file_mode = _mode_for(path, mode)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode)  # before any byte lands, so a secret is never readable
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
