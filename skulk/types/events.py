"""Events: past-tense facts. Only the master indexes them; apply() folds them into State."""

from datetime import datetime
from typing import Any

from pydantic import Field

from skulk.types.access import ApiKeyRecord
from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.deployments import Deployment, DeploymentStatus
from skulk.types.downloads import DownloadProgress
from skulk.types.ids import CommandId, EventId, InstanceId, ModelId, NodeId, RunnerId, TaskId, new_id
from skulk.types.instances import Instance
from skulk.types.models import ModelCard
from skulk.types.node import GatheredInfo
from skulk.types.projects import ProjectPolicy, Rejection
from skulk.types.runners import RunnerStatus
from skulk.types.state import State
from skulk.types.tasks import Task, TaskStatus
from skulk.types.topology import Connection


class _Event(TaggedModel):
    event_id: EventId = Field(default_factory=new_id)


class TestEvent(_Event):
    __test__ = False  # not a pytest class
    note: str = ""


class TaskCreated(_Event):
    task_id: TaskId
    task: Task
    at: datetime | None = None  # the master's time; set when the task's key counts one request for usage


class TaskStatusUpdated(_Event):
    task_id: TaskId
    task_status: TaskStatus


class TaskFailed(_Event):
    task_id: TaskId
    error_type: str
    error_message: str


class TaskDeleted(_Event):
    """The end signal of a serving task; with `at`, its tokens count for the task's key and project."""

    task_id: TaskId
    at: datetime | None = None
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class InstanceCreated(_Event):
    instance: Instance
    auto_placed: bool = False
    project: str | None = None  # placed with a key of this project (counts toward its max_instances)


class InstanceDeleted(_Event):
    instance_id: InstanceId
    reason: str | None = None


class RunnerStatusUpdated(_Event):
    runner_id: RunnerId
    runner_status: RunnerStatus


class NodeTimedOut(_Event):
    node_id: NodeId


class NodeGatheredInfo(_Event):
    node_id: NodeId
    when: datetime
    info: GatheredInfo


class NodeDownloadProgress(_Event):
    download_progress: DownloadProgress


class TopologyEdgeCreated(_Event):
    conn: Connection


class TopologyEdgeDeleted(_Event):
    conn: Connection


class TracingStateChanged(_Event):
    enabled: bool


class ClusterConfigChanged(_Event):
    """The cluster-wide part of skulk.yaml, as every node should have it (no hf_token)."""

    config: dict[str, Any]


class CustomModelCardAdded(_Event):
    model_card: ModelCard


class CustomModelCardDeleted(_Event):
    model_id: ModelId


class ChunkGenerated(_Event):
    command_id: CommandId


class StateSnapshotHydrated(_Event):
    state: State


class TraceEventData(WireModel):
    """One span (or a zero-length marker) a runner recorded for a traced task; times in µs."""

    name: str
    start_us: int
    duration_us: int = Field(ge=0)
    rank: int = Field(ge=0)
    category: str
    node_id: NodeId | None = None
    model_id: ModelId | None = None
    task_kind: str | None = None  # text | embedding
    tags: list[str] = Field(default_factory=list)
    attrs: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)


class TracesCollected(_Event):
    """One rank's spans of a traced task. The master consumes it; it is never indexed."""

    task_id: TaskId
    rank: int = Field(ge=0)
    node_id: NodeId
    traces: list[TraceEventData]


class TracesMerged(_Event):
    """Every rank's spans of a traced task; the node that owns the request writes them."""

    task_id: TaskId
    traces: list[TraceEventData]
    owner_node: NodeId | None = None
    # The TracesCollected it was made of: their senders stop retrying them once this is indexed.
    consumed_event_ids: list[EventId] = Field(default_factory=list)


class StagingPurgeRequested(_Event):
    """Every node should drop its idle staged model copies (all of them, or of `model_id`)."""

    model_id: ModelId | None = None
    requested_at: datetime


class ApiKeyCreated(_Event):
    record: ApiKeyRecord


class ApiKeyRevoked(_Event):
    key_id: str
    reason: str = "revoked"  # revoked | expired


class ApiKeysTouched(_Event):
    last_used: dict[str, datetime] = Field(default_factory=dict)


class ProjectCreated(_Event):
    project: ProjectPolicy


class ProjectDeleted(_Event):
    name: str


class UsageRecorded(_Event):
    """Counts for a key's and its project's rolling usage, at the master's time `at`."""

    key_id: str | None = None
    project: str | None = None
    at: datetime
    requests: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class RequestRejected(_Event):
    """The master refused a request over its project's policy; the owner node answers 429 or 403."""

    rejection: Rejection
    at: datetime


class NodeCordoned(_Event):
    """An operator took the node out of placement; `draining` also moves its deployments away."""

    node_id: NodeId
    draining: bool = False


class NodeUncordoned(_Event):
    node_id: NodeId


class NodesForgotten(_Event):
    """An operator purged these gone nodes: state keeps nothing about them."""

    node_ids: list[NodeId] = Field(max_length=1024)


class DeploymentCreated(_Event):
    deployment: Deployment


class DeploymentUpdated(_Event):
    """A whole replacement of the deployment (extend, restart, pause flags)."""

    deployment: Deployment


class DeploymentStatusChanged(_Event):
    deployment_id: str = Field(max_length=64)
    status: DeploymentStatus
    reason: str | None = Field(default=None, max_length=2_000)


class DeploymentDeleted(_Event):
    deployment_id: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=2_000)


class LeaseExpiring(_Event):
    deployment_id: str = Field(max_length=64)
    expires_at: datetime


class LeaseExpired(_Event):
    deployment_id: str = Field(max_length=64)


Event = tagged_union(
    TestEvent, TaskCreated, TaskStatusUpdated, TaskFailed, TaskDeleted, InstanceCreated,
    InstanceDeleted, RunnerStatusUpdated, NodeTimedOut, NodeGatheredInfo, NodeDownloadProgress,
    TopologyEdgeCreated, TopologyEdgeDeleted, TracingStateChanged, CustomModelCardAdded,
    CustomModelCardDeleted, ChunkGenerated, StateSnapshotHydrated, ClusterConfigChanged,
    StagingPurgeRequested, TracesCollected, TracesMerged, ApiKeyCreated, ApiKeyRevoked, ApiKeysTouched,
    ProjectCreated, ProjectDeleted, UsageRecorded, RequestRejected,
    NodeCordoned, NodeUncordoned, NodesForgotten,
    DeploymentCreated, DeploymentUpdated, DeploymentStatusChanged, DeploymentDeleted, LeaseExpiring,
    LeaseExpired,
)


class IndexedEvent(WireModel):
    idx: int = Field(ge=0)
    event: Event
