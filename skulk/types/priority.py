"""Request priority: high | normal | low. Queued requests are admitted in this order, FIFO within one."""

from typing import Literal

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")  # admission order
DEFAULT_PRIORITY: Priority = "normal"


def rank(priority: str | None) -> int:
    """0 admits first; an unknown or missing value counts as normal."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else PRIORITIES.index(DEFAULT_PRIORITY)  # type: ignore[arg-type]
