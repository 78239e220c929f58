"""The staging root on disk: one `<org>--<name>` dir per staged model, partial copies under
`.partial/`, and a `.last_used` marker (holding the model id) in each finished model dir.

Blocking file-system code; callers run it in a thread.
"""

import logging
import os
import shutil
import time
from pathlib import Path

from skulk.store.eviction import StagedModel
from skulk.types.ids import model_dir_name

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
LAST_USED = ".last_used"


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed while we walked
    return total


def touch_last_used(model_dir: Path, model_id: str) -> None:
    marker = model_dir / LAST_USED
    marker.write_text(model_id)
    now = time.time()
    os.utime(marker, (now, now))


def _staged_model(child: Path) -> StagedModel:
    marker = child / LAST_USED
    try:
        model_id = marker.read_text().strip() or child.name.replace("--", "/", 1)
        last_used = marker.stat().st_mtime
    except OSError:
        model_id, last_used = child.name.replace("--", "/", 1), child.stat().st_mtime
    return StagedModel(model_id=model_id, directory=str(child), size_bytes=dir_size(child), last_used=last_used)


def scan_staging(root: Path) -> list[StagedModel]:
    """Every finished staged model under `root` (partial copies are not models yet)."""
    if not root.is_dir():
        return []
    models = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            try:
                models.append(_staged_model(child))
            except OSError:
                continue  # deleted while we looked
    return models


def partial_dirs(root: Path) -> dict[str, Path]:
    """Unfinished copies by directory name (`<org>--<name>`)."""
    base = root / PARTIAL_DIR
    if not base.is_dir():
        return {}
    return {child.name: child for child in base.iterdir() if child.is_dir()}


def remove_dir(path: Path) -> None:
    """Delete a staged copy: rename it aside first, so a reader never sees it half-deleted."""
    path = Path(path)
    if not path.exists():
        return
    trash = path.parent / f".deleting-{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_partials(root: Path, keep_models: set[str], only_model: str | None = None) -> list[str]:
    """Delete partial copies (of `only_model`, or of any model) not in `keep_models`; returns
    the dir names removed."""
    keep = {model_dir_name(m) for m in keep_models}
    removed = []
    for name, path in partial_dirs(root).items():
        if name not in keep and (only_model is None or name == model_dir_name(only_model)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    for leftover in root.glob(".deleting-*") if root.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)  # a delete cut short by a crash
    return removed
