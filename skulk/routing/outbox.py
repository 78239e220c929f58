"""Pure at-least-once outbox: per-origin sequence numbers, retry until seen indexed."""

from dataclasses import dataclass, field

from skulk.types.events import IndexedEvent


@dataclass
class Pending:
    origin_idx: int
    event: object
    first_sent: float | None = None
    last_sent: float | None = None


@dataclass
class Outbox:
    origin: str
    retry_after: float = 2.0
    give_up_after: float = 30.0
    next_origin_idx: int = 0
    pending: dict[str, Pending] = field(default_factory=dict)  # by event id
    given_up: int = 0

    def add(self, event) -> None:
        self.pending[event.event_id] = Pending(self.next_origin_idx, event)
        self.next_origin_idx += 1

    def due(self, now: float) -> list[tuple[int, list]]:
        """Contiguous runs (first origin idx, events) to (re)send now; marks them sent."""
        due: list[Pending] = []
        for eid, p in list(self.pending.items()):
            if p.first_sent is not None and now - p.first_sent > self.give_up_after:
                del self.pending[eid]
                self.given_up += 1
            elif p.last_sent is None or now - p.last_sent >= self.retry_after:
                due.append(p)
        for p in due:
            p.first_sent = now if p.first_sent is None else p.first_sent
            p.last_sent = now
        return _runs(sorted(due, key=lambda p: p.origin_idx))

    def acknowledge(self, indexed: list[IndexedEvent]) -> None:
        for ie in indexed:
            self.pending.pop(ie.event.event_id, None)
            # An event the master consumed into another (TracesCollected -> TracesMerged).
            for consumed in getattr(ie.event, "consumed_event_ids", ()):
                self.pending.pop(consumed, None)


def _runs(items: list[Pending]) -> list[tuple[int, list]]:
    runs: list[tuple[int, list]] = []
    for p in items:
        if runs and runs[-1][0] + len(runs[-1][1]) == p.origin_idx:
            runs[-1][1].append(p.event)
        else:
            runs.append((p.origin_idx, [p.event]))
    return runs
