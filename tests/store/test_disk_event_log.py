"""DiskEventLog: records, archives, compaction, torn tails and the counting-only mode."""

import errno
import logging
import os
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
import zstandard

from skulk import codec
from skulk.store import event_log
from skulk.store.event_log import DiskEventLog
from skulk.types.events import IndexedEvent, TestEvent

GiB = 1024**3


class FakeDisk:
    """An injectable shutil.disk_usage whose free space a test can change."""

    def __init__(self, free: int = 100 * GiB) -> None:
        self.free = free

    def __call__(self, path: Path) -> SimpleNamespace:
        return SimpleNamespace(free=self.free)


def read_archive(path: Path) -> list[IndexedEvent]:
    """Decode a whole archive; every record in it must be whole and valid."""
    data = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
    events, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        events.append(codec.decode(data[pos + 4:pos + 4 + length], IndexedEvent))
        pos += 4 + length
    return events


def ev(idx: int, note: str = "") -> IndexedEvent:
    return IndexedEvent(idx=idx, event=TestEvent(event_id=f"e{idx}", note=note or f"n{idx}"))


def fill(log: DiskEventLog, start: int, stop: int, note: str = "") -> None:
    for i in range(start, stop):
        log.append(ev(i, note))


def idxs(events: list[IndexedEvent]) -> list[int]:
    return [e.idx for e in events]


@pytest.fixture
def disk() -> FakeDisk:
    return FakeDisk()


@pytest.fixture
def make_log(tmp_path, disk):
    opened: list[DiskEventLog] = []

    def make(**kwargs) -> DiskEventLog:
        kwargs.setdefault("disk_usage", disk)
        log = DiskEventLog(tmp_path / "log", **kwargs)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def test_append_and_read_back(make_log):
    log = make_log()
    fill(log, 0, 10)
    assert (log.start_idx, log.next_idx, len(log), log.persisted_count) == (0, 10, 10, 10)
    assert log.mode == "persisting"
    assert log.read_range(0, 10) == [ev(i) for i in range(10)]
    raw = (log.directory / "events.bin").read_bytes()
    (length,) = struct.unpack(">I", raw[:4])
    assert raw[4] == 0x01 and len(raw) > length + 4  # codec frame, several records


def test_ranges_are_half_open_and_clamped(make_log):
    log = make_log()
    fill(log, 0, 20)
    assert idxs(log.read_range(3, 7)) == [3, 4, 5, 6]
    assert idxs(log.read_range(18)) == [18, 19]
    assert idxs(log.read_range(15, 500)) == [15, 16, 17, 18, 19]
    assert log.read_range(7, 3) == [] and log.read_range(20, 30) == []
    assert idxs(log.read_range(-5, 2)) == [0, 1]


def test_empty_log_adopts_first_index_and_requires_contiguity(make_log):
    log = make_log()
    fill(log, 100, 105)
    assert (log.start_idx, log.next_idx, len(log)) == (100, 105, 5)
    assert idxs(log.read_range(0, 1000)) == [100, 101, 102, 103, 104]
    with pytest.raises(ValueError):
        log.append(ev(107))
    with pytest.raises(ValueError):
        log.append(ev(104))


def test_stale_active_file_is_archived_on_startup(make_log):
    first = make_log()
    fill(first, 0, 5)
    first.close()
    second = make_log()
    assert (second.start_idx, second.next_idx, len(second)) == (0, 0, 0)
    assert second.read_range(0, 10) == []
    [archive] = second.archives()
    assert archive.name.startswith("events.") and archive.name.endswith(".bin.zst")
    assert list(read_archive(archive)) == [ev(i) for i in range(5)]
    fill(second, 0, 3)  # a new session starts its indices over
    assert idxs(second.read_range(0, 3)) == [0, 1, 2]


def test_empty_stale_file_leaves_no_archive(make_log):
    make_log().close()
    assert make_log().archives() == []


def test_archives_keep_at_most_five_newest(make_log):
    for session in range(8):
        log = make_log()
        fill(log, 0, 3, note=f"s{session}")
        log.close()
    archives = make_log().archives()
    assert len(archives) == 5
    notes = [read_archive(a)[0].event.note for a in archives]
    assert notes == ["s3", "s4", "s5", "s6", "s7"]


def test_archives_respect_the_byte_budget(make_log):
    log = make_log()
    fill(log, 0, 200)
    log.close()
    one_archive = make_log().archives()[0].stat().st_size
    budget = int(one_archive * 2.5)
    for _ in range(4):
        log = make_log(archive_max_bytes=budget)
        fill(log, 0, 200)
        log.close()
    archives = make_log(archive_max_bytes=budget).archives()
    assert 1 <= len(archives) <= 2
    assert sum(a.stat().st_size for a in archives) <= budget


def test_torn_tail_is_cut_before_archiving(make_log):
    log = make_log()
    fill(log, 0, 4)
    log.close()
    with open(log.directory / "events.bin", "ab") as f:
        f.write(struct.pack(">I", 500) + b"partial")  # a record cut short by a crash
    archive = make_log().archives()[0]
    assert idxs(read_archive(archive)) == [0, 1, 2, 3]


def test_undecodable_last_record_is_dropped_before_archiving(make_log):
    log = make_log()
    fill(log, 0, 4)
    log.close()
    with open(log.directory / "events.bin", "ab") as f:
        f.write(struct.pack(">I", 6) + b"\x01junk!")
    archive = make_log().archives()[0]
    assert idxs(read_archive(archive)) == [0, 1, 2, 3]


def test_corrupt_record_stops_reading(make_log):
    log = make_log()
    fill(log, 0, 10)
    offset = log._offsets[7]  # the test knows the layout: corrupt record 7's payload
    with open(log.directory / "events.bin", "r+b") as f:
        f.seek(offset + 4)
        f.write(b"\xff\xff\xff\xff")
    assert idxs(log.read_range(0, 10)) == list(range(7))
    assert idxs(log.read_range(2, 5)) == [2, 3, 4]


def test_compaction_keeps_tail_with_absolute_indices(make_log):
    log = make_log()
    fill(log, 0, 100)
    before = log.bytes_on_disk()
    assert log.compact(keep_last=10) is True
    assert (log.start_idx, log.next_idx, len(log), log.persisted_count) == (90, 100, 10, 10)
    assert log.read_range(0, 100) == [ev(i) for i in range(90, 100)]
    assert log.bytes_on_disk() < before
    assert not (log.directory / "events.bin.tmp").exists()
    fill(log, 100, 105)
    assert idxs(log.read_range(95, 200)) == list(range(95, 105))
    log.close()
    archive = make_log().archives()[0]
    assert idxs(read_archive(archive)) == list(range(90, 105))


def test_compaction_edge_cases(make_log):
    log = make_log()
    fill(log, 0, 10)
    assert log.compact(keep_last=50) and idxs(log.read_range(0, 10)) == list(range(10))
    assert log.compact(keep_last=0)
    assert (log.start_idx, log.next_idx, len(log), log.read_range(0, 10)) == (10, 10, 0, [])
    fill(log, 10, 12)
    assert idxs(log.read_range(0, 20)) == [10, 11]
    with pytest.raises(ValueError):
        log.compact(-1)


def test_failed_compaction_leaves_log_intact(make_log, monkeypatch):
    log = make_log()
    fill(log, 0, 20)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(event_log, "_write_all", full)
    assert log.compact(keep_last=5) is False
    monkeypatch.undo()
    assert (log.start_idx, log.next_idx) == (0, 20)
    assert idxs(log.read_range(0, 20)) == list(range(20))
    assert not (log.directory / "events.bin.tmp").exists()
    fill(log, 20, 22)
    assert idxs(log.read_range(18, 30)) == [18, 19, 20, 21]


def test_low_space_at_open_counts_only_then_resumes(make_log, disk):
    disk.free = GiB  # below the 2 GiB default floor
    log = make_log(free_check_every=4)
    assert log.mode == "counting_only"
    fill(log, 0, 3)
    assert (log.next_idx, log.persisted_count, log.read_range(0, 3)) == (3, 0, [])
    disk.free = 10 * GiB
    fill(log, 3, 10)  # the 4th append runs the check (idx 3), persisting from there
    assert log.mode == "persisting"
    assert idxs(log.read_range(0, 10)) == list(range(3, 10))
    assert (len(log), log.persisted_count) == (10, 7)


def test_a_new_floor_is_measured_at_the_next_append(make_log, disk):
    disk.free = 5 * GiB
    log = make_log(free_check_every=1000, free_space_floor_bytes=10 * GiB)
    fill(log, 0, 2)
    assert log.mode == "counting_only"
    log.set_free_space_floor(GiB)  # lowered live: no waiting for the 1000th append
    fill(log, 2, 3)
    assert log.mode == "persisting" and idxs(log.read_range(0, 3)) == [2]
    log.set_free_space_floor(6 * GiB)
    fill(log, 3, 5)
    assert log.mode == "counting_only" and idxs(log.read_range(0, 5)) == [2]


def test_low_space_mid_session_degrades_and_resumes(make_log, disk, caplog):
    log = make_log(free_check_every=2)
    fill(log, 0, 4)
    disk.free = 0
    with caplog.at_level(logging.WARNING, logger="skulk.store.event_log"):
        fill(log, 4, 20)
        assert log.mode == "counting_only"
        assert log.next_idx == 20
        assert idxs(log.read_range(0, 20)) == [0, 1, 2, 3, 4]  # what it has
        disk.free = 100 * GiB
        fill(log, 20, 24)
    assert log.mode == "persisting"
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1  # logged once per mode change, not per append
    stored = idxs(log.read_range(0, 100))
    assert stored[:5] == [0, 1, 2, 3, 4] and stored[-1] == 23
    assert stored == sorted(stored)
    assert log.compact(keep_last=3) and idxs(log.read_range(0, 100)) == [21, 22, 23]


def test_enospc_on_write_never_raises(make_log, monkeypatch, disk):
    log = make_log(free_check_every=5)
    fill(log, 0, 3)
    written = []

    def half_then_full(fd, data):
        os.write(fd, data[: len(data) // 2])  # a torn record, then the disk is full
        written.append(len(data))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(event_log, "_write_all", half_then_full)
    fill(log, 3, 6)
    assert log.mode == "counting_only" and log.next_idx == 6
    assert len(written) == 1  # stopped writing after the failure
    monkeypatch.undo()
    fill(log, 6, 12)  # the next check, 5 appends after the failure (idx 8), finds room
    assert log.mode == "persisting"
    stored = log.read_range(0, 12)
    assert idxs(stored) == [0, 1, 2, 8, 9, 10, 11]  # the torn record was cut, no garbage
    assert log.persisted_count == len(stored)


def test_failed_archiving_at_open_counts_then_archives_on_resume(make_log, disk, monkeypatch):
    first = make_log()
    fill(first, 0, 3)
    first.close()

    def broken(source, directory):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(event_log, "_compress_into_archive", broken)
    log = make_log(free_check_every=2)
    assert log.mode == "counting_only" and log.archives() == []
    monkeypatch.undo()
    fill(log, 0, 4)  # the check at idx 1 archives the old file and opens a fresh one
    assert log.mode == "persisting"
    assert idxs(log.read_range(0, 4)) == [1, 2, 3]
    assert idxs(read_archive(log.archives()[0])) == [0, 1, 2]


def test_unusable_directory_counts_without_raising(tmp_path, disk):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    log = DiskEventLog(blocker / "log", disk_usage=disk, free_check_every=1)
    assert log.mode == "counting_only"
    fill(log, 0, 5)
    assert (log.next_idx, log.read_range(0, 5), log.compact(2)) == (5, [], True)
    assert log.start_idx == 3
    log.close()


def test_default_disk_usage_is_real(tmp_path):
    with DiskEventLog(tmp_path / "log", free_space_floor_bytes=0) as log:
        fill(log, 0, 2)
        assert log.mode == "persisting" and log.bytes_on_disk() > 0
    with pytest.raises(ValueError):
        log.append(ev(2))


def test_bytes_on_disk_counts_active_file_and_archives(make_log):
    log = make_log()
    fill(log, 0, 50)
    log.close()
    log = make_log()
    fill(log, 0, 5)
    active = (log.directory / "events.bin").stat().st_size
    archived = sum(a.stat().st_size for a in log.archives())
    assert log.bytes_on_disk() == active + archived > 0
