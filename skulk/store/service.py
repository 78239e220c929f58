"""StoreService: the model store and staging as one node service.

On the store host it runs the store (registry, hub downloads) and its HTTP server. On every
node it prepares models for runners (`prepare_model`: stage from the store, or ask the store
host to fetch from the hub first), runs the eviction lifecycle, and answers the /store/* API.
With no `model_store` section (or `enabled: false`) it does nothing and the API says
"Store not configured".
"""

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from skulk.config import NodePaths, Settings
from skulk.faults import count
from skulk.models import find_model_dir, validate_model_dir
from skulk.store.client import HttpBackend, LocalBackend, StoreBackend
from skulk.store.errors import StoreNotConfigured
from skulk.store.host import StoreHost
from skulk.store.inventory import dir_size
from skulk.store.lifecycle import StagingLifecycle, disk_report
from skulk.store.locate import bind_host, is_store_host, store_address, store_url
from skulk.store.server import make_store_app, serve_store, store_token
from skulk.store.staging import Stager, fetch_entry
from skulk.types.commands import PurgeStaging

log = logging.getLogger(__name__)

THROTTLE_ENV = "SKULK_STAGING_THROTTLE_BPS"  # test-only: slow staging down to this many bytes/s


def supervised_instances(worker: Any) -> dict[str, str]:
    """instance id -> model id of the runners this node's worker supervises right now."""
    if worker is None:
        return {}
    return {sup.instance.instance_id: sup.instance.shard_assignments.model_id
            for sup in list(worker.supervisors.values())}


class StoreService:
    def __init__(self, settings: Settings, paths: NodePaths, *, node_id: str, friendly_name: str,
                 router: Any, telemetry: Any, local_instances: Callable[[], dict[str, str]],
                 send_command: Callable[[Any], Awaitable[None]] | None = None,
                 env: Mapping[str, str] = os.environ):
        cfg = settings.model_store
        self.config = cfg if cfg is not None and cfg.enabled else None
        self.node_id, self._router, self._telemetry = node_id, router, telemetry
        self._send_command = send_command  # to the master, as the API's commands go
        self._local_instances, self._timeout = local_instances, settings.node_timeout_seconds
        self._models_dir, self._search_dirs = paths.models_dir, tuple(paths.extra_model_dirs)
        self._api_host, self._event_log_dir = settings.api_host, paths.event_log_dir
        self._token = store_token(settings.cluster.secret)  # the store asks every caller for it
        self.host: StoreHost | None = None
        self.stager: Stager | None = None
        self.lifecycle: StagingLifecycle | None = None
        if self.config is None:
            return
        cfg = self.config
        hostname = socket.gethostname()
        self.is_host = is_store_host(cfg.store_host, node_id=node_id, node_name=friendly_name,
                                     hostname=None if settings.node_name else hostname)
        self.staging = cfg.staging_for(node_id, friendly_name, hostname)
        self.store_path = Path(cfg.store_path).expanduser()
        root = self.staging.node_cache_path.expanduser()
        self.staging_root = root if root.is_absolute() else paths.home / root
        if self.is_host:
            self.host = StoreHost(self.store_path, allow_hf_fallback=cfg.download.allow_hf_fallback,
                                  offline=settings.offline, hf_token=settings.hf_token)
        throttle = float(env[THROTTLE_ENV]) if env.get(THROTTLE_ENV) else None
        self.stager = Stager(self.staging_root, self._http_backend, node_id=node_id, emit=router.send_event,
                             allow_hf_fallback=cfg.download.allow_hf_fallback, throttle_bps=throttle)
        is_store_root = self.is_host and self.staging_root.resolve() == self.store_path.resolve()
        self.lifecycle = StagingLifecycle(self.staging_root, self.staging, node_id=node_id, router=router,
                                          in_use=self.in_use, local_instances=local_instances,
                                          event_log_dir=paths.event_log_dir, enabled=not is_store_root)

    # ----- where the store is -----

    @property
    def extra_model_dirs(self) -> tuple[Path, ...]:
        """Read-only dirs runners search besides the models dir: staging root, and the store path
        where this node reads the store directly (it is the host, or staging is off)."""
        if self.config is None:
            return ()
        direct = self.is_host or not self.staging.enabled
        return (self.staging_root, *((self.store_path,) if direct else ()))

    def url(self) -> str:
        cfg = self.config
        if cfg is None:
            raise StoreNotConfigured()
        if cfg.store_http_host:
            return store_url(cfg.store_http_host, cfg.store_port)
        beats = self._telemetry.live(trio.current_time(), self._timeout)
        peers = {n: (hb.identity.friendly_name, [i.ip_address for i in hb.interfaces]) for n, hb in beats.items()}
        return store_url(store_address(cfg.store_host, None, peers), cfg.store_port)

    def backend(self) -> StoreBackend:
        if self.config is None:
            raise StoreNotConfigured()
        if self.host is not None:
            return LocalBackend(self.host, self.url())
        return self._http_backend()

    def _http_backend(self) -> HttpBackend:
        return HttpBackend(self.url(), self._token)

    # ----- models for runners -----

    async def prepare_model(self, model_id: str) -> None:
        """Make `model_id` loadable from this node's search dirs before a runner starts.
        Raises a SkulkError saying why not (store unreachable, not in the store, bad bytes)."""
        if self.config is None or await trio.to_thread.run_sync(self._have_locally, model_id):
            return
        if self.host is not None:
            await fetch_entry(self.backend(), model_id, allow_hf_fallback=self.config.download.allow_hf_fallback)
        elif self.staging.enabled:
            await self.stager.stage(model_id)

    def _have_locally(self, model_id: str) -> bool:
        direct = self.extra_model_dirs[1:]  # the store path, where it is read in place
        found = find_model_dir(model_id, self._models_dir, (*self._search_dirs, *direct))
        return found is not None and validate_model_dir(found) is None

    def in_use(self) -> set[str]:
        """Models this node must keep: its instances' (from state), its runners', and in staging."""
        state = self._router.state
        models = {inst.shard_assignments.model_id for inst in state.instances.values()
                  if self.node_id in inst.shard_assignments.node_to_runner}
        models |= set(self._local_instances().values())
        return models | (self.stager.active if self.stager else set())

    # ----- running -----

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        if self.config is None:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            if self.host is not None:
                await nursery.start(self.host.run)
                nursery.start_soon(self._serve_store)
            await nursery.start(self.lifecycle.run)
            task_status.started()

    async def _serve_store(self) -> None:
        cfg = self.config
        where = bind_host(self._api_host, cfg.store_http_host)
        try:
            await serve_store(make_store_app(self.host, self._token), where, cfg.store_port)
        except OSError as exc:  # the node keeps running; /store/* then says "Store unreachable"
            log.error("model store server cannot listen on %s:%d: %s", where, cfg.store_port, exc)
        except Exception as exc:  # noqa: BLE001 - the store server ends, the node goes on
            count("store.server", f"model store server stopped: {type(exc).__name__}: {exc}")

    # ----- API -----

    async def request_purge(self, model_id: str | None) -> dict[str, Any]:
        """Ask every node (this one included) to drop idle staged copies: the master turns the
        command into a StagingPurgeRequested event that every node sees in the log."""
        if self._send_command is None:
            raise StoreNotConfigured()
        command = PurgeStaging(model_id=model_id)
        await self._send_command(command)
        what = f"staged copies of {model_id}" if model_id else "all staged copies"
        return {"commandId": command.command_id, "message": f"Purge of {what} not in use sent to every node"}

    async def storage_report(self) -> dict[str, Any]:
        if self.lifecycle is None:
            log_bytes = await trio.to_thread.run_sync(dir_size, self._event_log_dir)
            return {"nodeId": self.node_id, "stagingRoot": None, "stagedModels": [], "stagedTotalBytes": 0,
                    "eventLogBytes": log_bytes, **disk_report(self._event_log_dir)}
        return {"nodeId": self.node_id, **await self.lifecycle.report()}
