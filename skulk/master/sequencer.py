"""The master's pure indexing core: local events in, contiguous indexed events out."""

from dataclasses import dataclass, field
from datetime import datetime

from skulk.master.authorize import authorize_event, origin_problem
from skulk.master.traces import TraceCollector
from skulk.routing.buffer import MultiSourceBuffer
from skulk.state.apply import apply
from skulk.types import events as ev
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

_TASK_EVENTS = (ev.TaskStatusUpdated, ev.TaskFailed, ev.TaskDeleted)
ORIGINS_PER_PEER = 4  # a node opens one origin per session; more are a peer flooding us
MAX_AHEAD = 10_000  # origin indices held waiting for a gap to fill, per origin


@dataclass(frozen=True)
class Refusal:
    """Something a peer sent that the master dropped: `kind` is the fault counter's name."""

    kind: str
    detail: str


@dataclass
class Sequencer:
    """Assigns global indices, applies, and remembers a bounded tail for catch-up."""

    state: State = field(default_factory=State)
    tail: list[ev.IndexedEvent] = field(default_factory=list)
    tail_limit: int = 10_000
    buffer: MultiSourceBuffer = field(default_factory=MultiSourceBuffer)
    dropped: int = 0
    traces: TraceCollector = field(default_factory=TraceCollector)
    refusals: list[Refusal] = field(default_factory=list)  # since the shell last took them
    peer_origins: dict[str, list[str]] = field(default_factory=dict)

    @property
    def next_idx(self) -> int:
        return self.state.last_event_applied_idx + 1

    def accept(self, origin: str, first_idx: int, events: list, now: datetime,
               peer: str | None = None) -> list[ev.IndexedEvent]:
        """Events from one origin (possibly retried or out of order) -> newly indexed ones.

        `peer` is the authenticated sender (default: the node id the origin starts with). An
        event it may not send is refused but still consumed, so later ones are not held up."""
        peer = origin.split("/", 1)[0] if peer is None else peer
        forged = origin_problem(peer, origin)
        if forged:
            self._refuse("master.origin_forged", forged)
            return []
        flood = self._room_for(peer, origin, first_idx + len(events))
        if flood:
            self._refuse("master.origin_flood", flood)
            return []
        indexed = []
        for event in self.buffer.ingest(origin, first_idx, events):
            reason = authorize_event(self.state, peer, event)
            if reason is not None:
                self._refuse("master.event_refused", f"{type(event).__name__} from {peer}: {reason}")
                continue
            try:
                ie = self.index(event, now)
            except Exception as exc:  # noqa: BLE001 - one event that cannot apply is dropped alone
                self._refuse("master.event_failed", f"{type(event).__name__} from {peer}: {exc!r}"[:500])
                continue
            if ie is not None:
                indexed.append(ie)
        return indexed

    def _room_for(self, peer: str, origin: str, end_idx: int) -> str | None:
        """Bounds what one peer can make the master hold: a few origins, a bounded gap each."""
        origins = self.peer_origins.setdefault(peer, [])
        if origin not in origins:
            origins.append(origin)
            for old in origins[:-ORIGINS_PER_PEER]:  # the oldest origins are past sessions' leftovers
                self.buffer.origins.pop(old, None)
            del origins[:-ORIGINS_PER_PEER]
        buf = self.buffer.origins.get(origin)
        ahead = end_idx - (buf.next_idx if buf else 0)
        return f"{peer}: {ahead} origin indices ahead (limit {MAX_AHEAD})" if ahead > MAX_AHEAD else None

    def _refuse(self, kind: str, detail: str) -> None:
        self.refusals.append(Refusal(kind, detail))

    def take_refusals(self) -> list[Refusal]:
        out, self.refusals = self.refusals, []
        return out

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
        self.state = apply(self.state, indexed)  # raises before anything changed, or not at all
        self.tail.append(indexed)
        if len(self.tail) > self.tail_limit:
            del self.tail[: len(self.tail) - self.tail_limit]
        if isinstance(event, ev.TaskCreated):
            self.traces.expect(self.state, event.task_id)
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
