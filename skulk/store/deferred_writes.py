"""Appends that wait in memory while a worker thread holds the log.

A disk log's slow jobs (compaction, reopening, long reads) run in a worker thread one at a time;
whatever is appended meanwhile is queued and written, in order, as soon as the job ends. The
append itself stays a small synchronous write on the event loop.
"""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")


class DeferredWrites(Generic[T]):
    """Calls `write(item)` now, or later if a worker-thread job holds the log."""

    def __init__(self, write: Callable[[T], None]) -> None:
        self._write = write
        self._pending: list[T] = []
        self._busy = False
        self._held = False
        self.lock = trio.Lock()  # one worker-thread job at a time (hold it to run several in a row)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def pending(self) -> int:
        return len(self._pending)

    def hold(self) -> None:
        """Queue appends from now on, until release() or the end of the next run_in_thread job."""
        self._held = True

    def release(self) -> None:
        self._held = False

    def append(self, item: T) -> None:
        if self._busy or self._held:
            self._pending.append(item)
        else:
            self._write(item)

    async def run_in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in a worker thread (never abandoned), then write what waited.

        The thread may use the log freely: no append reaches it until `fn` returns.
        """
        async with self.lock:
            try:
                return await self.in_thread(fn, *args)
            finally:
                self._held = False
                self.flush()

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Like run_in_thread, for a caller holding `lock`: appends wait until it calls flush()."""
        self._busy = True
        try:
            return await trio.to_thread.run_sync(fn, *args)
        finally:
            self._busy = False

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for item in pending:
            self._write(item)

    def discard(self) -> None:
        """Drop what waits unwritten."""
        self._pending.clear()
