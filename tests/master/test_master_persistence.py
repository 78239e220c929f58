"""MasterService on disk: periodic snapshots, compaction off the loop, the stop snapshot, disk trouble."""

import errno
import logging
import os
import threading
from pathlib import Path

import pytest
import trio

from skulk.master import persistence as persistence_mod
from skulk.master.service import MasterService
from skulk.store.event_log import DiskEventLog
from skulk.store.snapshots import list_snapshots, load_latest_snapshot, read_snapshot
from skulk.types import events as ev
from skulk.types.ids import SessionId
from skulk.types.state import State

SESSION = SessionId(master_node_id="12D3KooWMaster", election_clock=7)


async def _no_send(peer, msg) -> None:
    return None


def make_master(log_dir: Path | None, **kwargs) -> MasterService:
    kwargs.setdefault("snapshot_cadence", 50)
    kwargs.setdefault("log_tail_events", 50)
    return MasterService(SESSION.master_node_id, SESSION, _no_send, log_dir=log_dir,
                         reconcile_interval=3600, **kwargs)


def event(i: int):
    """Events that change the State in different ways, so a snapshot has something to hold."""
    if i % 3 == 0:
        return ev.ClusterConfigChanged(config={"round": i, "name": f"cfg-{i}"})
    if i % 3 == 1:
        return ev.TracingStateChanged(enabled=bool(i % 2))
    return ev.TestEvent(note=f"n{i}")


def index(master: MasterService, count: int, states: dict[int, State]) -> None:
    """Index `count` events one commit at a time, remembering the State after each."""
    for _ in range(count):
        master.index_local([event(master.sequencer.next_idx)])
        states[master.state.last_event_applied_idx] = master.state


async def until(condition, seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.005)


def snapshot_dir(log_dir: Path) -> Path:
    return log_dir / "snapshots"


def snapshot_idxs(log_dir: Path) -> list[int]:
    return sorted(s.idx for s in list_snapshots(snapshot_dir(log_dir)))


def test_snapshots_every_cadence_keep_three_and_compact_the_log(tmp_path):
    log_dir, states = tmp_path / "master", {}

    async def main():
        master = make_master(log_dir)
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            for round_ in range(1, 7):  # 300 events: snapshots at 49, 99, ..., 299
                index(master, 50, states)
                await until(lambda: master.counters["master_log_compactions"] == round_)
                assert master.counters["master_last_snapshot_idx"] == 50 * round_ - 1
            disk_log = master.persistence.disk_log
            assert snapshot_idxs(log_dir) == [199, 249, 299]
            assert (disk_log.start_idx, disk_log.next_idx) == (250, 300)  # the 50 up to the snapshot
            index(master, 30, states)  # not due: the log grows past the tail meanwhile
            assert len(disk_log) == 80 <= 50 + 50
            assert [e.idx for e in disk_log.read_range(0)] == list(range(250, 330))
            assert master.counters["master_snapshots"] == 6 and master.counters["master_snapshot_failures"] == 0
            nursery.cancel_scope.cancel()

    trio.run(main)
    for snap in list_snapshots(snapshot_dir(log_dir)):
        assert snap.path.name == f"snapshot.12D3KooWMaster.7.{snap.idx}.json.zst"
        assert read_snapshot(snap.path) == states[snap.idx]
    assert snapshot_idxs(log_dir) == [249, 299, 329]  # the stop snapshot pushed 199 out
    assert load_latest_snapshot(snapshot_dir(log_dir)) == (329, states[329])


def test_compaction_runs_in_a_thread_while_new_events_wait(tmp_path, monkeypatch):
    log_dir, states = tmp_path / "master", {}
    entered, release = threading.Event(), threading.Event()
    compact = DiskEventLog.compact

    def gated(self, keep_last):
        entered.set()
        assert release.wait(10)
        return compact(self, keep_last)

    monkeypatch.setattr(DiskEventLog, "compact", gated)

    async def main():
        master = make_master(log_dir, log_tail_events=20)
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            index(master, 50, states)
            with trio.fail_after(10):
                await trio.to_thread.run_sync(entered.wait)
            index(master, 10, states)  # the thread holds the log: these wait in memory
            disk_log = master.persistence.disk_log
            assert disk_log.next_idx == 50 and master.sequencer.next_idx == 60
            release.set()
            await until(lambda: master.counters["master_log_compactions"] == 1)
            assert [e.idx for e in disk_log.read_range(0)] == list(range(30, 60))
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_failed_snapshot_warns_and_is_retried_a_cadence_later(tmp_path, monkeypatch, caplog):
    log_dir, states = tmp_path / "master", {}
    real_write = persistence_mod.write_snapshot
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(args[1].last_event_applied_idx)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(persistence_mod, "write_snapshot", failing_once)

    async def main():
        master = make_master(log_dir)
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            index(master, 50, states)
            await until(lambda: master.counters["master_snapshot_failures"] == 1)
            disk_log = master.persistence.disk_log
            assert disk_log.start_idx == 0 and master.counters["master_log_compactions"] == 0
            index(master, 49, states)  # not retried on every event
            index(master, 1, states)  # a cadence after the failed attempt
            await until(lambda: master.counters["master_log_compactions"] == 1)
            assert master.counters["master_last_snapshot_idx"] == 99 and disk_log.start_idx == 50
            assert master.event_log_mode == "persisting"
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.WARNING, logger="skulk.master.persistence"):
        trio.run(main)
    assert calls == [49, 99]  # the failure, the retry; at stop 99 is already on disk
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left" in warnings[0].getMessage()


def test_counting_only_and_disabled_logs_take_no_snapshots(tmp_path):
    log_dir, states = tmp_path / "master", {}

    async def main():
        counting = make_master(log_dir, log_min_free_bytes=1 << 62)  # always under the floor
        disabled = make_master(None)
        async with trio.open_nursery() as nursery:
            await nursery.start(counting.run)
            await nursery.start(disabled.run)
            await until(lambda: counting.event_log_mode == "counting_only")
            assert disabled.event_log_mode == "disabled"
            index(counting, 120, states)
            index(disabled, 120, {})
            nursery.cancel_scope.cancel()
        for master in (counting, disabled):
            assert master.counters["master_snapshots"] == 0 and master.counters["master_log_compactions"] == 0

    trio.run(main)
    assert list_snapshots(snapshot_dir(log_dir)) == []


def test_the_loader_skips_corrupt_truncated_and_mislabelled_files(tmp_path, caplog):
    from skulk.store.snapshots import snapshot_name, write_snapshot

    folder = tmp_path / "snapshots"
    assert load_latest_snapshot(folder) is None  # no folder at all
    good = State(last_event_applied_idx=10, tracing_enabled=True)
    write_snapshot(folder, good, master_id="m", clock=1, keep=5)
    newer = write_snapshot(folder, State(last_event_applied_idx=20), master_id="m", clock=1, keep=5)
    newer.write_bytes(newer.read_bytes()[:-7])  # truncated
    (folder / snapshot_name("m", 1, 30)).write_bytes(b"not zstd at all")
    mislabelled = folder / snapshot_name("m", 1, 40)
    mislabelled.write_bytes((folder / snapshot_name("m", 1, 10)).read_bytes())  # holds idx 10
    for age, idx in enumerate([40, 30, 20, 10]):  # newest first, whatever the clock's resolution
        path = folder / snapshot_name("m", 1, idx)
        stamp = 1_700_000_000 - age
        os.utime(path, (stamp, stamp))
    with caplog.at_level(logging.WARNING, logger="skulk.store.snapshots"):
        assert load_latest_snapshot(folder) == (10, good)
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 3
    (folder / snapshot_name("m", 1, 10)).write_bytes(b"")
    assert load_latest_snapshot(folder) is None


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from skulk.store.snapshots import write_snapshot

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(OSError):
        patch.setattr(os, "replace", full_disk)
        write_snapshot(tmp_path, State(last_event_applied_idx=3), master_id="m", clock=0, keep=3)
    assert list(tmp_path.iterdir()) == []


def test_the_stop_snapshot_is_bounded_in_time(tmp_path, monkeypatch, caplog):
    log_dir, states = tmp_path / "master", {}
    entered, release, done = threading.Event(), threading.Event(), threading.Event()
    real_write = persistence_mod.write_snapshot

    def stuck(*args, **kwargs):
        entered.set()
        release.wait(10)
        try:
            return real_write(*args, **kwargs)
        finally:
            done.set()

    monkeypatch.setattr(persistence_mod, "write_snapshot", stuck)
    monkeypatch.setattr(persistence_mod, "STOP_SNAPSHOT_SECONDS", 0.05)

    async def main():
        master = make_master(log_dir, snapshot_cadence=1000)
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)
            await until(lambda: master.event_log_mode == "persisting")
            index(master, 5, states)
            nursery.cancel_scope.cancel()
        assert entered.is_set() and master.counters["master_snapshots"] == 0  # gave up waiting
        assert master.event_log_mode == "disabled"  # the log was released all the same

    with caplog.at_level(logging.WARNING, logger="skulk.master.persistence"):
        trio.run(main)
    assert any("unfinished" in r.getMessage() for r in caplog.records)
    release.set()  # the abandoned thread finishes in the background
    assert done.wait(10) and snapshot_idxs(log_dir) == [4]


def test_a_new_master_opens_the_folder_only_after_the_old_one_compacted(tmp_path, monkeypatch):
    """Re-elected on the same node: the old master winds down while the new one starts."""
    from skulk import codec
    from skulk.store.event_archive import iter_frames

    log_dir = tmp_path / "master"
    entered, release, opening = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []
    compact, init = DiskEventLog.compact, DiskEventLog.__init__

    def gated(self, keep_last):
        entered.set()
        assert release.wait(10)
        try:
            return compact(self, keep_last)
        finally:
            order.append("compacted")

    def recorded_init(self, *args, **kwargs):
        order.append("opened")
        init(self, *args, **kwargs)

    monkeypatch.setattr(DiskEventLog, "compact", gated)
    monkeypatch.setattr(DiskEventLog, "__init__", recorded_init)
    old = make_master(log_dir, log_tail_events=20)
    new = MasterService(SESSION.master_node_id, SessionId(master_node_id=SESSION.master_node_id, election_clock=8),
                        _no_send, log_dir=log_dir, reconcile_interval=3600)
    open_new = new.persistence._open_locked

    def announced_open():
        opening.set()  # in its worker thread, about to take the folder
        return open_new()

    monkeypatch.setattr(new.persistence, "_open_locked", announced_open)

    async def run_old(*, task_status=trio.TASK_STATUS_IGNORED):
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await old.run()

    async def main():
        async with trio.open_nursery() as nursery:
            old_scope = await nursery.start(run_old)
            await until(lambda: old.event_log_mode == "persisting")
            index(old, 50, {})
            with trio.fail_after(10):
                await trio.to_thread.run_sync(entered.wait)
            old_scope.cancel()  # the compaction thread is not abandoned: the old run waits for it
            nursery.start_soon(new.run)
            with trio.fail_after(10):
                await trio.to_thread.run_sync(opening.wait)
            release.set()
            await until(lambda: new.event_log_mode == "persisting")
            index(new, 5, {})
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert order == ["opened", "compacted", "opened"]
    frames = iter_frames((log_dir / "events.bin").read_bytes())
    assert [codec.decode(f, ev.IndexedEvent).idx for f in frames] == [0, 1, 2, 3, 4]  # the new session's
    assert len(list(log_dir.glob("events.*.bin.zst"))) == 1  # the old session's, archived


def test_what_is_indexed_while_the_log_opens_waits_and_is_written(tmp_path):
    log_dir = tmp_path / "master"
    log_dir.mkdir()
    (log_dir / "events.bin").write_bytes(b"")  # a leftover: opening archives it, in a thread

    async def main():
        master = make_master(log_dir, seed=State(tracing_enabled=True))
        async with trio.open_nursery() as nursery:
            await nursery.start(master.run)  # started at once: the seed is event 0 already
            index(master, 3, {})
            await until(lambda: master.persistence.disk_log is not None
                        and master.persistence.disk_log.next_idx == 4)
            assert master.event_log_mode == "persisting"
            events = master.persistence.disk_log.read_range(0)
            assert [e.idx for e in events] == [0, 1, 2, 3]
            assert isinstance(events[0].event, ev.StateSnapshotHydrated)
            nursery.cancel_scope.cancel()

    trio.run(main)
