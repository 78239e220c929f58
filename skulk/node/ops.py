"""Operations plumbing of one node: cluster config sync, live settings, in-place restart, log shipping
and the trace and runner log janitors."""

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import trio

from skulk.config import NodePaths, Settings
from skulk.config.fields import env_names
from skulk.faults import isolate
from skulk.node.config_sync import ConfigSync
from skulk.node.log_shipper import LogShipper
from skulk.node.logs import set_structured_logging
from skulk.node.restart import Restarter
from skulk.node.janitor import run_janitor
from skulk.node.traces import run_trace_janitor
from skulk.routing.service import EventRouter
from skulk.runner.runner_log import RunnerLogConfig, prune_old_runner_logs

log = logging.getLogger(__name__)

KV_BACKEND_ENV = "SKULK_KV_CACHE_BACKEND"
FLOOR_ENV = "SKULK_EVENT_LOG_MIN_FREE_BYTES"
# Set where an external shipper (Vector) reads stdout: JSON lines on from boot, no built-in shipping.
LOGGING_EXTERNAL_ENV = "SKULK_LOGGING_EXTERNAL"
MAX_CONCURRENT_ENV = "SKULK_MAX_CONCURRENT_REQUESTS"  # what runners read (skulk.engine.admission)
LIVE_API_KEYS = ("gateway_enabled", "request_timeout_seconds", "queue_timeout_seconds", "stall_timeout_seconds")
LIVE_INFERENCE_KEYS = ("max_pending_per_instance", "max_concurrent_requests")


def _live_section(section: str, keys: tuple[str, ...], running: Any, file_section: Any, launch_env: dict) -> dict:
    """The file's values of these live keys, except those the environment set (it outranks the file)."""
    from_env = {path for name, path in env_names().items() if name in launch_env}
    return {k: getattr(file_section, k) if (section, k) not in from_env else getattr(running, k) for k in keys}


class NodeOps:
    def __init__(self, node_id: str, settings: Settings, paths: NodePaths, router: EventRouter):
        self.node_id = node_id
        self.settings = settings  # the running settings; live keys follow the cluster config
        self.paths = paths
        self.started_at = time.time()
        self.launch_env = dict(os.environ)  # what a restart execs with (live changes are in the file)
        self.restarter = Restarter(self.launch_env)
        self.config_sync = ConfigSync(router, self.apply_live)
        self.log_shipper = LogShipper(node_id)
        self.live_listeners: list[Callable[[Settings], None]] = []  # told after every live change
        self._apply_logging()
        self._export_kv_backend()

    def apply_live(self, file_settings: Settings) -> None:
        """Take the keys that change without a restart from settings the file describes."""
        s = self.settings
        inference = s.inference.model_copy(update={
            "kv_cache_backend": file_settings.inference.kv_cache_backend,
            **_live_section("inference", LIVE_INFERENCE_KEYS, s.inference, file_settings.inference, self.launch_env)})
        api = s.api.model_copy(update=_live_section("api", LIVE_API_KEYS, s.api, file_settings.api, self.launch_env))
        self.settings = s.model_copy(update={
            "inference": inference, "api": api, "logging": file_settings.logging, "tracing": file_settings.tracing,
            "notifications": file_settings.notifications,
            "event_log_min_free_bytes": self._live_floor(file_settings)})
        self._apply_logging()
        self._export_kv_backend()
        for listener in self.live_listeners:
            with isolate("ops.live_listener"):
                listener(self.settings)

    def _live_floor(self, file_settings: Settings) -> int:
        # The environment outranks the file, as at start-up: a floor set there stays.
        if FLOOR_ENV in self.launch_env:
            return self.settings.event_log_min_free_bytes
        return file_settings.event_log_min_free_bytes

    @property
    def logging_external(self) -> bool:
        return self.launch_env.get(LOGGING_EXTERNAL_ENV, "").strip().lower() in ("1", "true", "yes", "on")

    def _apply_logging(self) -> None:
        settings, external = self.settings.logging, self.logging_external
        set_structured_logging(settings.enabled or external, self.node_id)
        self.log_shipper.configure(settings.enabled and not external, settings.ingest_url)

    def runner_log_config(self) -> RunnerLogConfig | None:
        """Where a runner started now writes its stderr; None when runner log files are off."""
        settings = self.settings.logging
        if settings.runner_log_max_bytes <= 0:
            return None
        return RunnerLogConfig(self.paths.runner_logs_dir, settings.runner_log_max_bytes, settings.runner_log_backups)

    def _prune_runner_logs(self) -> list:
        # Retention is a live key: read from the running settings on every pass.
        return prune_old_runner_logs(self.paths.runner_logs_dir, self.settings.logging.runner_log_retention_days,
                                     time.time())

    def _export_kv_backend(self) -> None:
        # Runners read the backend and their batch cap from their environment; a value set at launch wins.
        if KV_BACKEND_ENV not in self.launch_env:
            os.environ[KV_BACKEND_ENV] = self.settings.inference.kv_cache_backend
        if MAX_CONCURRENT_ENV not in self.launch_env:
            os.environ[MAX_CONCURRENT_ENV] = str(self.settings.inference.max_concurrent_requests)

    @property
    def restart_pending(self) -> bool:
        return self.restarter.pending

    def request_restart(self, reason: str = "requested over the API") -> bool:
        return self.restarter.request(reason)

    async def run(self, stop_node: trio.CancelScope, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.config_sync.run)
            await nursery.start(self.restarter.run, stop_node)
            # Retention is a live key: read it from the running settings on every pass.
            await nursery.start(run_trace_janitor, self.paths.traces_dir, lambda: self.settings.tracing.retention_days)
            await nursery.start(run_janitor, "runner log janitor", self._prune_runner_logs)
            await nursery.start(self.log_shipper.run)
            task_status.started()
