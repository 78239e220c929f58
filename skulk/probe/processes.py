"""This node's process and its descendants (runners, helpers), for diagnostics."""

import os
import time
from datetime import datetime, timezone
from typing import Any

import psutil

from skulk.config.render import redacted_argv

# Kept between calls: psutil's cpu_percent compares with the previous call on the same object.
_SEEN: dict[int, psutil.Process] = {}
_MAX_COMMAND = 400


def _tracked(proc: psutil.Process) -> psutil.Process:
    known = _SEEN.get(proc.pid)
    try:
        if known is not None and known.create_time() == proc.create_time():
            return known
    except psutil.Error:
        pass
    _SEEN[proc.pid] = proc
    return proc


def _row(proc: psutil.Process, me: int, roles: dict[int, str], now: float) -> dict[str, Any] | None:
    try:
        with proc.oneshot():
            command = " ".join(redacted_argv(proc.cmdline())) or proc.name()  # no --cluster-secret value
            return {
                "pid": proc.pid,
                "parentPid": proc.ppid(),
                "role": "node" if proc.pid == me else roles.get(proc.pid, "child"),
                "command": command[:_MAX_COMMAND],
                "status": proc.status(),
                "cpuPercent": proc.cpu_percent(None),
                "memoryPercent": round(proc.memory_percent(), 3),
                "rss": proc.memory_info().rss,
                "elapsedSeconds": round(max(0.0, now - proc.create_time()), 3),
                "isChildOfSkulk": proc.pid != me,
            }
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


def process_table(roles: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """One row per process: this one first, then every descendant; `roles` names known pids."""
    me = os.getpid()
    root = psutil.Process(me)
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        procs = [root]
    now = time.time()
    rows = [row for p in procs if (row := _row(_tracked(p), me, roles or {}, now)) is not None]
    alive = {p.pid for p in procs}
    for pid in [pid for pid in _SEEN if pid not in alive]:
        del _SEEN[pid]
    return rows


def _reading(proc: psutil.Process) -> dict[str, Any]:
    with proc.oneshot():
        return {"pid": proc.pid, "cpuPercent": proc.cpu_percent(None), "memoryPercent": round(proc.memory_percent(), 3),
                "rss": proc.memory_info().rss, "numThreads": proc.num_threads(), "status": proc.status()}


def sample_processes(roles: dict[int, str], duration_s: float, interval_s: float = 0.5, *,
                     sleep: Any = time.sleep, clock: Any = time.time) -> dict[str, Any]:
    """CPU, memory and thread counts of these pids every `interval_s` for `duration_s` (blocking:
    run it in a thread). Best effort: a process that ends or refuses is named in `errors`."""
    errors: list[str] = []
    procs: dict[int, psutil.Process] = {}
    for pid in roles:
        try:
            procs[pid] = psutil.Process(pid)
            procs[pid].cpu_percent(None)  # the baseline the first sample's CPU % is measured from
        except psutil.Error as exc:
            errors.append(f"pid {pid}: {type(exc).__name__}")
    samples = []
    for _ in range(max(1, round(duration_s / interval_s))):
        sleep(interval_s)
        rows = []
        for pid, proc in list(procs.items()):
            try:
                rows.append({**_reading(proc), "role": roles[pid]})
            except psutil.Error as exc:
                errors.append(f"pid {pid}: {type(exc).__name__} after {len(samples)} samples")
                del procs[pid]
        at = datetime.fromtimestamp(clock(), timezone.utc).isoformat(timespec="microseconds")
        samples.append({"at": at, "processes": rows})
    return {"durationSeconds": duration_s, "intervalSeconds": interval_s, "samples": samples, "errors": errors}
