"""ConfigSync: keeps this node's ./skulk.yaml in step with the cluster-wide config in State.

`PUT /config` on any node becomes a SetClusterConfig command; the master turns it into a
ClusterConfigChanged event that every node applies, now or when it joins later. Here a node
rewrites its file when the replicated keys differ (keeping its own per-machine keys and
hf_token), applies what can change live and logs what needs a restart.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from skulk.config import DEFAULT_CONFIG_PATH
from skulk.config.sources import read_yaml_file
from skulk.config.sync import (
    changed_keys, cluster_part, merge_cluster_part, needs_restart, validate_file_values, write_config_file,
)
from skulk.errors import ConfigError
from skulk.faults import isolate
from skulk.routing.service import EventRouter

log = logging.getLogger(__name__)

ApplyLive = Callable[[Any], None]  # receives the Settings the new file alone describes


def default_config_path() -> Path:
    return Path.cwd() / DEFAULT_CONFIG_PATH


class ConfigSync:
    def __init__(self, router: EventRouter, apply_live: ApplyLive,
                 path: Callable[[], Path] = default_config_path):
        self._router = router
        self._apply_live = apply_live
        self._path = path
        self._applied: dict[str, Any] | None = None
        self.counters = {"config_syncs": 0, "config_files_written": 0, "config_sync_errors": 0}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            changed = self._router.changed  # taken before checking, so no change slips between
            with isolate("config_sync.check"):  # check() marks a config applied first: never retried hot
                self.check()
            await changed.wait()

    def check(self) -> None:
        config = self._router.state.cluster_config
        if config is None or config == self._applied:
            return
        previous, self._applied = self._applied, config
        self.counters["config_syncs"] += 1
        try:
            self._sync(config, previous)
        except (ConfigError, OSError) as exc:
            self.counters["config_sync_errors"] += 1
            message = exc.message if isinstance(exc, ConfigError) else str(exc)
            log.error("cluster config not applied here: %s", message)

    def _sync(self, config: dict[str, Any], previous: dict[str, Any] | None) -> None:
        path = self._path()
        local = self._read(path)
        merged = merge_cluster_part(local, config)
        new_settings = validate_file_values(merged)  # never write a file this node cannot start from
        written = cluster_part(local) != cluster_part(config)
        if written:
            write_config_file(path, merged)
            self.counters["config_files_written"] += 1
        before = _settings_or_none(cluster_part(previous if previous is not None else local))
        restart = needs_restart(changed_keys(before, validate_file_values(cluster_part(config))))
        self._apply_live(new_settings)
        log.info("cluster config applied%s", f" and written to {path}" if written else "")
        if restart:
            log.warning("cluster config changed keys that apply after a restart: %s", ", ".join(restart))

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        if not path.exists():
            return {}
        try:
            return read_yaml_file(path, str(path))
        except ConfigError as exc:
            log.warning("replacing unreadable %s with the cluster config: %s", path, exc.message)
            return {}


def _settings_or_none(values: dict[str, Any]) -> Any:
    try:
        return validate_file_values(values)
    except ConfigError:
        return None
