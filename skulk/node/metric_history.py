"""This node's metric history: a sampler reading its own heartbeat and state, and a bounded sqlite store.

The store is synchronous (stdlib sqlite3 behind a lock); the sampler calls it through
trio.to_thread, so no disk write ever runs on the event loop.
"""

import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from skulk.faults import isolate
from skulk.types.state import State
from skulk.types.tasks import TaskStatus
from skulk.types.wire import NodeHeartbeat

FIELDS = ("cpu_percent", "memory_used_bytes", "memory_total_bytes", "disk_used_bytes", "disk_total_bytes",
          "accelerator_percent", "accelerator_memory_used_bytes", "accelerator_memory_total_bytes",
          "tokens_per_second", "queue_depth")
MAX_ROWS = 200_000  # about 48 h at one sample a second, ~20 MB: the size bound whatever the settings
MAX_POINTS = 2_000  # samples in one answer; a wider range is averaged over a larger step
_IN_FLIGHT = (TaskStatus.Pending, TaskStatus.Running)


class MetricHistory:
    """Samples by time, pruned by age (`retention_s`) and by count (`max_rows`) on every write."""

    def __init__(self, path: Path | None, *, retention_s: float, max_rows: int = MAX_ROWS):
        self.path, self.retention_s, self.max_rows = path, retention_s, max_rows
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            target = ":memory:" if self.path is None else str(self.path)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"CREATE TABLE IF NOT EXISTS samples (at REAL NOT NULL, {', '.join(f'{f} REAL' for f in FIELDS)})")
            db.execute("CREATE INDEX IF NOT EXISTS samples_at ON samples(at)")
            self._db = db
        return self._db

    def add(self, row: dict[str, Any], now: float | None = None) -> None:
        """Store one sample (its `at` is unix seconds), then prune what is too old or too many."""
        now = row["at"] if now is None else now
        with self._lock:
            db = self._conn()
            db.execute(f"INSERT INTO samples (at, {', '.join(FIELDS)}) VALUES ({', '.join('?' * (len(FIELDS) + 1))})",
                       [row["at"], *(row.get(f) for f in FIELDS)])
            db.execute("DELETE FROM samples WHERE at < ?", (now - self.retention_s,))
            # rowids grow by one per insert, so this keeps at most max_rows, the newest
            db.execute("DELETE FROM samples WHERE rowid <= (SELECT MAX(rowid) FROM samples) - ?", (self.max_rows,))

    def count(self) -> int:
        with self._lock:
            return self._conn().execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def clear(self) -> int:
        """Forget every sample; the number removed."""
        with self._lock:
            return self._conn().execute("DELETE FROM samples").rowcount

    def query(self, since: float, until: float, step: float | None = None) -> tuple[float | None, list[dict]]:
        """Samples in [since, until], oldest first: raw, or averaged per `step` seconds (each at its
        step's start). A range that would give more than MAX_POINTS is averaged over a wider step."""
        with self._lock:
            db = self._conn()
            if step is None:
                n = db.execute("SELECT COUNT(*) FROM samples WHERE at >= ? AND at <= ?", (since, until)).fetchone()[0]
                if n <= MAX_POINTS:
                    rows = db.execute(f"SELECT at, {', '.join(FIELDS)} FROM samples WHERE at >= ? AND at <= ? "
                                      "ORDER BY at", (since, until)).fetchall()
                    return None, [_as_dict(r) for r in rows]
            step = max(step or 0.0, wide_enough_step(since, until))
            avgs = ", ".join(f"AVG({f})" for f in FIELDS)
            rows = db.execute(f"SELECT CAST(at / ? AS INTEGER) * ? AS b, {avgs} FROM samples WHERE at >= ? AND at <= ? "
                              "GROUP BY CAST(at / ? AS INTEGER) ORDER BY b DESC LIMIT ?",
                              (step, step, since, until, step, MAX_POINTS)).fetchall()
            return step, [_as_dict(r) for r in reversed(rows)]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def wide_enough_step(since: float, until: float) -> float:
    """The smallest whole-second step that fits [since, until] in MAX_POINTS buckets."""
    return float(max(1, math.ceil(max(until - since, 0.0) / (MAX_POINTS - 1))))


def _as_dict(row: tuple) -> dict:
    out: dict[str, Any] = {"at": row[0]}
    for name, value in zip(FIELDS, row[1:]):
        if value is not None and (name.endswith("_bytes") or name == "queue_depth"):
            value = round(value) if name.endswith("_bytes") else round(value, 2)
        elif value is not None:
            value = round(value, 2)
        out[name] = value
    return out


def sample_of(node_id: str, beat: NodeHeartbeat | None, state: State, tokens_per_second: float | None,
              at: float) -> dict[str, Any]:
    """One row from this node's latest heartbeat and the replicated state (pure)."""
    row: dict[str, Any] = {"at": at, "tokens_per_second": tokens_per_second, "queue_depth": queue_depth(state, node_id)}
    if beat is None:
        return row
    mem, system = beat.memory, beat.system
    row["cpu_percent"] = system.pcpu_usage * 100.0
    row["memory_total_bytes"] = mem.ram_total.in_bytes
    row["memory_used_bytes"] = mem.ram_total.in_bytes - mem.ram_available.in_bytes
    if beat.disk is not None and beat.disk.total.in_bytes:
        row["disk_total_bytes"] = beat.disk.total.in_bytes
        row["disk_used_bytes"] = beat.disk.total.in_bytes - beat.disk.available.in_bytes
    acc = system.accelerator
    if acc is not None:
        ratio = acc.utilization_ratio if acc.utilization_ratio is not None else system.gpu_usage
        row["accelerator_percent"] = ratio * 100.0
        row["accelerator_memory_used_bytes"] = acc.vram_used_bytes
        row["accelerator_memory_total_bytes"] = acc.vram_total_bytes
    return row


def queue_depth(state: State, node_id: str) -> int:
    """Tasks waiting or running on instances that have a shard on this node."""
    mine = {iid for iid, inst in state.instances.items() if node_id in inst.shard_assignments.node_to_runner}
    return sum(1 for t in state.tasks.values() if t.instance_id in mine and t.task_status in _IN_FLIGHT)


class MetricSampler:
    """Every `interval` seconds: one row into the store, written off the event loop."""

    def __init__(self, node_id: str, store: MetricHistory, *, own_beat: Callable[[], NodeHeartbeat | None],
                 state: Callable[[], State], interval: float, clock: Callable[[], float] = time.time):
        self.node_id, self.store, self.interval = node_id, store, interval
        self._own_beat, self._state, self._clock = own_beat, state, clock
        self._tokens = 0
        self._last: tuple[float, int] | None = None  # (time, token count) at the previous sample

    def note_output(self, out: Any) -> None:
        """A runner output this node produced (rank 0): its tokens count toward tokens per second."""
        self._tokens += len(getattr(out, "token_ids", None) or ()) or (1 if getattr(out, "text", "") else 0)

    def take_sample(self) -> dict[str, Any]:
        now = self._clock()
        tps = None
        if self._last is not None and now > self._last[0]:
            tps = (self._tokens - self._last[1]) / (now - self._last[0])
        self._last = (now, self._tokens)
        return sample_of(self.node_id, self._own_beat(), self._state(), tps, now)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            task_status.started()
            while True:
                with isolate("metrics.sample"):  # a bad disk or reading loses one sample only
                    row = self.take_sample()
                    await trio.to_thread.run_sync(self.store.add, row)
                await trio.sleep(self.interval)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.store.close)
