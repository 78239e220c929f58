"""Messages between nodes: gossip heartbeats and direct-stream cluster messages."""

from datetime import datetime
from typing import Annotated

from pydantic import Field

from skulk.types.base import TaggedModel, WireModel, tagged_union
from skulk.types.commands import Command
from skulk.types.events import Event, IndexedEvent
from skulk.types.ids import NodeId, SessionId, SystemId
from skulk.types.node import (
    DiskUsage, MemoryUsage, NetworkInterfaceInfo, NodeIdentity, SystemPerformanceProfile,
)


# Generous for real machines (the builder trims its own heartbeat to these), small for a peer.
MAX_HEARTBEAT_INTERFACES = 64
MAX_LISTEN_ADDRS = 32
MAX_ADDR_CHARS = 256


class NodeHeartbeat(WireModel):
    """Gossiped every second: last-write-wins telemetry plus where to dial the sender."""

    node_id: NodeId = Field(max_length=128)
    sent_at: datetime
    identity: NodeIdentity
    memory: MemoryUsage
    system: SystemPerformanceProfile
    disk: DiskUsage | None = None
    interfaces: list[NetworkInterfaceInfo] = Field(default_factory=list, max_length=MAX_HEARTBEAT_INTERFACES)
    listen_addrs: list[Annotated[str, Field(max_length=MAX_ADDR_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LISTEN_ADDRS)
    api_port: int | None = Field(default=None, ge=0, le=65535)
    session: SessionId | None = None


class LocalEvents(TaggedModel):
    """Node -> master: events with per-origin sequence numbers (retried until indexed)."""

    session: SessionId
    origin: SystemId
    first_origin_idx: int = Field(ge=0)
    events: list[Event]


class IndexedEvents(TaggedModel):
    """Master -> node: a contiguous run of indexed events of one session."""

    session: SessionId
    events: list[IndexedEvent]


class CatchUpRequest(TaggedModel):
    """Node -> master: send me everything from next_idx (or a snapshot)."""

    session: SessionId
    next_idx: int = Field(ge=0)


class ForwardedCommand(TaggedModel):
    session: SessionId
    origin: NodeId
    command: Command


ClusterMessage = tagged_union(LocalEvents, IndexedEvents, CatchUpRequest, ForwardedCommand)
