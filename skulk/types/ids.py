"""Identifiers and small value types shared by everything."""

from uuid import uuid4

from pydantic import Field

from skulk.types.base import WireModel

NodeId = str  # the libp2p peer id, base58 "12D3KooW..."
SystemId = str
CommandId = str
TaskId = str
InstanceId = str
RunnerId = str
EventId = str
ModelId = str  # Hugging Face repo id "org/name"


def new_id() -> str:
    return str(uuid4())


def model_dir_name(model_id: ModelId) -> str:
    """On-disk form of a model id: "org/name" -> "org--name"."""
    return model_id.replace("/", "--")


class SessionId(WireModel):
    """One master's reign: who orders the log and at which election clock."""

    master_node_id: NodeId
    election_clock: int = Field(ge=0)


class Memory(WireModel):
    in_bytes: int

    @classmethod
    def from_gb(cls, gb: float) -> "Memory":
        return cls(in_bytes=int(gb * 1024**3))

    @property
    def in_gb(self) -> float:
        return self.in_bytes / 1024**3
