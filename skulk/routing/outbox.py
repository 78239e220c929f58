"""Pure at-least-once outbox: per-origin sequence numbers, retried until seen indexed.

The master releases an origin's events strictly in origin-index order, so an event is never
given up on while later ones wait behind it: a missing index would stall the origin for good.
Retries back off up to `max_retry_after`. The outbox is bounded in count and bytes; past the
bound the oldest telemetry (then the oldest anything) is dropped and the origin resynchronised:
a new origin id, everything still pending renumbered from 0, so no gap is ever left.

The same strict order tells when to stop: once an event of ours is indexed, every earlier one
was released by the master too (indexed, merged into another, or refused there) and is dropped.
"""

from collections import deque
from dataclasses import dataclass, field, replace

from skulk.types.events import IndexedEvent, NodeDownloadProgress, NodeGatheredInfo

DROPPABLE = (NodeGatheredInfo, NodeDownloadProgress)  # superseded by the next report anyway


@dataclass
class Pending:
    origin_idx: int
    event: object
    size: int = 0
    first_sent: float | None = None
    last_sent: float | None = None
    tries: int = 0


@dataclass
class Outbox:
    origin: str
    retry_after: float = 2.0
    max_retry_after: float = 5.0
    max_events: int = 50_000
    max_bytes: int = 64 * 1024 * 1024
    batch_events: int = 500  # one LocalEvents message holds at most this many events...
    batch_bytes: int = 256 * 1024  # ...and about this many bytes (always at least one event)
    send_window: int = 8_000  # never more ahead of the oldest pending than the master holds per origin
    next_origin_idx: int = 0
    pending: dict[str, Pending] = field(default_factory=dict)  # by event id, in origin-idx order
    pending_bytes: int = 0
    dropped: int = 0  # events dropped to stay within the bounds
    resyncs: int = 0
    released_unindexed: int = 0  # released by the master without being indexed (refused, merged, stale)
    # This session's indexed events of ours, newest last: resent if the session is abandoned (see carried).
    confirmed: deque = field(default_factory=deque)
    confirmed_bytes: int = 0
    max_confirmed: int = 10_000
    max_confirmed_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        self._base_origin = self.origin

    def add(self, event, size: int = 0) -> None:
        """Queue `event` (`size`: its encoded size in bytes, as the caller estimates it)."""
        self.pending[event.event_id] = Pending(self.next_origin_idx, event, size)
        self.next_origin_idx += 1
        self.pending_bytes += size
        if len(self.pending) > self.max_events or self.pending_bytes > self.max_bytes:
            self._shed()

    def due(self, now: float) -> list[tuple[int, list]]:
        """Contiguous batches (first origin idx, events) to (re)send now; marks them sent."""
        oldest = min((p.origin_idx for p in self.pending.values()), default=0)
        due = [p for p in self.pending.values() if p.origin_idx < oldest + self.send_window
               and (p.last_sent is None or now - p.last_sent >= self._wait(p))]
        for p in due:
            p.first_sent = now if p.first_sent is None else p.first_sent
            p.last_sent = now
            p.tries += 1
        return self._batches(sorted(due, key=lambda p: p.origin_idx))

    def acknowledge(self, indexed: list[IndexedEvent]) -> None:
        released = -1
        for ie in indexed:
            if (p := self._forget(ie.event.event_id)) is not None:
                self._confirm(p)
                released = max(released, p.origin_idx)
            # An event the master consumed into another (TracesCollected -> TracesMerged).
            for consumed in getattr(ie.event, "consumed_event_ids", ()):
                if (p := self._forget(consumed)) is not None:
                    released = max(released, p.origin_idx)
        for eid, p in list(self.pending.items()):
            if p.origin_idx < released:  # released in order before an indexed one: never coming back
                self._forget(eid)
                self.released_unindexed += 1

    def _confirm(self, p: Pending) -> None:
        self.confirmed.append(p)
        self.confirmed_bytes += p.size
        while len(self.confirmed) > self.max_confirmed or self.confirmed_bytes > self.max_confirmed_bytes:
            self.confirmed_bytes -= self.confirmed.popleft().size

    def _wait(self, p: Pending) -> float:
        return min(self.retry_after * 2 ** max(p.tries - 1, 0), self.max_retry_after)

    def _forget(self, event_id: str) -> Pending | None:
        p = self.pending.pop(event_id, None)
        if p is not None:
            self.pending_bytes -= p.size
        return p

    def _shed(self) -> None:
        """Over a bound: drop the oldest droppable events (then the oldest of any kind), resync."""
        for droppable_only in (True, False):
            for eid, p in list(self.pending.items()):
                if len(self.pending) <= self.max_events and self.pending_bytes <= self.max_bytes:
                    break
                if droppable_only and not isinstance(p.event, DROPPABLE):
                    continue
                self._forget(eid)
                self.dropped += 1
        self.resync()

    def carried(self, origin: str, *, resend_confirmed: bool = False) -> "Outbox":
        """A new session's outbox: what this one still holds goes first, renumbered from 0; with
        `resend_confirmed`, so do the events this session indexed (it is abandoned, not taken over)."""
        box = replace(self, origin=origin, next_origin_idx=0, pending={}, pending_bytes=0, dropped=0, resyncs=0,
                      released_unindexed=0, confirmed=deque(), confirmed_bytes=0)
        earlier = list(self.confirmed) if resend_confirmed else []
        for p in [*earlier, *sorted(self.pending.values(), key=lambda p: p.origin_idx)]:
            box.add(p.event, p.size)
        return box

    def resync(self) -> None:
        """Start a new origin and renumber what is pending from 0: the old origin's gap is abandoned."""
        self.resyncs += 1
        self.origin = f"{self._base_origin}.r{self.resyncs}"  # still "<node id>/...", as the master requires
        ordered = sorted(self.pending.values(), key=lambda p: p.origin_idx)
        self.pending = {}
        for idx, p in enumerate(ordered):
            self.pending[p.event.event_id] = Pending(idx, p.event, p.size)
        self.next_origin_idx = len(ordered)

    def _batches(self, items: list[Pending]) -> list[tuple[int, list]]:
        batches: list[tuple[int, list]] = []
        size = 0
        for p in items:
            last = batches[-1] if batches else None
            if (last is not None and last[0] + len(last[1]) == p.origin_idx
                    and len(last[1]) < self.batch_events and size + p.size <= self.batch_bytes):
                last[1].append(p.event)
                size += p.size
            else:
                batches.append((p.origin_idx, [p.event]))
                size = p.size
        return batches
