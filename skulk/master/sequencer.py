"""The master's pure indexing core: local events in, contiguous indexed events out."""

from dataclasses import dataclass, field
from datetime import datetime

from skulk.master.traces import TraceCollector
from skulk.routing.buffer import MultiSourceBuffer
from skulk.state.apply import apply
from skulk.types import events as ev
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

_TASK_EVENTS = (ev.TaskStatusUpdated, ev.TaskFailed, ev.TaskDeleted)


@dataclass
class Sequencer:
    """Assigns global indices, applies, and remembers a bounded tail for catch-up."""

    state: State = field(default_factory=State)
    tail: list[ev.IndexedEvent] = field(default_factory=list)
    tail_limit: int = 10_000
    buffer: MultiSourceBuffer = field(default_factory=MultiSourceBuffer)
    dropped: int = 0
    traces: TraceCollector = field(default_factory=TraceCollector)

    @property
    def next_idx(self) -> int:
        return self.state.last_event_applied_idx + 1

    def accept(self, origin: str, first_idx: int, events: list, now: datetime) -> list[ev.IndexedEvent]:
        """Events from one origin (possibly retried or out of order) -> newly indexed ones."""
        released = self.buffer.ingest(origin, first_idx, events)
        return [ie for e in released if (ie := self.index(e, now)) is not None]

    def index(self, event, now: datetime) -> ev.IndexedEvent | None:
        if isinstance(event, ev.TracesCollected):  # consumed here; only the merge is indexed
            event = self.traces.collect(self.state, event)
            if event is None:
                return None
        if isinstance(event, _TASK_EVENTS) and event.task_id not in self.state.tasks:
            self.dropped += 1  # caps amplification from stale task reports
            return None
        if isinstance(event, ev.NodeGatheredInfo):
            event = event.model_copy(update={"when": now})  # one clock orders liveness
        indexed = ev.IndexedEvent(idx=self.next_idx, event=event)
        self.state = apply(self.state, indexed)
        if isinstance(event, ev.TaskCreated):
            self.traces.expect(self.state, event.task_id)
        self.tail.append(indexed)
        if len(self.tail) > self.tail_limit:
            del self.tail[: len(self.tail) - self.tail_limit]
        return indexed

    def catch_up(self, next_idx: int) -> list[ev.IndexedEvent]:
        """What a node at `next_idx` needs: the missing range, or a snapshot if it fell off."""
        if next_idx >= self.next_idx:
            return []
        if self.tail and next_idx >= self.tail[0].idx:
            return self.tail[next_idx - self.tail[0].idx:]
        snapshot = ev.StateSnapshotHydrated(state=self.state)
        return [ev.IndexedEvent(idx=self.state.last_event_applied_idx, event=snapshot)]


def open_task_ids(state: State) -> list[str]:
    return [tid for tid, t in state.tasks.items() if t.task_status in (TaskStatus.Pending, TaskStatus.Running)]
