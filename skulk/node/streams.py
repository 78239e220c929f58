"""Open generation streams on this API node, and the ways they end early."""

import math

import trio

from skulk.engine.error_codes import error_chunk
from skulk.types.chunks import ErrorChunk, RequestParams
from skulk.types.events import TaskCreated, TaskDeleted, TaskFailed, TaskStatusUpdated
from skulk.types.ids import CommandId, NodeId, TaskId
from skulk.types.state import State
from skulk.types.tasks import SERVING_TASK_TYPES, TaskStatus, TextEmbeddingTaskParams

SESSION_CHANGED = error_chunk(
    "session_changed", "The cluster session changed (master failover) while this request was in flight; please retry")
CANCELLED = error_chunk("instance_deleted", "The request was cancelled because its instance was deleted")
CANCELLED_BY_REQUEST = error_chunk("cancelled", "Command cancelled.")


def node_lost(node: NodeId) -> ErrorChunk:
    return error_chunk("instance_lost", f"A node running this request's instance ({node}) disconnected; please retry")


class StreamRegistry:
    def __init__(self) -> None:
        self._streams: dict[CommandId, trio.MemorySendChannel] = {}
        self._next_seq: dict[CommandId, int] = {}
        # Tasks of open streams, from TaskCreated: a cancelled command's task leaves the state in the
        # same batch as its Cancelled status, so the state alone cannot name the stream.
        self._tasks: dict[TaskId, tuple[CommandId, str]] = {}  # task -> (its stream, its instance)
        self._params: dict[CommandId, object] = {}  # open requests' params, until their task is named

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._streams

    def open(self, command_id: CommandId) -> trio.MemoryReceiveChannel:
        send, recv = trio.open_memory_channel(math.inf)
        self._streams[command_id] = send
        self._next_seq[command_id] = 0
        return recv

    def close(self, command_id: CommandId) -> None:
        send = self._streams.pop(command_id, None)
        self._next_seq.pop(command_id, None)
        self._params.pop(command_id, None)
        if send is not None:
            send.close()
            self._tasks = {t: ci for t, ci in self._tasks.items() if ci[0] != command_id}

    def keep_params(self, command_id: CommandId, params) -> None:
        """The request's params stay here until the master names its task's instance."""
        if command_id in self._streams:
            self._params[command_id] = params

    def take_due_params(self, state: State) -> list[tuple[list[NodeId], RequestParams]]:
        """(the instance's nodes, the message) for each kept request whose task `state` now has."""
        if not self._params:
            return []
        due = []
        for task_id, task in state.tasks.items():
            if not isinstance(task, SERVING_TASK_TYPES) or task.command_id not in self._params:
                continue
            params = self._params.pop(task.command_id)
            inst = state.instances.get(task.instance_id)
            nodes = sorted(inst.shard_assignments.node_to_runner) if inst is not None else []
            field = "embedding" if isinstance(params, TextEmbeddingTaskParams) else "generation"
            due.append((nodes, RequestParams(task_id=task_id, command_id=task.command_id, **{field: params})))
        return due

    def instance_of(self, command_id: CommandId) -> str | None:
        """The instance serving an open stream, from the TaskCreated this node saw (else None)."""
        return next((inst for cmd, inst in self._tasks.values() if cmd == command_id), None)

    def deliver(self, command_id: CommandId, sequence: int, chunk) -> bool:
        send = self._streams.get(command_id)
        if send is None or sequence < self._next_seq[command_id]:
            return False  # late or duplicate
        self._next_seq[command_id] = sequence + 1
        send.send_nowait(chunk)
        return True

    def fail(self, command_id: CommandId, error: ErrorChunk) -> None:
        send = self._streams.get(command_id)
        if send is not None:
            send.send_nowait(error)
            self.close(command_id)

    def fail_all(self, error: ErrorChunk) -> None:
        for command_id in list(self._streams):
            self.fail(command_id, error)

    def fail_on_node_loss(self, state: State, node: NodeId) -> None:
        for task in state.tasks.values():
            if not isinstance(task, SERVING_TASK_TYPES) or task.command_id not in self._streams:
                continue
            inst = state.instances.get(task.instance_id)
            if inst is not None and node in inst.shard_assignments.node_to_runner:
                self.fail(task.command_id, node_lost(node))

    def fail_on_events(self, state: State, indexed: list) -> None:
        """TaskFailed and cancellations end the owning stream with the reason."""
        for ie in indexed:
            event = ie.event
            if isinstance(event, TaskCreated):
                if isinstance(event.task, SERVING_TASK_TYPES) and event.task.command_id in self._streams:
                    self._tasks[event.task_id] = (event.task.command_id, event.task.instance_id)
                continue
            known = self._tasks.get(getattr(event, "task_id", "")) or _in_state(state, getattr(event, "task_id", ""))
            if known is None:
                continue
            command_id, instance_id = known
            if isinstance(event, TaskFailed):
                self.fail(command_id, error_chunk(event.error_type, event.error_message))
            elif isinstance(event, TaskStatusUpdated) and event.task_status == TaskStatus.Cancelled:
                # Instance deletion cancels its tasks; a CancelCommand (e.g. a diagnostics cancel) leaves it.
                deleted = instance_id not in state.instances
                self.fail(command_id, CANCELLED if deleted else CANCELLED_BY_REQUEST)
            elif isinstance(event, TaskDeleted):
                # The owner closes its stream before it finishes or cancels: one still open was cancelled by another.
                self.fail(command_id, CANCELLED if instance_id not in state.instances else CANCELLED_BY_REQUEST)


def _in_state(state: State, task_id: str) -> tuple[CommandId, str] | None:
    """A serving task's (stream, instance) from the state, for a TaskCreated this node never saw."""
    task = state.tasks.get(task_id)
    return (task.command_id, task.instance_id) if isinstance(task, SERVING_TASK_TYPES) else None
