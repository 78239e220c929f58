"""StoreHost: the store side of the model store, on the node named by `model_store.store_host`.

It owns `store_path` and its registry, serves health/registry/file lookups, and runs hub
downloads into the store when a model is missing and `allow_hf_fallback` is on.
"""

import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from skulk.errors import NotFound, SkulkError, Unavailable
from skulk.faults import isolate
from skulk.models import download_from_hub, validate_model_dir
from skulk.store.errors import ModelNotInStore
from skulk.store.registry import Registry, RegistryEntry, describe_model_dir, safe_relative
from skulk.types.ids import model_dir_name, model_id_of_dir_name, validate_model_id

log = logging.getLogger(__name__)


@dataclass
class DownloadJob:
    model_id: str
    status: str = "pending"  # pending -> downloading -> completed | failed
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"modelId": self.model_id, "status": self.status, "error": self.error,
                "startedAt": self.started_at, "finishedAt": self.finished_at}


def model_id_from_dir_name(name: str) -> str:
    return name.replace("--", "/", 1)


class StoreHost:
    def __init__(self, root: Path, *, allow_hf_fallback: bool, hub_endpoint: str | None = None,
                 offline: bool = False, hf_token: str | None = None):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(self.root)
        self.allow_hf_fallback, self.offline = allow_hf_fallback, offline
        self._hub_endpoint, self._hf_token = hub_endpoint, hf_token
        self.jobs: dict[str, DownloadJob] = {}
        self._job_send, self._job_recv = trio.open_memory_channel[str](math.inf)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Register model dirs that were copied in by hand, then run download jobs as asked."""
        task_status.started()  # hashing a big unlisted model must not hold up the node
        with isolate("store.register_unlisted"):  # an unreadable store dir: nothing registered, store lives on
            await trio.to_thread.run_sync(self.register_unlisted)
        async with trio.open_nursery() as nursery:
            async for model_id in self._job_recv:
                nursery.start_soon(self._download, model_id)

    def register_unlisted(self) -> list[str]:
        """Add registry entries for complete `<org>--<name>` dirs the registry does not know."""
        added = []
        for child in sorted(self.root.iterdir()):
            if not child.is_dir() or child.name.startswith(".") or "--" not in child.name:
                continue
            model_id = model_id_of_dir_name(child.name)
            if model_id is not None and self.registry.get(model_id) is None and validate_model_dir(child) is None:
                self.registry.put(describe_model_dir(child, model_id))
                added.append(model_id)
                log.info("store: registered %s found in %s", model_id, child)
        return added

    # ----- queries -----

    def health(self) -> dict[str, Any]:
        usage = shutil.disk_usage(self.root)
        return {"storePath": str(self.root), "freeBytes": usage.free, "totalBytes": usage.total,
                "usedBytes": usage.used}

    def registry_doc(self) -> dict[str, Any]:
        return {"entries": [e.model_dump() for e in self.registry.entries()]}

    def entry(self, model_id: str) -> RegistryEntry:
        entry = self.registry.get(model_id)
        if entry is None:
            raise ModelNotInStore(f"model {model_id!r} is not in the store at {self.root}", param="model_id")
        return entry

    def file_path(self, dir_name: str, rel: str) -> Path:
        """The on-disk path of one registered file; NotFound for anything else (no traversal)."""
        entry = self.registry.get(model_id_from_dir_name(dir_name))
        safe = safe_relative(rel)
        if entry is None or entry.dir_name != dir_name or safe is None or \
                not any(f.path == rel for f in entry.files):
            raise NotFound(f"no file {rel!r} for {dir_name!r} in the store")
        return self.root / dir_name / safe

    def downloads(self) -> dict[str, Any]:
        active = [j.to_json() for j in self.jobs.values() if j.status in ("pending", "downloading")]
        return {"downloads": active}

    def download_status(self, model_id: str) -> dict[str, Any]:
        job = self.jobs.get(model_id)
        if job is not None:
            return job.to_json()
        if self.registry.get(model_id) is not None:
            return DownloadJob(model_id, status="completed").to_json()
        raise NotFound(f"no store download of {model_id!r}", param="model_id")

    # ----- changes -----

    def request_download(self, model_id: str) -> dict[str, Any]:
        """Start fetching `model_id` from the hub into the store (idempotent)."""
        validate_model_id(model_id)  # a 400 before it becomes a job, and later a directory
        if self.registry.get(model_id) is not None:
            return DownloadJob(model_id, status="completed").to_json()
        job = self.jobs.get(model_id)
        if job is not None and job.status in ("pending", "downloading"):
            return job.to_json()
        if not self.allow_hf_fallback:
            raise ModelNotInStore(f"model {model_id!r} is not in the store and model_store.download."
                                  "allow_hf_fallback is false", param="model_id")
        if self.offline:
            raise Unavailable(f"model {model_id!r} is not in the store and the store host is offline")
        self.jobs[model_id] = job = DownloadJob(model_id, started_at=time.time())
        self._job_send.send_nowait(model_id)
        return job.to_json()

    async def _download(self, model_id: str) -> None:
        job = self.jobs[model_id]
        job.status = "downloading"
        target = self.root / model_dir_name(model_id)
        try:
            # Abandoned on cancel: a download must not hold up a shutdown or restart (it lands atomically).
            entry = await trio.to_thread.run_sync(self._fetch_and_describe, model_id, target, abandon_on_cancel=True)
            self.registry.put(entry)
        except SkulkError as exc:
            job.status, job.error = "failed", exc.message
        except Exception as exc:  # disk or hub-client errors: the job fails, the store lives on
            log.exception("store download of %s failed", model_id)
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            job.status = "completed"
        job.finished_at = time.time()
        log.info("store download of %s: %s%s", model_id, job.status, f" ({job.error})" if job.error else "")

    def _fetch_and_describe(self, model_id: str, target: Path) -> RegistryEntry:
        download_from_hub(model_id, target, endpoint=self._hub_endpoint, token=self._hf_token)
        return describe_model_dir(target, model_id)

    async def delete(self, model_id: str) -> dict[str, Any]:
        entry = self.registry.get(model_id)
        if entry is None:
            raise NotFound(f"model {model_id!r} is not in the store", param="model_id")
        self.registry.remove(model_id)
        self.jobs.pop(model_id, None)
        await trio.to_thread.run_sync(shutil.rmtree, self.root / entry.dir_name, True)
        return {"modelId": model_id, "deleted": True}
