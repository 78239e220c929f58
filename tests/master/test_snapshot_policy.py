"""The pure snapshot/compaction decisions: when a snapshot is due and what a compaction keeps."""

from skulk.master.snapshot_policy import (
    REPLAY_TAIL_RETENTION_EVENTS,
    SNAPSHOT_EVENT_CADENCE,
    compaction_keep_last,
    snapshot_due,
    stop_snapshot_due,
)


def test_the_reference_constants():
    assert SNAPSHOT_EVENT_CADENCE == 10_000 and REPLAY_TAIL_RETENTION_EVENTS == 10_000


def test_due_every_cadence_events_counted_from_the_last_attempt():
    assert not snapshot_due(8, -1, 10, "persisting")  # 9 events indexed (0..8)
    assert snapshot_due(9, -1, 10, "persisting")  # the 10th
    assert not snapshot_due(18, 9, 10, "persisting")
    assert snapshot_due(19, 9, 10, "persisting")
    assert snapshot_due(25, 9, 10, "persisting")  # a batch may overshoot the mark


def test_a_failed_attempt_waits_a_whole_cadence():
    # the attempt at 9 failed: its index is still the mark, so 10..18 do not retry on every event
    assert not any(snapshot_due(i, 9, 10, "persisting") for i in range(10, 19))
    assert snapshot_due(19, 9, 10, "persisting")


def test_only_a_persisting_log_is_snapshotted_or_compacted():
    assert not snapshot_due(100, -1, 10, "counting_only")
    assert not snapshot_due(100, -1, 10, "disabled")
    assert not snapshot_due(100, -1, 0, "persisting")  # a cadence of 0 turns snapshots off


def test_the_stop_snapshot_only_when_something_new_was_indexed():
    assert stop_snapshot_due(42, 39, "persisting")
    assert stop_snapshot_due(0, -1, "persisting")
    assert not stop_snapshot_due(42, 42, "persisting")  # already on disk
    assert not stop_snapshot_due(-1, -1, "persisting")  # nothing indexed at all
    assert not stop_snapshot_due(42, 39, "counting_only")
    assert not stop_snapshot_due(42, 39, "disabled")


def test_compaction_keeps_the_tail_up_to_the_snapshot_and_everything_after():
    # snapshot at 99, tail 50: keep 50..99 plus whatever came after (next_idx 100 -> none, 130 -> 30)
    assert compaction_keep_last(100, 99, 50) == 50
    assert compaction_keep_last(130, 99, 50) == 80
    # a short log: the tail reaches back past index 0, so everything stays
    assert compaction_keep_last(40, 29, 50) == 40
    assert compaction_keep_last(100, 99, 0) == 0
