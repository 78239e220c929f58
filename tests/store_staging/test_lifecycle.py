"""The eviction lifecycle's triggers, with a fake event router: deactivation, start-up, purge."""

import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import trio

from skulk.config import StagingSettings
from skulk.store.inventory import LAST_USED, PARTIAL_DIR, write_marker
from skulk.store.lifecycle import StagingLifecycle
from skulk.types.downloads import DownloadCompleted, DownloadPending
from skulk.types.events import IndexedEvent, InstanceDeleted, StagingPurgeRequested
from skulk.types.state import State

ME = "node-me"
MB = 1024**2


class FakeRouter:
    """What the lifecycle uses of EventRouter: state, changed, subscribe(), send_event()."""

    def __init__(self, state: State):
        self.state, self.changed, self.sent = state, trio.Event(), []
        self._subscribers, self._idx = [], 0

    def subscribe(self):
        send, recv = trio.open_memory_channel(math.inf)
        self._subscribers.append(send)
        return recv

    def send_event(self, event):
        self.sent.append(event)

    def publish(self, *events):
        batch = []
        for event in events:
            self._idx += 1
            batch.append(IndexedEvent(idx=self._idx, event=event))
        for s in self._subscribers:
            s.send_nowait(batch)


def stage(root: Path, name: str, mb: float, age_s: float) -> Path:
    d = root / f"org--{name}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"x" * int(mb * MB))
    write_marker(d, f"org/{name}")
    (d / LAST_USED).write_text(f"org/{name}")
    t = time.time() - age_s
    os.utime(d / LAST_USED, (t, t))
    return d


def ready_state(downloads=()) -> State:
    return State(last_event_applied_idx=0, downloads={ME: list(downloads)})


def lifecycle(root, router, *, keep_gb=0.0, in_use=(), local=None, cleanup=True):
    staging = StagingSettings(cleanup_on_deactivate=cleanup, staging_keep_recent_gb=keep_gb)
    uses = in_use if callable(in_use) else (lambda: set(in_use))
    return StagingLifecycle(root, staging, node_id=ME, router=router, in_use=uses,
                            local_instances=local or (lambda: {}), event_log_dir=root / "no-log")


def names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if not p.name.startswith(".")}


async def until(predicate, timeout=5.0):
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


def test_deactivation_waits_for_the_runner_to_exit_then_keeps_newest_within_budget(tmp_path):
    for name, age in (("new", 10), ("mid", 20), ("old", 30)):
        stage(tmp_path, name, 1, age)
    done = DownloadCompleted(node_id=ME, model_id="org/old", total_bytes=MB)
    router = FakeRouter(ready_state([done]))
    runners = {"inst-1": "org/mid"}
    keep_one = 1.5 * MB / 1024**3
    # As in StoreService.in_use: a model whose runner still runs here counts as in use.
    lc = lifecycle(tmp_path, router, keep_gb=keep_one, in_use=lambda: set(runners.values()),
                   local=lambda: dict(runners))

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(lc.run)
            await until(lambda: names(tmp_path) == {"org--new", "org--mid"})  # start-up reconciliation
            router.publish(InstanceDeleted(instance_id="inst-1"))
            await until(lambda: "inst-1" in lc._deleted)
            assert names(tmp_path) == {"org--new", "org--mid"}  # its runner still runs
            runners.clear()
            await until(lambda: names(tmp_path) == {"org--new"})
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert DownloadPending(node_id=ME, model_id="org/old") in [e.download_progress for e in router.sent]


def test_startup_drops_idle_partials_keeps_needed_ones_and_advertises_what_stays(tmp_path):
    stage(tmp_path, "kept", 1, 10)
    for name in ("org--needed", "org--orphan"):
        (tmp_path / PARTIAL_DIR / name).mkdir(parents=True)
        write_marker(tmp_path / PARTIAL_DIR / name, name.replace("--", "/"))
    router = FakeRouter(ready_state())
    lc = lifecycle(tmp_path, router, keep_gb=1, in_use={"org/needed"})

    async def main():
        assert await lc.reconcile() == []

    trio.run(main)
    assert {p.name for p in (tmp_path / PARTIAL_DIR).iterdir()} == {"org--needed"}
    advertised = [e.download_progress for e in router.sent]
    overhead = len("org/kept") + len("org/kept\n")  # .last_used and the marker
    assert advertised == [DownloadCompleted(node_id=ME, model_id="org/kept", total_bytes=MB + overhead)]


def test_purge_removes_idle_copies_on_request_but_never_one_in_use_nor_replays(tmp_path):
    for name in ("busy", "idle1", "idle2"):
        stage(tmp_path, name, 0.1, 5)
    router = FakeRouter(ready_state())
    lc = lifecycle(tmp_path, router, keep_gb=100, in_use={"org/busy"})
    before_start = datetime.fromtimestamp(time.time() - 60, timezone.utc)

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(lc.run)
            router.publish(StagingPurgeRequested(requested_at=before_start))  # a replay from the log
            router.publish(StagingPurgeRequested(model_id="org/idle1", requested_at=datetime.now(timezone.utc)))
            await until(lambda: names(tmp_path) == {"org--busy", "org--idle2"})
            router.publish(StagingPurgeRequested(requested_at=datetime.now(timezone.utc)))
            await until(lambda: names(tmp_path) == {"org--busy"})
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_cleanup_off_keeps_everything_but_an_explicit_purge_still_works(tmp_path):
    stage(tmp_path, "a", 0.1, 5)
    lc = lifecycle(tmp_path, FakeRouter(ready_state()), keep_gb=0, cleanup=False)

    async def main():
        assert await lc.evict("test") == []
        assert names(tmp_path) == {"org--a"}
        assert await lc.purge() == ["org/a"]

    trio.run(main)
    assert names(tmp_path) == set()


def test_storage_report_lists_staged_models_with_use_and_disk(tmp_path):
    stage(tmp_path, "a", 1, 5)
    stage(tmp_path, "b", 0.5, 50)
    (tmp_path / "no-log").mkdir()
    (tmp_path / "no-log" / "events.bin").write_bytes(b"e" * 100)
    lc = lifecycle(tmp_path, FakeRouter(ready_state()), in_use={"org/b"})
    report = trio.run(lc.report)
    by_id = {m["modelId"]: m for m in report["stagedModels"]}
    assert by_id["org/b"]["inUse"] and not by_id["org/a"]["inUse"]
    assert by_id["org/a"]["lastUsedEpochSeconds"] > by_id["org/b"]["lastUsedEpochSeconds"]
    assert report["stagedTotalBytes"] == sum(m["sizeBytes"] for m in by_id.values())
    assert report["eventLogBytes"] == 100 and report["diskFreeBytes"] > 0 and report["diskTotalBytes"] > 0
