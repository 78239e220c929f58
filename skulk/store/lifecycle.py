"""StagingLifecycle: when staged copies are deleted, and the /store/storage report.

Three triggers share one decision (skulk.store.eviction): an instance on this node is deleted,
the node starts (reconciling what a crashed run left), and a purge that reached every node as
a StagingPurgeRequested event. A model that this node's instances or runners use, or that is
being staged, is never deleted; neither is anything under the root the stager did not create.
"""

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from skulk.config import StagingSettings
from skulk.faults import isolate
from skulk.store.eviction import StagedModel, choose_evictions, choose_purge, keep_bytes
from skulk.store.inventory import dir_size, remove_dir, remove_partials, scan_staging, unmanaged_entries
from skulk.types.downloads import DownloadCompleted, DownloadPending
from skulk.types.events import InstanceDeleted, NodeDownloadProgress, StagingPurgeRequested
from skulk.types.state import State

log = logging.getLogger(__name__)

STATE_WAIT_S = 15.0  # start-up: how long to wait for the session's state before reconciling
STATE_SETTLE_S = 1.0  # ...and for it to stop changing (catch-up arrives in batches)
TEARDOWN_WAIT_S = 30.0  # after a deletion, how long to wait for our runners of it to exit


class StagingLifecycle:
    def __init__(self, root: Path, staging: StagingSettings, *, node_id: str, router: Any,
                 in_use: Callable[[], set[str]], local_instances: Callable[[], dict[str, str]],
                 event_log_dir: Path, enabled: bool = True):
        self.root, self.staging, self.node_id = Path(root), staging, node_id
        self._router, self._in_use, self._local_instances = router, in_use, local_instances
        self._event_log_dir = event_log_dir
        self._enabled = enabled and staging.cleanup_on_deactivate  # off where root is the store itself
        self._lock = trio.Lock()
        self._deleted: set[str] = set()
        self._wake = trio.Event()
        self._started_at = time.time()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        events = self._router.subscribe()  # before waiting, so no purge is missed
        task_status.started()
        await self._wait_for_state()
        with isolate("store.reconcile"):  # a disk error at start-up skips the reconcile, not the node
            await self.reconcile()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._eviction_loop)
            async for batch in events:
                for indexed in batch:
                    with isolate("store.event"):
                        self._on_event(indexed.event, nursery)

    def _on_event(self, event: Any, nursery: trio.Nursery) -> None:
        if isinstance(event, InstanceDeleted):
            self._deleted.add(event.instance_id)
            self._wake.set()
        elif isinstance(event, StagingPurgeRequested) and event.requested_at.timestamp() >= self._started_at:
            nursery.start_soon(self._guarded_purge, event.model_id)  # older ones are replays of the log

    async def _wait_for_state(self) -> None:
        with trio.move_on_after(STATE_WAIT_S):
            while self._router.state.last_event_applied_idx < 0:
                await self._router.changed.wait()
            while True:
                with trio.move_on_after(STATE_SETTLE_S) as quiet:
                    await self._router.changed.wait()
                if quiet.cancelled_caught:
                    return

    async def reconcile(self) -> list[str]:
        """Start-up: drop partial copies nobody needs, evict, and advertise what stays."""
        in_use = self._in_use()
        for name in await trio.to_thread.run_sync(remove_partials, self.root, in_use):
            log.info("staging: removed the unfinished copy %s left by an earlier run", name)
        evicted = await self.evict("node start-up")
        state: State = self._router.state
        mine = {d.model_id: d for d in state.downloads.get(self.node_id, [])}
        for model in await trio.to_thread.run_sync(scan_staging, self.root):
            if not isinstance(mine.get(model.model_id), DownloadCompleted):
                self._emit(DownloadCompleted(node_id=self.node_id, model_id=model.model_id,
                                             total_bytes=model.size_bytes))
        return evicted

    async def _eviction_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            with trio.move_on_after(TEARDOWN_WAIT_S):
                while self._deleted & set(self._local_instances()):
                    await trio.sleep(0.2)  # the runner still has the files open
            self._deleted.clear()
            with isolate("store.evict"):  # a failing pass is retried at the next deletion
                await self.evict("instance deactivated")

    async def _guarded_purge(self, model_id: str | None) -> None:
        with isolate("store.purge"):
            await self.purge(model_id)

    async def evict(self, trigger: str) -> list[str]:
        """Delete idle copies beyond the keep-recent budget (if the lifecycle is on)."""
        if not self._enabled:
            return []
        async with self._lock:
            staged = await trio.to_thread.run_sync(scan_staging, self.root)
            budget = keep_bytes(self.staging.staging_keep_recent_gb)
            return await self._remove(choose_evictions(staged, self._in_use(), budget), trigger)

    async def purge(self, model_id: str | None = None) -> list[str]:
        """Delete every idle copy (of `model_id`, or of all models), whatever the budget."""
        async with self._lock:
            staged = await trio.to_thread.run_sync(scan_staging, self.root)
            in_use = self._in_use()
            removed = await self._remove(choose_purge(staged, in_use, model_id), "purge")
            await trio.to_thread.run_sync(remove_partials, self.root, in_use, model_id)
            return removed

    async def _remove(self, victims: list[StagedModel], trigger: str) -> list[str]:
        removed = []
        for model in victims:
            if model.model_id in self._in_use():
                continue  # became in use while we scanned
            if not await trio.to_thread.run_sync(remove_dir, Path(model.directory), model.model_id):
                continue  # no longer a copy the store made (remove_dir counted and logged it)
            log.info("staging: evicted %s (%d bytes, %s)", model.model_id, model.size_bytes, trigger)
            removed.append(model.model_id)
            self._reset_download(model.model_id)
        return removed

    def _reset_download(self, model_id: str) -> None:
        """The state said this node had the model; now it must say it has not."""
        entries = self._router.state.downloads.get(self.node_id, [])
        if any(d.model_id == model_id and not isinstance(d, DownloadPending) for d in entries):
            self._emit(DownloadPending(node_id=self.node_id, model_id=model_id))

    def _emit(self, progress: Any) -> None:
        self._router.send_event(NodeDownloadProgress(download_progress=progress))

    async def report(self) -> dict[str, Any]:
        """GET /store/storage: this node's staged models and disk."""
        staged = await trio.to_thread.run_sync(scan_staging, self.root)
        in_use = self._in_use()
        log_bytes = await trio.to_thread.run_sync(dir_size, self._event_log_dir)
        models = [{"modelId": m.model_id, "directory": m.directory, "sizeBytes": m.size_bytes,
                   "lastUsedEpochSeconds": m.last_used, "inUse": m.model_id in in_use} for m in staged]
        unmanaged = await trio.to_thread.run_sync(unmanaged_entries, self.root)
        return {"stagingRoot": str(self.root), "stagedModels": models, "unmanagedEntries": unmanaged,
                "stagedTotalBytes": sum(m.size_bytes for m in staged), "eventLogBytes": log_bytes,
                **disk_report(self.root)}


def disk_report(path: Path) -> dict[str, int]:
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    usage = shutil.disk_usage(existing)
    return {"diskTotalBytes": usage.total, "diskFreeBytes": usage.free}
