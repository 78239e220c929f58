"""What the API needs from the cluster: a small port, not master or worker internals."""

from typing import Any, Protocol

from skulk.types.events import IndexedEvent
from skulk.types.ids import NodeId, SessionId
from skulk.types.state import State
from skulk.types.node import MemoryUsage
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
    def history(self) -> list[IndexedEvent]:
        """Recent indexed events kept in memory (GET /events falls back to it without read_events)."""

    def live_telemetry(self) -> tuple[dict[NodeId, NodeHeartbeat], dict[NodeId, float]]:
        """Heartbeats of nodes heard recently, and seconds since each was heard."""

    def since_master_change_s(self) -> float | None:
        """Seconds since this node last moved to a new session (None: only its first one)."""

    def send_event(self, event: Any) -> None: ...

    async def send_command(self, command: Any) -> None: ...

    @property
    def catalog(self) -> Any:
        """The model card catalog (skulk.models.ModelCatalog)."""

    def node_memory(self) -> dict[NodeId, MemoryUsage]: ...

    def node_names(self) -> dict[NodeId, str]: ...

    def open_stream(self, command_id: str) -> Any:
        """A receive channel of this request's chunks (TokenChunk / ErrorChunk)."""

    def close_stream(self, command_id: str) -> None: ...

    def cancel_stream(self, command_id: str) -> bool:
        """End an open stream as cancelled; False if no such stream is open here."""

    def diagnostics(self) -> dict[str, Any]:
        """Runtime facts for /v1/diagnostics/node (config path, counters, ...)."""


class OperationsPort(Protocol):
    """Optional extras a node's port offers for operations; routes check with getattr, so a
    port without them (a test fake) still serves everything else."""

    event_log_mode: str  # the master's disk log: persisting | counting_only | disabled | follower
    api_event_log_mode: str  # the API-side disk log behind GET /events: persisting | counting_only | disabled

    async def read_events(self) -> list[IndexedEvent]:
        """This session's indexed events from the API-side log on disk, oldest first."""

    def apply_live_settings(self, file_settings: Any) -> None:
        """Apply the live keys of this node's newly written skulk.yaml now."""

    async def broadcast_config(self, values: dict[str, Any]) -> None:
        """Make these skulk.yaml values the cluster-wide config (hf_token is never sent)."""

    def request_restart(self) -> bool:
        """Schedule an in-place restart of this node; False if one is already pending."""

    traces_dir: Any  # Path of this node's trace files, or None: tracing off here
    onboarding_flag: Any  # Path of the file that marks the dashboard's onboarding done, or None

    def metrics_snapshot(self) -> dict[str, Any]:
        """Cheap counters and gauges read at every /metrics scrape."""

    flight_recorder: Any  # skulk.node.flight_recorder.FlightRecorder: this node's recent happenings

    async def cancel_runner_task(self, runner_id: str, task_id: str) -> dict[str, Any]:
        """Stop a task on one of this node's runners: {nodeId, runnerId, taskId, status, message};
        NotFound for an unknown runner or task, Unavailable on a node without a worker."""
