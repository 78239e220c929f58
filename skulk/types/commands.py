"""Commands: imperative requests sent to the master, which turns them into events."""

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from skulk.types.access import ApiKeyRecord
from skulk.types.base import TaggedModel, tagged_union
from skulk.types.chunks import Usage
from skulk.types.deployments import MAX_LEASE_SECONDS, Deployment
from skulk.types.ids import CommandId, InstanceId, ModelId, NodeId, new_id
from skulk.types.instances import Instance, InstanceMeta, Sharding
from skulk.types.models import ModelCard
from skulk.types.priority import DEFAULT_PRIORITY, Priority
from skulk.types.projects import ProjectPolicy
from skulk.types.tasks import TextEmbeddingTaskParams, TextGenerationTaskParams


MAX_NODES = 1024  # bounds any list of nodes a command carries


class _Command(TaggedModel):
    command_id: CommandId = Field(default_factory=new_id)


class TestCommand(_Command):
    __test__ = False


class PlaceInstance(_Command):
    model_card: ModelCard
    sharding: Sharding = Sharding.Pipeline
    instance_meta: InstanceMeta = InstanceMeta.MlxRing
    min_nodes: int = Field(default=1, ge=1)
    excluded_nodes: list[NodeId] = Field(default_factory=list, max_length=MAX_NODES)
    key_id: str | None = Field(default=None, max_length=64)  # the caller's key: its project's max_instances


class CreateInstance(_Command):
    instance: Instance
    key_id: str | None = Field(default=None, max_length=64)  # the caller's key: its project's max_instances


class DeleteInstance(_Command):
    instance_id: InstanceId
    reason: str | None = None


def _model_from_params(self):
    """`model` is all the master reads of a request. The params ride along on the API node only
    (exclude: never encoded), which sends them straight to the chosen instance's nodes."""
    if not self.model and self.task_params is not None:
        object.__setattr__(self, "model", self.task_params.model)  # frozen: set once, while validating
    return self


class GenerateText(_Command):
    model: str = Field(default="", max_length=256)
    task_params: TextGenerationTaskParams | None = Field(default=None, exclude=True)
    _fill_model = model_validator(mode="after")(_model_from_params)
    owner_node: NodeId | None = None
    key_id: str | None = Field(default=None, max_length=64)  # the caller's key; the master finds its project
    # A failover's re-issue: instances that already failed this request, never chosen again.
    exclude_instances: list[InstanceId] = Field(default_factory=list, max_length=16)
    priority: Priority = DEFAULT_PRIORITY  # the engine admits queued requests in priority order


class EmbedText(_Command):
    model: str = Field(default="", max_length=256)
    task_params: TextEmbeddingTaskParams | None = Field(default=None, exclude=True)
    _fill_model = model_validator(mode="after")(_model_from_params)
    owner_node: NodeId | None = None
    key_id: str | None = Field(default=None, max_length=64)


class CancelCommand(_Command):
    cancelled_command_id: CommandId


class FinishCommand(_Command):
    finished_command_id: CommandId
    usage: Usage | None = None  # prompt and completion tokens, counted against the task's key and project


class SetTracingEnabled(_Command):
    enabled: bool


class SetClusterConfig(_Command):
    """Replace the cluster-wide part of skulk.yaml on every node (never carries hf_token)."""

    config: dict[str, Any]


class RefuseInstancePlacement(_Command):
    instance_id: InstanceId
    node_id: NodeId
    reason: str


class PurgeStaging(_Command):
    """Ask every node to drop its idle staged model copies (all of them, or of `model_id`)."""

    model_id: ModelId | None = None


class CreateApiKey(_Command):
    """Register a key's record (salted hash made on the API node; the key never leaves it)."""

    record: ApiKeyRecord
    only_if_no_admin: bool = False  # bootstrap: a no-op when the cluster already has an admin key


class RevokeApiKey(_Command):
    key_id: str = Field(max_length=64)


class TouchApiKeys(_Command):
    """Batched last-used times of keys, from one API node."""

    last_used: dict[str, datetime] = Field(default_factory=dict, max_length=1024)


class CreateProject(_Command):
    project: ProjectPolicy


class DeleteProject(_Command):
    name: str = Field(max_length=120)


class CordonNode(_Command):
    """Give the node no new shards; with `drain`, also move the deployments it hosts elsewhere."""

    node_id: NodeId
    drain: bool = False


class UncordonNode(_Command):
    node_id: NodeId


class ForgetNodes(_Command):
    """Drop what state holds about nodes that are gone (None: every such node); live ones are kept."""

    node_ids: list[NodeId] | None = Field(default=None, max_length=1024)


class CreateDeployment(_Command):
    """Desired state: the master fills status, times and restarts; `deployment_id` is the caller's."""

    deployment: Deployment


class DeleteDeployment(_Command):
    deployment_id: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=2_000)


class RestartDeployment(_Command):
    """Replace every instance of the deployment and clear a failed status and its restart count."""

    deployment_id: str = Field(max_length=64)


class ExtendDeploymentLease(_Command):
    deployment_id: str = Field(max_length=64)
    seconds: int = Field(gt=0, le=MAX_LEASE_SECONDS)


class SetDeploymentPaused(_Command):
    deployment_id: str = Field(max_length=64)
    paused: bool
    reason: str | None = Field(default=None, max_length=2_000)


Command = tagged_union(
    TestCommand, PlaceInstance, CreateInstance, DeleteInstance, GenerateText, EmbedText, CancelCommand,
    FinishCommand, SetTracingEnabled, RefuseInstancePlacement, SetClusterConfig, PurgeStaging,
    CreateApiKey, RevokeApiKey, TouchApiKeys, CreateProject, DeleteProject,
    CordonNode, UncordonNode, ForgetNodes,
    CreateDeployment, DeleteDeployment, RestartDeployment, ExtendDeploymentLease, SetDeploymentPaused,
)
