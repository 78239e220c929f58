"""Pure master decisions: the reconciliation pass (liveness) + state -> events.

Commands are decided in skulk.master.dispatch, the one table; `decide_command` is re-exported
here for callers that predate it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from skulk.master.dispatch import decide_command  # noqa: F401 - re-export
from skulk.types import events as ev
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TaskStatus

INSTANCE_LOST = (
    "The instance executing this request was lost (node disconnected or instance deleted)"
)


@dataclass(frozen=True)
class ReconcileParams:
    node_timeout: timedelta
    settle_grace: timedelta


def reconcile(state: State, now: datetime, master_started: datetime, p: ReconcileParams) -> list:
    """Liveness pass: fail orphaned tasks first, then drop dead instances and nodes."""
    settled = now - master_started >= p.settle_grace
    timed_out = [n for n, seen in state.last_seen.items() if now - seen > p.node_timeout] if settled else []
    gone = set(timed_out)
    if settled:
        gone |= {n for inst in state.instances.values() for n in inst.node_ids() if n not in state.topology.nodes}
    dying = {iid for iid, inst in state.instances.items() if gone & set(inst.node_ids())}
    failures = [
        ev.TaskFailed(task_id=tid, error_type="instance_lost", error_message=INSTANCE_LOST)
        for tid, t in state.tasks.items()
        if isinstance(t, SERVING_TASK_TYPES)
        and t.task_status in (TaskStatus.Pending, TaskStatus.Running)
        and (t.instance_id in dying or t.instance_id not in state.instances)
    ]
    deletions = [ev.InstanceDeleted(instance_id=iid, reason="node lost") for iid in sorted(dying)]
    return [*failures, *deletions, *(ev.NodeTimedOut(node_id=n) for n in timed_out)]
