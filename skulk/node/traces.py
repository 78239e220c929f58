"""Trace files on disk: `traces_dir/trace_<task_id>.json` in Chrome trace format, and the janitor.

Traces are written by the API node that owns a request: its own spans when the request ends,
and every rank's spans when the master's TracesMerged arrives, in either order (each write
merges into the file). Every read here is best effort so a corrupt or half-deleted file never
breaks a listing.
"""

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import trio

from skulk.atomic_files import write_file_atomically
from skulk.faults import isolate
from skulk.node.janitor import FIRST_DELAY_S as JANITOR_FIRST_DELAY_S
from skulk.node.janitor import INTERVAL_S as JANITOR_INTERVAL_S
from skulk.node.janitor import run_janitor
from skulk.node.trace_stats import rank_events, source_nodes, spans_of
from skulk.types.events import TracesMerged

log = logging.getLogger(__name__)

TRACE_PREFIX, TRACE_SUFFIX = "trace_", ".json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # task ids are uuids; refuse anything path-like
DAY_S = 86400.0
REPLAY_HORIZON_S = 600.0
_MERGE_LOCK = threading.Lock()  # read-merge-write of one file must not interleave (API loop vs writer thread)


def valid_task_id(task_id: str) -> bool:
    return bool(_SAFE_ID.match(task_id)) and not task_id.startswith(".")


def trace_path(traces_dir: Path, task_id: str) -> Path | None:
    if not valid_task_id(task_id):
        return None
    return traces_dir / f"{TRACE_PREFIX}{task_id}{TRACE_SUFFIX}"


def task_id_of(path: Path) -> str:
    return path.name[len(TRACE_PREFIX):-len(TRACE_SUFFIX)]


def write_trace(traces_dir: Path, task_id: str, events: list[dict[str, Any]]) -> Path:
    """Write atomically and durably so readers never see half a trace."""
    path = trace_path(traces_dir, task_id)
    if path is None:
        raise ValueError(f"Unsafe task id for a trace file: {task_id!r}")
    write_file_atomically(path, json.dumps({"traceEvents": events}), mode=0o644)
    return path


def merge_trace(traces_dir: Path, task_id: str, events: list[dict[str, Any]]) -> Path:
    """Add events to the task's trace file (exact duplicates dropped), ordered by time, atomically."""
    with _MERGE_LOCK:
        path = trace_path(traces_dir, task_id)
        existing = read_events(path) if path is not None and path.is_file() else None
        unique: dict[str, dict[str, Any]] = {}
        for event in [*(existing or []), *events]:
            unique.setdefault(json.dumps(event, sort_keys=True), event)
        ordered = sorted(unique.values(), key=lambda e: (e.get("ph") != "M", e.get("ts", 0), e.get("tid", 0)))
        return write_trace(traces_dir, task_id, ordered)


def read_events(path: Path) -> list[dict[str, Any]] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    return events if isinstance(events, list) else None


def load_trace(traces_dir: Path | None, task_id: str) -> list[dict[str, Any]] | None:
    path = trace_path(traces_dir, task_id) if traces_dir is not None else None
    return read_events(path) if path is not None and path.is_file() else None


def summarize(path: Path) -> dict[str, Any] | None:
    """One row of GET /v1/traces."""
    events = read_events(path)
    try:
        st = path.stat()
    except OSError:
        return None
    if events is None:
        return None
    spans = spans_of(events)
    args = [e.get("args") or {} for e in spans]
    # The API node's spans name the request (camelCase); a file of rank spans only falls back to theirs.
    first_args = next((a for a in args if "taskKind" in a), args[0] if args else {})
    return {"taskId": task_id_of(path),
            "createdAt": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(),
            "fileSize": st.st_size, "modelId": first_args.get("modelId", first_args.get("model_id")),
            "taskKind": first_args.get("taskKind", first_args.get("task_kind")),
            "categories": sorted({str(e.get("cat", "")) for e in spans}), "tags": first_args.get("tags") or [],
            "hasToolActivity": False, "sourceNodes": source_nodes(events)}


def trace_files(traces_dir: Path | None) -> list[Path]:
    if traces_dir is None or not traces_dir.is_dir():
        return []
    return [p for p in traces_dir.glob(f"{TRACE_PREFIX}*{TRACE_SUFFIX}") if p.is_file()]


def list_traces(traces_dir: Path | None) -> list[dict[str, Any]]:
    """Local traces, newest first."""
    rows = [row for p in trace_files(traces_dir) if (row := summarize(p)) is not None]
    return sorted(rows, key=lambda r: r["createdAt"], reverse=True)


def delete_traces(traces_dir: Path | None, task_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    deleted, not_found = [], []
    for task_id in task_ids:
        path = trace_path(traces_dir, task_id) if traces_dir is not None else None
        try:
            if path is None:
                raise FileNotFoundError(task_id)
            path.unlink()
            deleted.append(task_id)
        except FileNotFoundError:
            not_found.append(task_id)
    return deleted, not_found


def is_expired(mtime: float, now: float, retention_days: float) -> bool:
    """The janitor's decision: older than the retention; retention <= 0 keeps everything."""
    return retention_days > 0 and now - mtime > retention_days * DAY_S


def prune_old_trace_files(traces_dir: Path | None, retention_days: float, now: float) -> list[Path]:
    """Delete expired trace files; a file that cannot be read or removed is logged and skipped."""
    removed = []
    if retention_days <= 0:
        return removed
    for path in trace_files(traces_dir):
        try:
            if is_expired(path.stat().st_mtime, now, retention_days):
                path.unlink()
                removed.append(path)
        except OSError as exc:
            log.warning("trace janitor could not remove %s: %s", path, exc)
    return removed


async def run_trace_janitor(traces_dir: Path, retention_days: Callable[[], float], *,
                            first_delay: float = JANITOR_FIRST_DELAY_S, interval: float = JANITOR_INTERVAL_S,
                            now: Callable[[], float] = time.time, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """First pass a minute after start, then hourly; the retention is re-read every pass."""
    await run_janitor("trace janitor", lambda: prune_old_trace_files(traces_dir, retention_days(), now()),
                      first_delay=first_delay, interval=interval, task_status=task_status)


def write_merged(traces_dir: Path, node_id: str, event: TracesMerged) -> Path | None:
    """The ranks' spans into the trace file, on the node that owns the request (any node if unknown)."""
    if event.owner_node not in (None, node_id):
        return None
    try:
        return merge_trace(traces_dir, event.task_id, rank_events(event.traces))
    except (OSError, ValueError) as exc:
        log.warning("could not write the ranks' trace of task %s: %s", event.task_id, exc)
        return None


def _ended_us(event: TracesMerged) -> int:
    return max((t.start_us + t.duration_us for t in event.traces), default=0)


async def run_trace_writer(traces_dir: Path, node_id: str, batches: trio.MemoryReceiveChannel, *,
                           now: Callable[[], float] = time.time, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Follow the applied events (EventRouter.subscribe()) and write each TracesMerged. Merges
    that ended well before this writer started are a restart's catch-up replay: skipped, so
    traces deleted by hand or by the janitor do not come back."""
    oldest_us = int((now() - REPLAY_HORIZON_S) * 1_000_000)
    task_status.started()
    async for batch in batches:
        for indexed in batch:
            if isinstance(indexed.event, TracesMerged):
                with isolate("traces.write"):  # a bad merge or a disk error loses that trace only
                    if _ended_us(indexed.event) >= oldest_us:
                        await trio.to_thread.run_sync(write_merged, traces_dir, node_id, indexed.event)
