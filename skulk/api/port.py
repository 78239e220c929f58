"""What the API needs from the cluster: a small port, not master or worker internals."""

from typing import Any, Protocol

from skulk.types.events import IndexedEvent
from skulk.types.ids import NodeId, SessionId
from skulk.types.state import State
from skulk.types.wire import NodeHeartbeat


class ClusterPort(Protocol):
    node_id: NodeId
    friendly_name: str

    @property
    def session(self) -> SessionId | None: ...

    @property
    def is_master(self) -> bool: ...

    @property
    def state(self) -> State: ...

    @property
    def history(self) -> list[IndexedEvent]: ...

    def live_telemetry(self) -> tuple[dict[NodeId, NodeHeartbeat], dict[NodeId, float]]:
        """Heartbeats of nodes heard recently, and seconds since each was heard."""

    def send_event(self, event: Any) -> None: ...

    async def send_command(self, command: Any) -> None: ...

    def diagnostics(self) -> dict[str, Any]:
        """Runtime facts for /v1/diagnostics/node (config path, counters, ...)."""
