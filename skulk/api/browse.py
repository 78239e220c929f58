"""Directory listing for the dashboard's folder picker (GET /filesystem/browse), confined to a few roots.

Blocking file-system calls: run `list_directories` in a worker thread.
"""

import os
from pathlib import Path
from typing import Any

from skulk.errors import BadRequest, NotFound, SkulkError

ALLOWED_ROOTS = ("/Volumes", "/home", "/mnt", "/tmp", "/opt")
MAX_DIRECTORIES = 1000
MAX_SCANNED = 20_000  # entries read from one directory before giving up on the rest


class Forbidden(SkulkError):
    status = 403


def _resolved_roots(roots: tuple[str, ...]) -> list[Path]:
    # Resolved too: on macOS /tmp is a link to /private/tmp.
    return [Path(r).resolve() for r in roots]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def checked_path(raw: str | None, roots: tuple[str, ...] = ALLOWED_ROOTS) -> Path:
    """The real (symlinks and `..` resolved) directory `raw` names, if it lies under a root."""
    if not raw:
        raise BadRequest("Query parameter 'path' is required", param="path")
    if "\x00" in raw or not raw.startswith("/"):
        raise BadRequest(f"Path must be absolute: {raw!r}", param="path")
    try:
        real = Path(raw).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise BadRequest(f"Invalid path {raw!r}: {exc}", param="path") from exc
    if not _inside(real, _resolved_roots(roots)):
        raise Forbidden(f"Path {raw!r} is outside the browsable roots {', '.join(roots)}", param="path")
    return real


def _subdirectories(directory: Path, roots: list[Path]) -> tuple[list[dict[str, str]], bool]:
    found: list[dict[str, str]] = []
    truncated = False
    with os.scandir(directory) as entries:
        for scanned, entry in enumerate(entries):
            if scanned >= MAX_SCANNED:
                truncated = True
                break
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_dir():
                    continue
                # A link to a folder outside the roots would only lead to a 403: leave it out.
                if entry.is_symlink() and not _inside(Path(entry.path).resolve(), roots):
                    continue
            except OSError:
                continue
            found.append({"name": entry.name, "path": str(directory / entry.name)})
    found.sort(key=lambda d: (d["name"].lower(), d["name"]))
    if len(found) > MAX_DIRECTORIES:
        found, truncated = found[:MAX_DIRECTORIES], True
    return found, truncated


def list_directories(raw: str | None, roots: tuple[str, ...] = ALLOWED_ROOTS) -> dict[str, Any]:
    """`{path, directories: [{name, path}], truncated}` for the folder `raw` (hidden ones skipped)."""
    directory = checked_path(raw, roots)
    try:
        if not directory.is_dir():
            raise NotFound(f"Not a directory: {raw}", param="path")
        found, truncated = _subdirectories(directory, _resolved_roots(roots))
    except PermissionError as exc:
        raise Forbidden(f"Permission denied: {raw}", param="path") from exc
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFound(f"Not a directory: {raw}", param="path") from exc
    except OSError as exc:
        raise BadRequest(f"Cannot list {raw}: {exc.strerror or exc}", param="path") from exc
    return {"path": str(directory), "directories": found, "truncated": truncated}
