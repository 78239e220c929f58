"""When the master snapshots its State and compacts its log: pure arithmetic on indices.

Every `SNAPSHOT_EVENT_CADENCE` indexed events the master writes a snapshot of its State, then
cuts its disk log to the `REPLAY_TAIL_RETENTION_EVENTS` events up to the snapshot (plus any
indexed since). A failed attempt still counts, so it is retried one cadence later, not on every
event. Only a persisting log takes part: a counting-only log has nothing to compact, and a
snapshot would meet the same disk trouble.
"""

SNAPSHOT_EVENT_CADENCE = 10_000
REPLAY_TAIL_RETENTION_EVENTS = 10_000
SNAPSHOTS_KEPT = 3


def snapshot_due(last_idx: int, last_attempt_idx: int, cadence: int, log_mode: str) -> bool:
    """True once `cadence` events were indexed since the last attempt (-1 before the first)."""
    return log_mode == "persisting" and cadence > 0 and last_idx - last_attempt_idx >= cadence


def stop_snapshot_due(last_idx: int, last_snapshot_idx: int, log_mode: str) -> bool:
    """The forced snapshot at stop: something was indexed since the last one written."""
    return log_mode == "persisting" and last_idx >= 0 and last_idx != last_snapshot_idx


def compaction_keep_last(next_idx: int, snapshot_idx: int, tail: int) -> int:
    """How many of a log's newest events to keep: the `tail` events up to and including
    `snapshot_idx`, and every event after it (`next_idx` is one past the log's last)."""
    keep_from = max(0, snapshot_idx + 1 - max(0, tail))
    return max(0, next_idx - keep_from)
