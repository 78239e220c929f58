"""POST /v1/diagnostics/node/runners/{runner_id}/cancel, decided without I/O.

A task the replicated state still holds is cancelled the usual way (a CancelCommand to the
master: the task turns Cancelled, every rank's worker stops it, the owner's stream ends). A
task the state has forgotten is answered from this runner's own record of it.
"""

from dataclasses import dataclass

from skulk.errors import Conflict, NotFound
from skulk.types.state import State
from skulk.types.tasks import TaskStatus

_ENDED = {TaskStatus.Cancelled: "already_cancelled", TaskStatus.Complete: "already_completed",
          TaskStatus.Failed: "already_completed", TaskStatus.TimedOut: "already_completed"}


@dataclass(frozen=True)
class CancelDecision:
    status: str  # cancel_requested | already_completed | already_cancelled
    message: str
    command_id: str | None = None  # send CancelCommand for this command
    direct: bool = False  # no replicated task left: ask the runner itself


def decide_runner_cancel(state: State, *, runner_id: str, instance_id: str | None, active: frozenset[str],
                         task_id: str, recorded: str | None) -> CancelDecision:
    """`active`: tasks the runner is generating; `recorded`: the flight recorder's outcome, if any."""
    task = state.tasks.get(task_id)
    if task is not None:
        if instance_id is not None and task.instance_id != instance_id:
            raise Conflict(f"Task {task_id} runs on instance {task.instance_id}, not on runner {runner_id}'s "
                           f"instance {instance_id}", param="taskId", code="task_not_on_runner")
        ended = _ENDED.get(task.task_status)
        if ended is not None:
            return CancelDecision(ended, f"Task {task_id} already ended ({task.task_status.value})")
        command_id = getattr(task, "command_id", None)
        if command_id is not None:
            return CancelDecision("cancel_requested", f"Cancellation of task {task_id} sent to the master",
                                  command_id=command_id)
        return CancelDecision("cancel_requested", f"Runner {runner_id} asked to stop task {task_id}", direct=True)
    if task_id in active:
        return CancelDecision("cancel_requested", f"Runner {runner_id} asked to stop task {task_id}", direct=True)
    if recorded is not None:
        word = "cancelled" if recorded == "already_cancelled" else "completed"
        return CancelDecision(recorded, f"Task {task_id} already {word} on runner {runner_id}")
    raise NotFound(f"Task {task_id} is not known on runner {runner_id}", param="taskId")
