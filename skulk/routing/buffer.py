"""Pure ordering buffers for the event log. No trio, no clock, no I/O."""

from dataclasses import dataclass, field
from typing import Any

from skulk.types.events import IndexedEvent, StateSnapshotHydrated


@dataclass
class OriginBuffer:
    """Releases one origin's events in origin-index order, dropping duplicates."""

    next_idx: int = 0
    held: dict[int, Any] = field(default_factory=dict)
    duplicates: int = 0

    def ingest(self, origin_idx: int, item: Any) -> list[Any]:
        if origin_idx < self.next_idx or origin_idx in self.held:
            self.duplicates += 1
            return []
        self.held[origin_idx] = item
        released = []
        while self.next_idx in self.held:
            released.append(self.held.pop(self.next_idx))
            self.next_idx += 1
        return released


@dataclass
class MultiSourceBuffer:
    """One OriginBuffer per sender: the master's defence against retries and reordering."""

    origins: dict[str, OriginBuffer] = field(default_factory=dict)

    def ingest(self, origin: str, first_idx: int, items: list[Any]) -> list[Any]:
        buf = self.origins.setdefault(origin, OriginBuffer())
        released: list[Any] = []
        for offset, item in enumerate(items):
            released.extend(buf.ingest(first_idx + offset, item))
        return released

    @property
    def duplicates(self) -> int:
        return sum(b.duplicates for b in self.origins.values())


@dataclass
class IndexedBuffer:
    """Follower side: releases indexed events contiguously; a snapshot jumps ahead."""

    next_idx: int = 0
    held: dict[int, IndexedEvent] = field(default_factory=dict)

    def ingest(self, events: list[IndexedEvent]) -> list[IndexedEvent]:
        for ie in events:
            if isinstance(ie.event, StateSnapshotHydrated) and ie.idx >= self.next_idx:
                self.held = {i: e for i, e in self.held.items() if i > ie.idx}
                self.held[ie.idx] = ie
                self.next_idx = ie.idx
            elif ie.idx >= self.next_idx:
                self.held.setdefault(ie.idx, ie)
        released = []
        while self.next_idx in self.held:
            released.append(self.held.pop(self.next_idx))
            self.next_idx += 1
        return released

    def rewind(self, idx: int) -> None:
        """Forget everything from `idx` on (it did not apply): it will be asked for again."""
        if idx < self.next_idx:
            self.next_idx = idx
        self.held = {i: e for i, e in self.held.items() if i < idx}

    @property
    def has_gap(self) -> bool:
        return bool(self.held)
