"""Pure push batching: the next batch for a follower, bounded in events and in bytes."""

from collections import deque
from collections.abc import Callable

from skulk.types import events as ev

PUSH_BATCH_LIMIT = 2_000
PUSH_BATCH_BYTES = 4 * 1024 * 1024  # well under a network frame's limit


def take_batch(pending: deque, size_of: Callable[[ev.IndexedEvent], int], *,
               max_events: int = PUSH_BATCH_LIMIT, max_bytes: int = PUSH_BATCH_BYTES) -> list[ev.IndexedEvent]:
    """Pop the next batch off `pending`: at least one event, a snapshot always alone."""
    first = pending.popleft()
    if isinstance(first.event, ev.StateSnapshotHydrated):
        return [first]  # never sized: encoding a whole state just to measure it costs too much
    batch, total = [first], size_of(first)
    while pending and len(batch) < max_events and not isinstance(pending[0].event, ev.StateSnapshotHydrated):
        size = size_of(pending[0])
        if total + size > max_bytes:
            break
        batch.append(pending.popleft())
        total += size
    return batch
