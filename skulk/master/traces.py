"""The master's pure trace collector: one TracesCollected per rank in, one TracesMerged out.

A traced task's ranks are remembered when it is created, so ranks that report after the task
was deleted still complete it. Bounded: past `limit` pending tasks the oldest is forgotten.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

from skulk.types import events as ev
from skulk.types.state import State

PENDING_LIMIT = 256


def instance_ranks(state: State, instance_id: str) -> frozenset[int]:
    instance = state.instances.get(instance_id)
    if instance is None:
        return frozenset()
    return frozenset(s.device_rank for s in instance.shard_assignments.runner_to_shard.values())


@dataclass
class PendingTrace:
    ranks: frozenset[int]
    owner_node: str | None
    reports: dict[int, ev.TracesCollected] = field(default_factory=dict)


@dataclass
class TraceCollector:
    limit: int = PENDING_LIMIT
    pending: OrderedDict[str, PendingTrace] = field(default_factory=OrderedDict)
    evicted: int = 0  # pending tasks forgotten at the bound (a rank never reported)
    unmatched: int = 0  # reports for a task or rank we were not waiting for

    def expect(self, state: State, task_id: str) -> None:
        """Remember a traced task with the ranks of its instance (no-op for untraced tasks)."""
        task = state.tasks.get(task_id)
        if task is None or not getattr(task, "trace_enabled", False) or task_id in self.pending:
            return
        ranks = instance_ranks(state, task.instance_id)
        if not ranks:
            return
        self.pending[task_id] = PendingTrace(ranks, getattr(task, "owner_node", None))
        while len(self.pending) > self.limit:
            self.pending.popitem(last=False)
            self.evicted += 1

    def collect(self, state: State, report: ev.TracesCollected) -> ev.TracesMerged | None:
        """Add one rank's report; the merged event once every rank of the task has reported."""
        if report.task_id not in self.pending:
            self.expect(state, report.task_id)  # created before this master took over
        entry = self.pending.get(report.task_id)
        if entry is None or report.rank not in entry.ranks:
            self.unmatched += 1
            return None
        entry.reports[report.rank] = report
        if set(entry.reports) != entry.ranks:
            return None
        del self.pending[report.task_id]
        reports = [entry.reports[r] for r in sorted(entry.reports)]
        return ev.TracesMerged(task_id=report.task_id, traces=[t for r in reports for t in r.traces],
                               owner_node=entry.owner_node, consumed_event_ids=[r.event_id for r in reports])
