"""The staging root on disk: one `<org>--<name>` dir per staged model, partial copies under
`.partial/`, a `.skulk-staged` marker (holding the model id) in every dir the stager created,
and a `.last_used` file whose mtime says when the model was last used.

Only a real directory (never a symlink) whose marker names a valid model id whose dir name is
the directory's own name counts as staged; anything else under the root (a user's folder, a
file, a link, a copy from before markers) is never deleted and is logged once. Blocking
file-system code; callers run it in a thread.
"""

import logging
import os
import shutil
import stat
import time
from pathlib import Path

from skulk.atomic_files import write_file_atomically
from skulk.faults import count
from skulk.store.eviction import StagedModel
from skulk.types.ids import is_valid_model_id, model_dir_name

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
LAST_USED = ".last_used"
STAGED_MARKER = ".skulk-staged"
DELETING_PREFIX = ".deleting-"
_MARKER_MAX_BYTES = 512
_noted_unmanaged: set[str] = set()  # paths already logged as "not ours", so each is said once


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):  # never follows symlinked dirs
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed while we walked
    return total


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def write_marker(model_dir: Path, model_id: str) -> None:
    """Claim `model_dir` for the store: only dirs holding this marker are ever deleted."""
    write_file_atomically(Path(model_dir) / STAGED_MARKER, f"{model_id}\n", mode=0o644)


def read_marker(model_dir: Path) -> str | None:
    """The model id in the dir's marker, or None (no marker, a link, too big, not text)."""
    try:
        fd = os.open(Path(model_dir) / STAGED_MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, _MARKER_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _MARKER_MAX_BYTES:
        return None
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def staged_model_id(path: Path) -> str | None:
    """The model id of a dir the store created at `path`, or None if it is not one."""
    if not _is_real_dir(path):
        return None
    model_id = read_marker(path)
    if model_id is None or not is_valid_model_id(model_id) or model_dir_name(model_id) != Path(path).name:
        return None
    return model_id


def safe_dir_name(model_id: str) -> str | None:
    """`model_dir_name`, or None for an id that must not become a path (ids from state)."""
    return model_dir_name(model_id) if is_valid_model_id(model_id) else None


def note_unmanaged(path: Path) -> None:
    if str(path) not in _noted_unmanaged:
        _noted_unmanaged.add(str(path))
        log.warning("staging: leaving %s alone: it has no valid %s marker, so the store did not create it "
                    "(copies staged before markers existed stay until removed by hand)", path, STAGED_MARKER)


def touch_last_used(model_dir: Path, model_id: str) -> None:
    # Replaced by rename, so a planted symlink named .last_used is never written through.
    write_file_atomically(Path(model_dir) / LAST_USED, model_id, mode=0o644)
    now = time.time()
    os.utime(Path(model_dir) / LAST_USED, (now, now), follow_symlinks=False)


def _last_used(child: Path) -> float:
    for name in (LAST_USED, STAGED_MARKER):
        try:
            return os.lstat(child / name).st_mtime
        except OSError:
            continue
    return os.lstat(child).st_mtime


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(directory))
    except OSError:
        return []


def scan_staging(root: Path) -> list[StagedModel]:
    """Every finished model the store staged under `root` (partial copies are not models yet)."""
    models = []
    for child in _entries(root) if root.is_dir() else []:
        if child.name.startswith("."):
            continue  # .partial, .deleting-*, lock files: the store's own bookkeeping
        if (model_id := staged_model_id(child)) is None:
            note_unmanaged(child)
            continue
        try:
            models.append(StagedModel(model_id=model_id, directory=str(child), size_bytes=dir_size(child),
                                      last_used=_last_used(child)))
        except OSError:
            continue  # deleted while we looked
    return models


def unmanaged_entries(root: Path) -> list[str]:
    """Names under `root` the store did not create (it never deletes them), for the report."""
    return [c.name for c in (_entries(root) if root.is_dir() else [])
            if not c.name.startswith(".") and staged_model_id(c) is None]


def partial_dirs(root: Path) -> dict[str, Path]:
    """Unfinished copies the stager created, by directory name (`<org>--<name>`)."""
    base = root / PARTIAL_DIR
    if not _is_real_dir(base):
        return {}
    found = {}
    for child in _entries(base):
        if staged_model_id(child) is not None:
            found[child.name] = child
        else:
            note_unmanaged(child)
    return found


def _rmtree_marker_last(path: Path) -> None:
    """Delete a dir the store owns, its marker last, so a delete cut short is still recognised."""
    for child in _entries(path):
        if child.name == STAGED_MARKER:
            continue
        if _is_real_dir(child):
            shutil.rmtree(child, ignore_errors=True)  # rmtree never follows links inside
        else:
            child.unlink(missing_ok=True)
    (path / STAGED_MARKER).unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError as exc:
        log.warning("staging: could not finish deleting %s: %s", path, exc)


def remove_dir(path: Path, model_id: str) -> bool:
    """Delete the staged copy of `model_id` at `path`, if the store created it; renamed aside
    first, so a reader never sees it half-deleted. False (and counted) if it is not ours."""
    path = Path(path)
    if not os.path.lexists(path):
        return False
    if staged_model_id(path) != model_id:
        count("store.delete_refused", f"{path} is not a staged copy of {model_id!r}")
        note_unmanaged(path)
        return False
    trash = path.parent / f"{DELETING_PREFIX}{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    os.rename(path, trash)
    _rmtree_marker_last(trash)
    return True


def _is_our_leftover(path: Path) -> bool:
    model_id = read_marker(path) if _is_real_dir(path) else None
    return (model_id is not None and is_valid_model_id(model_id)
            and path.name.startswith(f"{DELETING_PREFIX}{model_dir_name(model_id)}-"))


def remove_partials(root: Path, keep_models: set[str], only_model: str | None = None) -> list[str]:
    """Delete the stager's partial copies (of `only_model`, or of any model) not in
    `keep_models`; returns the dir names removed."""
    keep = {name for m in keep_models if (name := safe_dir_name(m)) is not None}
    only = None if only_model is None else safe_dir_name(only_model)
    if only_model is not None and only is None:
        return []  # no partial copy can have that name
    removed = []
    for name, path in partial_dirs(root).items():
        if name not in keep and (only is None or name == only):
            _rmtree_marker_last(path)
            removed.append(name)
    for leftover in _entries(root) if root.is_dir() else []:
        if leftover.name.startswith(DELETING_PREFIX) and _is_our_leftover(leftover):
            _rmtree_marker_last(leftover)  # a delete cut short by a crash
    return removed
