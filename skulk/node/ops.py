"""Operations plumbing of one node: cluster config sync, live settings, in-place restart, trace janitor."""

import logging
import os
import time

import trio

from skulk.config import NodePaths, Settings
from skulk.node.config_sync import ConfigSync
from skulk.node.logs import set_structured_logging
from skulk.node.restart import Restarter
from skulk.node.traces import run_trace_janitor
from skulk.routing.service import EventRouter

log = logging.getLogger(__name__)

KV_BACKEND_ENV = "SKULK_KV_CACHE_BACKEND"


class NodeOps:
    def __init__(self, node_id: str, settings: Settings, paths: NodePaths, router: EventRouter):
        self.node_id = node_id
        self.settings = settings  # the running settings; live keys follow the cluster config
        self.paths = paths
        self.started_at = time.time()
        self.launch_env = dict(os.environ)  # what a restart execs with (live changes are in the file)
        self.restarter = Restarter(self.launch_env)
        self.config_sync = ConfigSync(router, self.apply_live)
        set_structured_logging(settings.logging.enabled, node_id)
        self._export_kv_backend()

    def apply_live(self, file_settings: Settings) -> None:
        """Take the keys that change without a restart from settings the file describes."""
        s = self.settings
        inference = s.inference.model_copy(update={"kv_cache_backend": file_settings.inference.kv_cache_backend})
        self.settings = s.model_copy(update={"inference": inference, "logging": file_settings.logging,
                                             "tracing": file_settings.tracing})
        set_structured_logging(self.settings.logging.enabled, self.node_id)
        self._export_kv_backend()

    def _export_kv_backend(self) -> None:
        # Runners read the backend from their environment; a value set at launch wins.
        if KV_BACKEND_ENV not in self.launch_env:
            os.environ[KV_BACKEND_ENV] = self.settings.inference.kv_cache_backend

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
            task_status.started()
