"""ApiEventLog: snapshot gaps, the compaction policy, jobs off the event loop, counting-only spells."""

import threading

import trio

from skulk.store.api_event_log import ApiEventLog
from skulk.store.event_log import DiskEventLog, archive_paths
from skulk.types.events import IndexedEvent, StateSnapshotHydrated
from skulk.types.state import State
from tests.store.test_disk_event_log import GiB, FakeDisk, ev, idxs


def snapshot(idx: int) -> IndexedEvent:
    return IndexedEvent(idx=idx, event=StateSnapshotHydrated(state=State(last_event_applied_idx=idx)))


def feed(log: ApiEventLog, start: int, stop: int) -> None:
    for i in range(start, stop):
        log.append(ev(i))


def read(log: ApiEventLog) -> list[int]:
    async def main():
        return idxs(await log.read_all())
    return trio.run(main)


def active_size(log: ApiEventLog) -> int:
    return (log.directory / "events.bin").stat().st_size


def test_snapshots_are_left_out_and_their_jump_leaves_a_gap(tmp_path):
    log = ApiEventLog(tmp_path / "api", disk_usage=FakeDisk())
    log.append(snapshot(0))  # a new master's seed
    feed(log, 1, 4)
    log.append(snapshot(9))  # fell behind: the master sent its state instead of 4..9
    feed(log, 10, 12)
    assert read(log) == [1, 2, 3, 10, 11]
    assert log.mode == "persisting" and log.stored == 5
    log.close()
    feed(log, 12, 13)  # after close: dropped, never raises
    assert log.mode == "disabled" and read(log) == []


def test_compacts_to_the_last_events_every_n_appends_once_over_the_size(tmp_path):
    log = ApiEventLog(tmp_path / "api", check_every=4, compact_above_bytes=0, keep_last=3, disk_usage=FakeDisk())
    feed(log, 0, 3)
    assert read(log) == [0, 1, 2] and log.compactions == 0  # not the 4th append yet
    feed(log, 3, 4)
    before = active_size(log)
    assert read(log) == [1, 2, 3] and log.compactions == 1  # a due compaction runs before a read
    assert active_size(log) < before
    feed(log, 4, 7)
    assert read(log) == [1, 2, 3, 4, 5, 6]  # 3 appends since the last check
    feed(log, 7, 8)
    assert read(log) == [5, 6, 7] and log.compactions == 2
    log.close()


def test_a_small_file_is_not_compacted(tmp_path):
    log = ApiEventLog(tmp_path / "api", check_every=4, keep_last=3, disk_usage=FakeDisk())  # 256 MiB default
    feed(log, 0, 12)
    assert read(log) == list(range(12)) and log.compactions == 0
    log.close()


def test_compaction_runs_in_a_thread_while_new_events_wait(tmp_path, monkeypatch):
    log = ApiEventLog(tmp_path / "api", check_every=4, compact_above_bytes=0, keep_last=3, disk_usage=FakeDisk())
    entered, release = threading.Event(), threading.Event()
    compact = DiskEventLog.compact

    def gated(self, keep_last):
        entered.set()
        assert release.wait(10)
        return compact(self, keep_last)

    monkeypatch.setattr(DiskEventLog, "compact", gated)

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(log.run)
            feed(log, 0, 4)  # due: the run loop picks it up
            with trio.fail_after(10):
                await trio.to_thread.run_sync(entered.wait)
            feed(log, 4, 7)  # the thread holds the log: these wait in memory
            assert log.stored == 4
            release.set()
            with trio.fail_after(10):
                while log.compactions == 0:
                    await trio.sleep(0.01)
            assert idxs(await log.read_all()) == [1, 2, 3, 4, 5, 6]
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert log.mode == "disabled"  # the run loop closed it on the way out


def test_counting_only_under_the_floor_then_persisting_again(tmp_path):
    disk = FakeDisk(free=GiB)  # under the 2 GiB default floor
    log = ApiEventLog(tmp_path / "api", free_check_every=4, disk_usage=disk)
    assert log.mode == "counting_only"
    feed(log, 0, 3)
    assert read(log) == [] and log.stored == 0  # appends only count
    disk.free = 10 * GiB
    feed(log, 3, 8)  # the 4th append finds room again
    assert log.mode == "persisting"
    assert read(log) == [3, 4, 5, 6, 7]
    log.close()


def test_each_reset_archives_the_file_and_archives_stay_capped(tmp_path):
    log = ApiEventLog(tmp_path / "api", disk_usage=FakeDisk())
    for _ in range(7):  # sessions
        feed(log, 0, 3)
        log.reset()
        assert read(log) == []  # a fresh file for the new session
    assert len(archive_paths(tmp_path / "api")) == 5  # the newest five of seven
    log.close()
