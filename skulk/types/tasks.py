"""Tasks: serving requests created by the master, and worker lifecycle steps."""

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.ids import CommandId, InstanceId, NodeId, RunnerId, TaskId, new_id
from skulk.types.priority import DEFAULT_PRIORITY, Priority


class TaskStatus(str, Enum):
    Pending = "Pending"
    Running = "Running"
    Complete = "Complete"
    TimedOut = "TimedOut"
    Failed = "Failed"
    Cancelled = "Cancelled"


TERMINAL_TASK_STATUSES = frozenset(
    {TaskStatus.Complete, TaskStatus.TimedOut, TaskStatus.Failed, TaskStatus.Cancelled}
)


class ChatMessage(WireModel):
    role: Literal["user", "assistant", "system", "developer", "tool"]
    content: str
    tool_calls: list[dict[str, Any]] | None = None  # assistant: [{"id", "type", "function": {"name", "arguments": {}}}]
    tool_call_id: str | None = None  # tool: the call this result answers
    name: str | None = None


class TextGenerationTaskParams(WireModel):
    """The canonical internal request every API flavour is turned into."""

    model: str
    input: list[ChatMessage]
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    repetition_context_size: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    enable_thinking: bool | None = None
    reasoning_effort: str | None = None
    # Failover: tokens this request already generated (and the client already has). Engines
    # append them after the templated prompt and continue; they count against max_output_tokens.
    continue_token_ids: list[Annotated[int, Field(ge=0, lt=2**31)]] | None = Field(default=None, max_length=1 << 20)


class TextEmbeddingTaskParams(WireModel):
    """Texts to turn into vectors, one vector per text, in order."""

    model: str
    input: list[str] = Field(min_length=1)


class _Task(TaggedModel):
    task_id: TaskId = Field(default_factory=new_id)
    task_status: TaskStatus = TaskStatus.Pending
    instance_id: InstanceId


class _ServingTask(_Task):
    command_id: CommandId
    owner_node: NodeId | None = None
    trace_enabled: bool = False
    error_type: str | None = None
    error_message: str | None = None
    key_id: str | None = Field(default=None, max_length=64)  # the caller's API key, for usage and limits
    project: str | None = Field(default=None, max_length=120)  # the key's project when the master admitted it
    priority: Priority = DEFAULT_PRIORITY  # from the command: the runner's queue admits high first


# The replicated task names its request, never its content: the params (prompt, tools, sampling)
# go from the API node straight to the instance's nodes (skulk.types.chunks.RequestParams).
class _RequestTask(_ServingTask):
    model: str = Field(max_length=256)

    @model_validator(mode="before")
    @classmethod
    def _params_to_model(cls, data: Any) -> Any:
        """Built from params (older callers): keep the model name, never the params."""
        inner = data.get(cls.__name__, data) if isinstance(data, dict) else data
        if isinstance(inner, dict) and ("task_params" in inner or "taskParams" in inner):
            inner = dict(inner)
            params = inner.pop("task_params", None) or inner.pop("taskParams", None)
            model = params.get("model") if isinstance(params, dict) else getattr(params, "model", None)
            inner.setdefault("model", model)
            return inner
        return data


class TextGeneration(_RequestTask):
    pass


class TextEmbedding(_RequestTask):
    pass


class CreateRunner(_Task):
    runner_id: RunnerId


class LoadModel(_Task):
    pass


class ConnectToGroup(_Task):
    pass


class StartWarmup(_Task):
    pass


class Shutdown(_Task):
    runner_id: RunnerId


class CancelTask(_Task):
    cancelled_task_id: TaskId
    runner_id: RunnerId


Task = tagged_union(
    TextGeneration, TextEmbedding, CreateRunner, LoadModel, ConnectToGroup, StartWarmup,
    Shutdown, CancelTask,
)
SERVING_TASK_TYPES = (TextGeneration, TextEmbedding)
