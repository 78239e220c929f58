"""A per-home start counter: each start of a node gets a higher one than the last."""

import logging
from pathlib import Path

from skulk.atomic_files import write_file_atomically

log = logging.getLogger(__name__)


def next_incarnation(path: Path) -> int:
    """Read, bump and persist the counter. It seeds the election clock, so a restarted node
    never re-proposes the session id it led before it died."""
    try:
        previous = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    current = previous + 1
    try:
        write_file_atomically(path, f"{current}\n", mode=0o644)  # fsynced: a power cut must not undo it
    except OSError as exc:  # a read-only home still runs, just without the guarantee
        log.warning("could not persist %s: %s", path, exc)
    return current
