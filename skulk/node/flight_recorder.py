"""The flight recorder: a bounded ring of this node's notable happenings, newest last.

Fed by the worker (runner status changes, tasks forwarded, finished, failed, cancelled) and by
session changes; served by /v1/diagnostics/node/timeline and merged across nodes by
/v1/diagnostics/cluster/timeline. Nothing here does I/O; the clock is passed in.
"""

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

CAPACITY = 500
TASK_OUTCOMES = {"task_finished": "already_completed", "task_failed": "already_completed",
                 "task_cancelled": "already_cancelled"}

_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "runner_spawned": lambda f: f"runner {f.get('runnerId')} started for instance {f.get('instanceId')}",
    "runner_status": lambda f: (f"runner {f.get('runnerId')}: {f.get('previous') or 'new'} -> {f.get('status')}"
                                + (f" ({f['error']})" if f.get("error") else "")),
    "runner_stopping": lambda f: f"stopping runner {f.get('runnerId')}: {f.get('reason')}",
    "runner_exited": lambda f: f"runner {f.get('runnerId')} process ended ({f.get('status')})",
    "placement_refused": lambda f: f"refused instance {f.get('instanceId')}: {f.get('reason')}",
    "task_forwarded": lambda f: (f"task {f.get('taskId')} forwarded to runner {f.get('runnerId')}"
                                 f" (rank {f.get('rank')})"),
    "task_finished": lambda f: (f"task {f.get('taskId')} finished on runner {f.get('runnerId')}"
                                f" ({f.get('finishReason')})"),
    "task_failed": lambda f: f"task {f.get('taskId')} failed on runner {f.get('runnerId')}: {f.get('error')}",
    "task_cancelled": lambda f: f"task {f.get('taskId')} cancelled on runner {f.get('runnerId')}",
    "task_cancel_sent": lambda f: f"asked runner {f.get('runnerId')} to stop task {f.get('taskId')}",
    "cancel_requested": lambda f: f"diagnostics cancel of task {f.get('taskId')} on runner {f.get('runnerId')}",
    "session_changed": lambda f: (f"session {f.get('electionClock')}: master {f.get('masterNodeId')}"
                                  f" (was {f.get('previousMasterNodeId') or 'none'})"),
}


def iso(at: float) -> str:
    """A UTC timestamp with fixed microsecond precision, so entries from every node sort as text."""
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="microseconds")


def describe(kind: str, fields: dict[str, Any]) -> str:
    make = _MESSAGES.get(kind)
    return make(fields) if make is not None else kind.replace("_", " ")


class FlightRecorder:
    def __init__(self, node_id: str, *, capacity: int = CAPACITY, clock: Callable[[], float] = time.time):
        self.node_id = node_id
        self.capacity = capacity
        self._clock = clock
        self._ring: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self._runner_status: dict[str, str] = {}
        self.recorded = 0  # ever recorded, including entries the ring has since dropped

    def record(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        """Add one entry; `fields` are camelCase (runnerId, taskId, ...), None values dropped.
        A runner_status that repeats the runner's last one is not an entry (reports repeat)."""
        fields = {k: v for k, v in fields.items() if v is not None}
        if kind == "runner_status":
            previous = self._runner_status.get(fields.get("runnerId"))
            if previous == fields.get("status"):
                return None
            self._runner_status[fields.get("runnerId")] = fields.get("status")
            fields.setdefault("previous", previous)
        self._seq += 1
        self.recorded += 1
        entry = {"seq": self._seq, "at": iso(self._clock()), "nodeId": self.node_id, "kind": kind,
                 "runnerId": fields.pop("runnerId", None), "taskId": fields.pop("taskId", None)}
        entry["message"] = describe(kind, {**fields, "runnerId": entry["runnerId"], "taskId": entry["taskId"]})
        entry["details"] = fields
        self._ring.append(entry)
        return entry

    def on_session_changed(self, new: Any, old: Any) -> None:
        """A SessionManager listener: (new SessionId, old SessionId | None)."""
        self.record("session_changed", masterNodeId=new.master_node_id, electionClock=new.election_clock,
                    previousMasterNodeId=old.master_node_id if old is not None else None)

    def entries(self, *, runner_id: str | None = None, task_id: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; filtered to a runner and/or a task when given."""
        return [e for e in self._ring
                if (runner_id is None or e["runnerId"] == runner_id) and (task_id is None or e["taskId"] == task_id)]

    def task_outcome(self, runner_id: str, task_id: str) -> str | None:
        """already_completed / already_cancelled when this runner's end of the task was recorded."""
        for entry in reversed(self._ring):
            if entry["runnerId"] == runner_id and entry["taskId"] == task_id and entry["kind"] in TASK_OUTCOMES:
                return TASK_OUTCOMES[entry["kind"]]
        return None

    def document(self) -> dict[str, Any]:
        """What GET /v1/diagnostics/node/timeline serves."""
        return {"nodeId": self.node_id, "capacity": self.capacity, "recorded": self.recorded,
                "entries": self.entries()}


def merge_timelines(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every node's entries in one list, ordered by time (then node and sequence for ties)."""
    entries = [e for doc in documents for e in (doc.get("entries") or []) if isinstance(e, dict)]
    return sorted(entries, key=lambda e: (str(e.get("at") or ""), str(e.get("nodeId") or ""), e.get("seq") or 0))
