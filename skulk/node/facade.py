"""ClusterFacade: the API's view of this node (the ClusterPort), built from the node's parts."""

import sys
import time
from pathlib import Path
from typing import Any

import trio

from skulk.config.render import redacted_argv
from skulk.config.sync import cluster_part
from skulk.node import diagnostics as diag
from skulk.node.dispatch import ClusterMessenger
from skulk.node.flight_recorder import FlightRecorder
from skulk.node.logs import structured_logging_enabled
from skulk.node.runner_cancel import decide_runner_cancel
from skulk.node.session import SessionManager
from skulk.node.streams import CANCELLED_BY_REQUEST, StreamRegistry
from skulk.routing.service import EventRouter
from skulk.state.telemetry import TelemetryView
from skulk.errors import NotFound, Unavailable
from skulk.faults import FAULTS
from skulk.master.notifier import NOTIFY_COUNTS
from skulk.types.commands import CancelCommand, SetClusterConfig
from skulk.types.wire import ForwardedCommand


class ClusterFacade:
    def __init__(self, *, node_id: str, friendly_name: str, router: EventRouter, sessions: SessionManager,
                 telemetry: TelemetryView, messenger: ClusterMessenger, streams: StreamRegistry,
                 catalog: Any, liveness_timeout: float, note_command: Any, counters: Any, net: Any,
                 settings: Any = None, ops: Any = None, supervisors: Any = dict,
                 recorder: FlightRecorder | None = None, has_worker: bool = True):
        self.node_id = node_id
        self.friendly_name = friendly_name
        self._router = router
        self._sessions = sessions
        self._telemetry = telemetry
        self._messenger = messenger
        self._streams = streams
        self.catalog = catalog
        self._timeout = liveness_timeout
        self._note_command = note_command
        self._counters = counters
        self._net = net
        self._settings = settings
        self._ops = ops  # skulk.node.ops.NodeOps: live settings, restart, started_at
        self._supervisors = supervisors  # () -> this node's runner supervisors by runner id
        self.flight_recorder = recorder if recorder is not None else FlightRecorder(node_id)
        self._has_worker = has_worker

    @property
    def settings(self):
        """The running settings (live keys follow the cluster config when ops are wired)."""
        return self._ops.settings if self._ops is not None else self._settings

    @property
    def session(self):
        return self._router.session

    @property
    def is_master(self) -> bool:
        return self._sessions.is_master

    def since_master_change_s(self) -> float | None:
        """Seconds since this node last moved to a new session (None: never, only its first one)."""
        changed = self._sessions.master_changed_at
        return None if changed is None else trio.current_time() - changed

    @property
    def state(self):
        return self._router.state

    @property
    def history(self):
        """In-memory events, kept only when this node has no API event log on disk."""
        return self._router.history

    async def read_events(self):
        """This session's indexed events as GET /events serves them (the API log on disk)."""
        return await self._router.read_history()

    def live_telemetry(self):
        now = trio.current_time()
        beats = self._telemetry.live(now, self._timeout)
        return beats, {n: self._telemetry.age(n, now) or 0.0 for n in beats}

    def node_memory(self):
        return {n: hb.memory for n, hb in self.live_telemetry()[0].items()}

    def node_names(self):
        return {n: hb.identity.friendly_name for n, hb in self.live_telemetry()[0].items()}

    def send_event(self, event: Any) -> None:
        self._router.send_event(event)

    async def send_command(self, command: Any) -> None:
        with trio.fail_after(10):
            while self._router.session is None:
                await self._router.changed.wait()
        session = self._router.session
        self._note_command()
        if getattr(command, "task_params", None) is not None:  # the prompt stays here; the data plane sends it on
            self._streams.keep_params(command.command_id, command.task_params)
            command = command.model_copy(update={"task_params": None})
        await self._messenger.send(session.master_node_id, ForwardedCommand(
            session=session, origin=self.node_id, command=command))

    def open_stream(self, command_id: str):
        return self._streams.open(command_id)

    def close_stream(self, command_id: str) -> None:
        self._streams.close(command_id)

    def cancel_stream(self, command_id: str) -> bool:
        if command_id not in self._streams:
            return False
        self._streams.fail(command_id, CANCELLED_BY_REQUEST)
        return True

    def apply_live_settings(self, file_settings: Any) -> None:
        """A PUT /config's own file, applied here at once (node-local keys are never broadcast)."""
        if self._ops is not None:
            self._ops.apply_live(file_settings)

    async def broadcast_config(self, values: dict[str, Any]) -> None:
        """Make these skulk.yaml values the cluster's (per-machine keys and hf_token stay here)."""
        await self.send_command(SetClusterConfig(config=cluster_part(values)))

    @property
    def event_log_mode(self) -> str:
        """The master's disk log mode on the master; "follower" elsewhere (no log on disk here)."""
        master = self._sessions.master
        return getattr(master, "event_log_mode", "disabled") if master is not None else "follower"

    @property
    def api_event_log_mode(self) -> str:
        """The API-side disk log's mode (it backs GET /events); "disabled" without one."""
        api_log = self._router.api_log
        return api_log.mode if api_log is not None else "disabled"

    @property
    def restart_pending(self) -> bool:
        return self._ops is not None and self._ops.restart_pending

    @property
    def traces_dir(self) -> Path | None:
        """Where this node keeps request trace files (None when ops are not wired)."""
        return self._ops.paths.traces_dir if self._ops is not None else None

    @property
    def audit_path(self) -> Path | None:
        """This node's audit trail of admin actions (None when ops are not wired: memory only)."""
        return self._ops.paths.home / "audit.jsonl" if self._ops is not None else None

    @property
    def onboarding_flag(self) -> Path | None:
        """The file whose presence says the dashboard's onboarding was completed on this node."""
        return self._ops.paths.home / "onboarding_complete" if self._ops is not None else None

    def request_restart(self) -> bool:
        """Schedule an in-place restart; False if one is already pending."""
        if self._ops is None:
            raise RuntimeError("restart is not wired on this node")
        return self._ops.request_restart()

    def metrics_snapshot(self) -> dict[str, Any]:
        """Cheap numbers for /metrics, read at scrape time."""
        return {"open_streams": len(self._streams), "connected_peers": len(self._net.connected_peers()),
                "elections": self._sessions.elections, "events_applied": self._router.counters["events_applied"],
                "history_length": self._router.history_length, "event_log_mode": self.event_log_mode,
                "api_event_log_mode": self.api_event_log_mode,
                "is_master": self.is_master, "restart_pending": self.restart_pending,
                "counters": self._counters(), "faults": FAULTS.snapshot(), "notifications": NOTIFY_COUNTS.snapshot()}

    async def cancel_runner_task(self, runner_id: str, task_id: str) -> dict[str, Any]:
        """Stop one task on one of this node's runners (the diagnostics cancel)."""
        if not self._has_worker:
            raise Unavailable("This node runs without a worker (--no-worker): it has no runners")
        sup = dict(self._supervisors()).get(runner_id)
        if sup is None:
            raise NotFound(f"Runner {runner_id} is not supervised by this node", param="runner_id")
        decision = decide_runner_cancel(
            self.state, runner_id=runner_id, instance_id=getattr(sup.instance, "instance_id", None),
            active=sup.active_tasks, task_id=task_id, recorded=self.flight_recorder.task_outcome(runner_id, task_id))
        if decision.status == "cancel_requested":  # recorded first: the runner's own entry follows it
            self.flight_recorder.record("cancel_requested", runnerId=runner_id, taskId=task_id)
        if decision.command_id is not None:
            await self.send_command(CancelCommand(cancelled_command_id=decision.command_id))
        elif decision.direct:
            await sup.cancel(task_id)
        return {"nodeId": self.node_id, "runnerId": runner_id, "taskId": task_id, "status": decision.status,
                "message": decision.message}

    def diagnostics(self) -> dict[str, Any]:
        config_path = Path("skulk.yaml").resolve()
        settings, session, state = self.settings, self.session, self.state
        supervisors = dict(self._supervisors())
        own_beat = self._telemetry.heartbeats.get(self.node_id)
        home = self._ops.paths.home if self._ops is not None else Path.cwd()
        started = self._ops.started_at if self._ops is not None else None
        resources = diag.resources(own_beat, home)
        placements = diag.placements(state, self.node_id, session)
        logging_settings = getattr(settings, "logging", None)
        return {
            "runtime": {"configPath": str(config_path), "configFileExists": config_path.exists(),
                        "listenAddrs": self._net.listen_multiaddrs(), "elections": self._sessions.elections,
                        "openStreams": len(self._streams), "startedAt": started,
                        "uptimeSeconds": round(time.time() - started, 3) if started else None,
                        "restartPending": self.restart_pending, "argv": redacted_argv(sys.argv),
                        "clusterSecured": bool(getattr(getattr(settings, "cluster", None), "secret", None)),
                        "skulkCommit": diag.skulk_commit(), "hasWorker": self._has_worker,
                        "structuredLoggingConfigured": structured_logging_enabled(),
                        "loggingIngestUrl": getattr(logging_settings, "ingest_url", "") or None},
            "identity": diag.dump(own_beat.identity) if own_beat is not None else None,
            "resources": resources,
            "processes": diag.processes(supervisors),
            "supervisorRunners": diag.supervisor_runners(supervisors, self.flight_recorder),
            "placements": placements,
            "eventLog": {"mode": self.event_log_mode, "apiMode": self.api_event_log_mode,
                         "historyLength": self._router.history_length,
                         "minFreeBytes": getattr(settings, "event_log_min_free_bytes", None)},
            "clusterConfig": state.cluster_config,
            "warnings": diag.node_warnings(event_log_mode=self.event_log_mode,
                                           api_event_log_mode=self.api_event_log_mode, disk=resources["disk"],
                                           placements_=placements, node_id=self.node_id,
                                           restart_pending=self.restart_pending, session=session),
            "counters": self._counters(),
            "faults": FAULTS.snapshot(),
            "connectedPeers": sorted(self._net.connected_peers()),
        }
