"""The replicated cluster state. Never mutated: apply() returns a copy."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from skulk.types.access import ApiKeyRecord
from skulk.types.base import WireModel
from skulk.types.deployments import Deployment
from skulk.types.downloads import DownloadProgress
from skulk.types.ids import InstanceId, NodeId, RunnerId, TaskId
from skulk.types.instances import Instance
from skulk.types.node import NodeNetworkInfo
from skulk.types.projects import ProjectPolicy, Rejection, UsageSeries
from skulk.types.runners import RunnerStatus
from skulk.types.tasks import Task
from skulk.types.topology import TopologySnapshot


class State(WireModel):
    instances: dict[InstanceId, Instance] = Field(default_factory=dict)
    runners: dict[RunnerId, RunnerStatus] = Field(default_factory=dict)
    downloads: dict[NodeId, list[DownloadProgress]] = Field(default_factory=dict)
    tasks: dict[TaskId, Task] = Field(default_factory=dict)
    last_seen: dict[NodeId, datetime] = Field(default_factory=dict)
    topology: TopologySnapshot = Field(default_factory=TopologySnapshot)
    tracing_enabled: bool = False
    last_event_applied_idx: int = Field(default=-1, ge=-1)
    node_network: dict[NodeId, NodeNetworkInfo] = Field(default_factory=dict)
    node_thunderbolt: dict[NodeId, dict] = Field(default_factory=dict)
    node_thunderbolt_bridge: dict[NodeId, dict] = Field(default_factory=dict)
    thunderbolt_bridge_cycles: list[list[NodeId]] = Field(default_factory=list)
    auto_place_done: bool = False  # the default model was auto-placed once; never again
    cluster_config: dict[str, Any] | None = None  # cluster-wide skulk.yaml keys, once someone set them
    # salted hashes of the cluster's API keys: replicated, but never served by /state or /events
    api_keys: dict[str, ApiKeyRecord] = Field(default_factory=dict)
    projects: dict[str, ProjectPolicy] = Field(default_factory=dict)
    usage: dict[str, UsageSeries] = Field(default_factory=dict)  # "key:<id>" / "project:<name>" -> windows
    rejections: dict[str, Rejection] = Field(default_factory=dict)  # recent refusals by command id, bounded
    instance_projects: dict[InstanceId, str] = Field(default_factory=dict)  # placed with a project's key
    # operator maintenance: such nodes get no new shards; draining ones also hand their deployments on
    node_maintenance: dict[NodeId, Literal["cordoned", "draining"]] = Field(default_factory=dict)
    deployments: dict[str, Deployment] = Field(default_factory=dict)  # desired state, by deployment id
