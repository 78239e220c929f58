"""Request params on an instance node: what the replicated task leaves out. PURE (no trio, no I/O).

The API node that owns a serving task sends its params (RequestParams) straight to every node of
the task's instance. A node accepts them only from that owner, for a task of an instance it runs,
and keeps them (bounded) until its runner has the request.
"""

from collections import OrderedDict
from collections.abc import Callable

from skulk.types.chunks import RequestParams
from skulk.types.ids import NodeId, TaskId
from skulk.types.state import State
from skulk.types.tasks import TextEmbedding, TextEmbeddingTaskParams, TextGeneration, TextGenerationTaskParams

PARAMS_WAIT_S = 10.0  # a task whose params never come fails (retryable) after this long
MAX_KEPT = 1024  # params held on one node: far above what an instance can have queued
UNKNOWN_TASK = "unknown task"  # not refused: the task may not have reached this node's state yet


def params_refusal(state: State, node_id: NodeId, peer: NodeId, msg: RequestParams) -> str | None:
    """None to accept; UNKNOWN_TASK while the task is not in `state`; else why they are refused."""
    task = state.tasks.get(msg.task_id)
    if task is None:
        return UNKNOWN_TASK
    if not isinstance(task, (TextGeneration, TextEmbedding)):
        return f"task {msg.task_id[:80]} is not a serving task"
    if task.owner_node != peer:
        return f"{peer} sent params for task {msg.task_id[:80]} owned by {task.owner_node}"
    if task.command_id != msg.command_id:
        return f"params for task {msg.task_id[:80]} name another command"
    wanted = TextGenerationTaskParams if isinstance(task, TextGeneration) else TextEmbeddingTaskParams
    params = msg.params
    if not isinstance(params, wanted) or (msg.generation is not None and msg.embedding is not None):
        return f"params for task {msg.task_id[:80]} are not one {wanted.__name__}"
    if params.model != task.model:
        return f"params for task {msg.task_id[:80]} name model {params.model[:80]}, not {task.model}"
    instance = state.instances.get(task.instance_id)
    if instance is None or node_id not in instance.shard_assignments.node_to_runner:
        return f"task {msg.task_id[:80]} does not run on this node"
    return None


class ParamsStore:
    """Accepted params by task, oldest dropped first past MAX_KEPT."""

    def __init__(self, limit: int = MAX_KEPT):
        self._params: OrderedDict[TaskId, TextGenerationTaskParams | TextEmbeddingTaskParams] = OrderedDict()
        self._limit = limit
        self.on_put: Callable[[], None] = lambda: None  # the worker wakes its planner

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._params

    def __len__(self) -> int:
        return len(self._params)

    def put(self, task_id: TaskId, params) -> None:
        self._params[task_id] = params
        while len(self._params) > self._limit:
            self._params.popitem(last=False)
        self.on_put()

    def get(self, task_id: TaskId):
        return self._params.get(task_id)

    def known(self) -> frozenset[TaskId]:
        return frozenset(self._params)

    def prune(self, live: set[TaskId] | frozenset[TaskId]) -> None:
        """Forget params of tasks that left the state."""
        for task_id in [t for t in self._params if t not in live]:
            del self._params[task_id]
