"""Deployments: the desired state an operator asks for; the master reconciles instances toward it."""

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import Field

from skulk.types.base import WireModel
from skulk.types.ids import ModelId, NodeId
from skulk.types.instances import InstanceMeta, Sharding
from skulk.types.models import ModelCard

MAX_DEPLOYMENTS = 256  # state content from a command is bounded (trust boundaries)
MAX_REPLICAS = 64
MAX_NODES = 1024
MAX_RESTARTS_KEPT = 64  # recent restart timestamps; enough for any sane max_restarts
MAX_LEASE_SECONDS = 366 * 24 * 3600
MAX_REASON = 2_000
DEPLOYMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Priority = Literal["high", "normal", "low"]


class DeploymentStatus(str, Enum):
    pending = "pending"  # nothing placed yet (or placement refused: see reason)
    starting = "starting"  # instances placed, none ready
    ready = "ready"  # `replicas` instances ready
    degraded = "degraded"  # some ready, fewer than `replicas`
    paused = "paused"  # by hand or the warm cache: no instances wanted
    failed = "failed"  # crash loop or a fatal cause: no more placing until restarted
    stopping = "stopping"  # being deleted


class Deployment(WireModel):
    deployment_id: str = Field(pattern=DEPLOYMENT_ID_PATTERN)
    model_id: ModelId = Field(max_length=160)
    model_card: ModelCard | None = None  # what placement needs; None: looked up when placing
    sharding: Sharding = Sharding.Pipeline
    instance_meta: InstanceMeta = InstanceMeta.MlxRing
    min_nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    excluded_nodes: list[NodeId] = Field(default_factory=list, max_length=MAX_NODES)
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    priority: Priority = "normal"
    lease_seconds: int | None = Field(default=None, gt=0, le=MAX_LEASE_SECONDS)
    expires_at: datetime | None = None
    keep_alive_seconds: int | None = Field(default=None, ge=0, le=MAX_LEASE_SECONDS)
    pinned: bool = False
    max_restarts: int | None = Field(default=None, ge=0, le=MAX_RESTARTS_KEPT)
    status: DeploymentStatus = DeploymentStatus.pending
    reason: str | None = Field(default=None, max_length=MAX_REASON)
    created_at: datetime | None = None
    restarts: list[datetime] = Field(default_factory=list, max_length=MAX_RESTARTS_KEPT)
    key_id: str | None = Field(default=None, max_length=64)  # the creator's key: its project's limits
    project: str | None = Field(default=None, max_length=64)
    auto_placed: bool = False  # the cluster's default model
    expiry_warned: bool = False  # LeaseExpiring sent for the current expires_at
    preempted_by: str | None = Field(default=None, max_length=64)  # waits for it (skulk.master.preemption)
