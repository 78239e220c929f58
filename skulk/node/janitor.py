"""The housekeeping loop shared by the node's janitors (trace files, runner log files)."""

import logging
from collections.abc import Callable, Sized

import trio

from skulk.faults import count

log = logging.getLogger(__name__)

FIRST_DELAY_S = 60.0  # let start-up finish before touching the disk
INTERVAL_S = 3600.0


async def run_janitor(name: str, prune: Callable[[], Sized], *, first_delay: float = FIRST_DELAY_S,
                      interval: float = INTERVAL_S, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run `prune` (in a worker thread) a while after start, then every `interval`; it returns
    what it removed. A failing pass is logged, never fatal."""
    task_status.started()
    await trio.sleep(first_delay)
    while True:
        try:
            removed = await trio.to_thread.run_sync(prune)
            if removed:
                log.info("%s removed %d old file(s)", name, len(removed))
        except Exception as exc:  # noqa: BLE001 - housekeeping must never take the node down
            count("janitor.pass_failed", f"{name}: {type(exc).__name__}: {exc}")
        await trio.sleep(interval)
