"""Fault isolation at the unit of work: a bad message, command or request is dropped,
counted by kind and logged at most once per interval; the service loop goes on.

Every service shell guards its per-item boundary with `isolate(kind)` (exceptions) or
`count(kind)` (input refused without an exception). `/metrics` and `/v1/diagnostics/node`
read `FAULTS.snapshot()`. Kinds are dotted: "<where>.<what>", e.g. "gossip.heartbeat".
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("skulk.faults")
LOG_INTERVAL_SECONDS = 60.0


class FaultCounters:
    def __init__(self, log_interval: float = LOG_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.counts: Counter[str] = Counter()
        self._log_interval = log_interval
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def count(self, kind: str, detail: str = "", *, exc: BaseException | None = None) -> None:
        """One unit of work of `kind` was dropped; logs the first and then one per interval."""
        self.counts[kind] += 1
        now = self._clock()
        last = self._last_logged.get(kind)
        if last is not None and now - last < self._log_interval:
            self._unlogged[kind] += 1
            return
        self._last_logged[kind] = now
        suppressed = self._unlogged.pop(kind, 0)
        more = f" (+{suppressed} more since last logged)" if suppressed else ""
        log.warning("dropped %s: %s%s", kind, detail or "no detail", more,
                    exc_info=exc if exc is not None and _is_bug(exc) else None)

    @contextmanager
    def isolate(self, kind: str) -> Iterator[None]:
        """Run one unit of work; an Exception ends only it (cancellation passes through)."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - this is the per-item boundary
            self.count(kind, f"{type(exc).__name__}: {exc}"[:500], exc=exc)

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def total(self, prefix: str = "") -> int:
        return sum(n for k, n in self.counts.items() if k.startswith(prefix))


def _is_bug(exc: BaseException) -> bool:
    # Input errors are expected from hostile peers; a traceback helps only for our own bugs.
    return not isinstance(exc, (ValueError, KeyError, LookupError))


FAULTS = FaultCounters()  # one per process: a node is one process


def isolate(kind: str):
    return FAULTS.isolate(kind)


def count(kind: str, detail: str = "") -> None:
    FAULTS.count(kind, detail)
