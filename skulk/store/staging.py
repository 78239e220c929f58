"""Stager: copies a model from the store host to this node's staging root before a runner loads it.

Every file is checked against the registry (size and sha256) before it counts, and the model
dir appears by one rename of `.partial/<org>--<name>` once all of it is there, so a runner
never sees half a model. The partial dir gets the store's marker first (skulk.store.inventory),
so only dirs made here are ever evicted. A copy cut short (crash, kill, cancel) resumes: finished files stay
in the partial dir and are re-verified, and a cut-off file continues with a Range request.
"""

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import trio

from skulk.atomic_files import fsync_dir
from skulk.errors import SkulkError
from skulk.models import validate_model_dir
from skulk.store.client import HttpBackend, StoreBackend
from skulk.store.errors import ModelNotInStore, StagingFailed
from skulk.store.inventory import (
    PARTIAL_DIR,
    note_unmanaged,
    read_marker,
    staged_model_id,
    touch_last_used,
    write_marker,
)
from skulk.store.registry import RegistryEntry, StoredFile, hash_file, safe_relative
from skulk.types.downloads import DownloadCompleted, DownloadFailed, DownloadOngoing
from skulk.types.events import NodeDownloadProgress
from skulk.types.ids import model_dir_name

log = logging.getLogger(__name__)

FLUSH_BYTES = 4 * 1024 * 1024  # hash and write in a thread per batch, off the node's event loop
THROTTLED_FLUSH_BYTES = 256 * 1024  # a throttled (test) copy flushes often, so a kill leaves a part file
EMIT_EVERY_S, EMIT_EVERY_FRACTION = 1.0, 0.05


class _Progress:
    """DownloadOngoing at most once a second or per 5%, then DownloadCompleted."""

    def __init__(self, emit: Callable[[object], None], node_id: str, model_id: str, total: int):
        self._emit, self._node, self._model, self.total = emit, node_id, model_id, total
        self.done, self._last_t, self._last_done = 0, float("-inf"), -1

    def add(self, n: int) -> None:
        self.done += n
        now = trio.current_time()
        moved = (self.done - self._last_done) / max(self.total, 1)
        if now - self._last_t >= EMIT_EVERY_S or moved >= EMIT_EVERY_FRACTION:
            self._last_t, self._last_done = now, self.done
            self._send(DownloadOngoing(node_id=self._node, model_id=self._model,
                                       downloaded_bytes=self.done, total_bytes=self.total))

    def completed(self) -> None:
        self._send(DownloadCompleted(node_id=self._node, model_id=self._model, total_bytes=self.total))

    def _send(self, progress) -> None:
        self._emit(NodeDownloadProgress(download_progress=progress))


class _PartSink:
    """`<file>.part`: appended to and hashed as it grows; picks up where a previous copy stopped."""

    def __init__(self, path: Path, expected_size: int):
        self.path, self.hasher = path, hashlib.sha256()
        if path.exists() and path.stat().st_size > expected_size:
            path.unlink()  # longer than the file can be: not ours to resume
        self.fh = open(path, "ab")
        self.size = 0
        with open(path, "rb") as existing:
            while chunk := existing.read(FLUSH_BYTES):
                self.hasher.update(chunk)
                self.size += len(chunk)

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.hasher.update(data)
        self.size += len(data)

    def restart(self) -> None:
        self.fh.truncate(0)
        self.hasher, self.size = hashlib.sha256(), 0

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()


async def fetch_entry(backend: StoreBackend, model_id: str, *, allow_hf_fallback: bool,
                      poll_interval: float = 1.0) -> RegistryEntry:
    """The model's registry entry; when it is missing, have the store host fetch it from the hub
    first (or fail saying the fallback is off)."""
    try:
        return await backend.entry(model_id)
    except ModelNotInStore:
        if not allow_hf_fallback:
            raise ModelNotInStore(f"model {model_id!r} is not in the model store at {backend.url} and "
                                  "model_store.download.allow_hf_fallback is false", param="model_id") from None
    log.info("%s is not in the store; asking the store host to download it", model_id)
    await backend.request_download(model_id)
    while (status := await backend.download_status(model_id))["status"] not in ("completed", "failed"):
        await trio.sleep(poll_interval)
    if status["status"] == "failed":
        raise StagingFailed(f"the store host could not download {model_id}: {status.get('error')}")
    return await backend.entry(model_id)


class Stager:
    def __init__(self, root: Path, backend: Callable[[], HttpBackend], *, node_id: str,
                 emit: Callable[[object], None], allow_hf_fallback: bool, throttle_bps: float | None = None,
                 poll_interval: float = 1.0):
        self.root = Path(root)
        self._backend, self._node_id, self._emit = backend, node_id, emit
        self._allow_hf, self._throttle, self._poll = allow_hf_fallback, throttle_bps, poll_interval
        self.active: set[str] = set()  # models being staged right now (never evicted)
        self._locks: dict[str, trio.Lock] = {}

    async def stage(self, model_id: str) -> Path:
        """The staged model dir, copying it from the store first if needed."""
        async with self._locks.setdefault(model_id, trio.Lock()):
            self.active.add(model_id)
            try:
                return await self._stage(model_id)
            finally:
                self.active.discard(model_id)

    async def _stage(self, model_id: str) -> Path:
        target = self.root / model_dir_name(model_id)  # refuses an id that could leave the root
        try:
            if await trio.to_thread.run_sync(_existing_copy, target, model_id):  # the store need not be up
                return target
            backend = self._backend()
            entry = await fetch_entry(backend, model_id, allow_hf_fallback=self._allow_hf, poll_interval=self._poll)
            if entry.model_id != model_id:
                raise StagingFailed(f"the store answered for {entry.model_id!r} when asked for {model_id!r}")
            await self._copy(backend, entry, target)
        except SkulkError as exc:
            self._failed(model_id, exc.message)
            raise
        except (OSError, httpx.HTTPError) as exc:
            message = f"staging {model_id} failed: {type(exc).__name__}: {exc}"
            self._failed(model_id, message)
            raise StagingFailed(message) from exc
        return target

    def _failed(self, model_id: str, message: str) -> None:
        log.warning("staging %s failed: %s", model_id, message)
        self._emit(NodeDownloadProgress(download_progress=DownloadFailed(
            node_id=self._node_id, model_id=model_id, error_message=message)))

    async def _copy(self, backend: HttpBackend, entry: RegistryEntry, target: Path) -> None:
        partial = self.root / PARTIAL_DIR / entry.dir_name
        await trio.to_thread.run_sync(_claim_partial, partial, entry.model_id)
        progress = _Progress(self._emit, self._node_id, entry.model_id, entry.total_bytes)
        progress.add(0)
        for stored in entry.files:
            await self._fetch(backend, entry, stored, partial, progress)
        await trio.to_thread.run_sync(_finish, partial, target, entry.model_id)
        progress.completed()
        log.info("staged %s (%d bytes) in %s", entry.model_id, entry.total_bytes, target)

    async def _fetch(self, backend: HttpBackend, entry: RegistryEntry, stored: StoredFile, partial: Path,
                     progress: _Progress) -> None:
        rel = safe_relative(stored.path)
        if rel is None:
            raise StagingFailed(f"store registry for {entry.model_id} names an unsafe path {stored.path!r}")
        dest = partial / rel
        if dest.exists():
            if await trio.to_thread.run_sync(_matches, dest, stored):
                log.info("staging %s: reusing finished %s", entry.model_id, stored.path)
                progress.add(stored.size)
                return
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        sink = await trio.to_thread.run_sync(_PartSink, dest.with_name(dest.name + ".part"), stored.size)
        try:
            if sink.size:
                log.info("staging %s: resuming %s from byte %d of %d", entry.model_id, stored.path,
                         sink.size, stored.size)
            progress.add(sink.size)
            if sink.size < stored.size:
                await self._download_into(backend, entry.dir_name, stored, sink, progress)
        finally:
            with trio.CancelScope(shield=True):  # a cancelled copy still flushes what it has, to resume
                await trio.to_thread.run_sync(sink.close)
        if sink.size != stored.size or sink.hasher.hexdigest() != stored.sha256:
            sink.path.unlink(missing_ok=True)
            raise StagingFailed(f"staging {entry.model_id}: {stored.path} does not match the store's registry "
                                f"({sink.size} of {stored.size} bytes, sha256 {sink.hasher.hexdigest()[:12]}…)")
        os.replace(sink.path, dest)

    async def _download_into(self, backend: HttpBackend, dir_name: str, stored: StoredFile, sink: _PartSink,
                             progress: _Progress) -> None:
        flush_at = THROTTLED_FLUSH_BYTES if self._throttle else FLUSH_BYTES
        async with backend.open_file(dir_name, stored.path, sink.size) as resp:
            if resp.status_code == 200 and sink.size:  # the server ignored Range: start over
                progress.add(-sink.size)
                await trio.to_thread.run_sync(sink.restart)
            buf, got, started = bytearray(), 0, trio.current_time()
            async for chunk in resp.aiter_bytes():
                buf += chunk
                got += len(chunk)
                progress.add(len(chunk))
                if len(buf) >= flush_at:
                    await trio.to_thread.run_sync(sink.write, bytes(buf))
                    buf.clear()
                if self._throttle:
                    await trio.sleep(max(0.0, got / self._throttle - (trio.current_time() - started)))
            if buf:
                await trio.to_thread.run_sync(sink.write, bytes(buf))


def _existing_copy(target: Path, model_id: str) -> bool:
    """True if `target` can be used as is: our finished copy (marked used now), or a loadable dir
    someone else put there (used, never written to); a link or other thing in the way fails."""
    if staged_model_id(target) == model_id:  # only ever appears complete
        touch_last_used(target, model_id)
        return True
    if not os.path.lexists(target):
        return False
    note_unmanaged(target)
    if target.is_dir() and validate_model_dir(target) is None:
        return True
    raise StagingFailed(f"{target} is in the way of staging {model_id} and was not created by the store; "
                        "move it away to let the store stage the model there")


def _claim_partial(partial: Path, model_id: str) -> None:
    """The partial dir, marked as the store's; a link there is refused, never followed."""
    for path in (partial.parent, partial):
        if path.is_symlink():
            raise StagingFailed(f"{path} is a symbolic link; the stager writes only into dirs it creates")
    partial.mkdir(parents=True, exist_ok=True)
    if read_marker(partial) != model_id:
        write_marker(partial, model_id)


def _matches(path: Path, stored: StoredFile) -> bool:
    return path.stat().st_size == stored.size and hash_file(path) == stored.sha256


def _finish(partial: Path, target: Path, model_id: str) -> None:
    """Check the finished copy loads, then publish it with one rename."""
    if problem := validate_model_dir(partial):
        shutil.rmtree(partial, ignore_errors=True)  # verified bytes that do not load: resuming cannot help
        raise StagingFailed(f"the store's copy of {model_id} is not loadable: {problem}")
    touch_last_used(partial, model_id)
    os.rename(partial, target)
    fsync_dir(target.parent)  # the published copy survives a power cut
