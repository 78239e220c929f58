"""CrashBreaker: stop restarting an instance whose runners keep crashing.

Pure: every method takes `now` (seconds on any monotonic clock), so tests are plain
transcripts and the caller decides where time comes from.
"""

from collections import deque
from dataclasses import dataclass, field

DEFAULT_THRESHOLD = 3
DEFAULT_WINDOW_S = 60.0


@dataclass
class CrashBreaker:
    """Opens after `threshold` failures within `window_s`, then stays open until reset()."""

    threshold: int = DEFAULT_THRESHOLD
    window_s: float = DEFAULT_WINDOW_S
    _failures: deque[float] = field(default_factory=deque, repr=False)
    _opened_at: float | None = None

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window_s <= 0:
            raise ValueError("CrashBreaker needs threshold >= 1 and window_s > 0")

    def record_failure(self, now: float) -> bool:
        """Count one failure; True only for the failure that opens the breaker (the edge)."""
        self._forget_before(now - self.window_s)
        self._failures.append(now)
        if self._opened_at is None and len(self._failures) >= self.threshold:
            self._opened_at = now
            return True
        return False

    def is_open(self, now: float) -> bool:
        # Latched: a crash-looping instance is given up on, not retried when the window drains.
        return self._opened_at is not None

    def recent_failures(self, now: float) -> int:
        """Failures within the window ending at `now`."""
        return sum(1 for t in self._failures if now - self.window_s < t <= now)

    @property
    def opened_at(self) -> float | None:
        return self._opened_at

    def reset(self) -> None:
        """Close the breaker and forget its history (an operator asked to try again)."""
        self._failures.clear()
        self._opened_at = None

    def _forget_before(self, cutoff: float) -> None:
        while self._failures and self._failures[0] <= cutoff:
            self._failures.popleft()
