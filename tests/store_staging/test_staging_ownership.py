"""Eviction and purge delete only what the stager created: a real dir with the `.skulk-staged`
marker naming the model of its `org--name`. A user's folder, a look-alike without the marker, a
symlink, a file or a copy from before markers stay where they are, whatever the trigger."""

import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import trio

from skulk.faults import FAULTS
from skulk.store.inventory import (
    PARTIAL_DIR,
    STAGED_MARKER,
    remove_dir,
    remove_partials,
    scan_staging,
    write_marker,
)
from skulk.types.events import StagingPurgeRequested
from tests.store_staging.test_lifecycle import FakeRouter, lifecycle, ready_state, stage, until


def foreign_layout(root: Path, outside: Path) -> dict[str, Path]:
    """Everything under a staging root that is not the store's, by what it is."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir()
    (outside / "precious.safetensors").write_bytes(b"p" * 100)
    write_marker(outside, "org/linked")  # a marker behind a link must not make the link ours
    things = {"user folder": root / "my-photos", "look-alike": root / "org--lookalike",
              "wrong marker": root / "org--wrongname", "marker is a link": root / "org--sneaky",
              "dir link": root / "org--linked", "file": root / "notes.txt",
              "user dot dir": root / ".deleting-my-stuff", "legacy partial": root / PARTIAL_DIR / "org--legacy"}
    for key in ("user folder", "look-alike", "wrong marker", "marker is a link", "user dot dir", "legacy partial"):
        things[key].mkdir(parents=True)
        (things[key] / "model.safetensors").write_bytes(b"u" * 10)
    (things["look-alike"] / ".last_used").write_text("org/lookalike")  # a pre-marker copy looks like this
    write_marker(things["wrong marker"], "org/other")
    (things["marker is a link"] / STAGED_MARKER).symlink_to(outside / STAGED_MARKER)
    things["dir link"].symlink_to(outside, target_is_directory=True)
    things["file"].write_text("mine")
    return things


def all_there(things: dict[str, Path], outside: Path) -> bool:
    return (all(os.path.lexists(p) for p in things.values())
            and (outside / "precious.safetensors").read_bytes() == b"p" * 100
            and (things["user folder"] / "model.safetensors").is_file())


def test_a_purge_event_removes_idle_marked_copies_and_nothing_else(tmp_path):
    root, outside = tmp_path / "staging", tmp_path / "outside"
    things = foreign_layout(root, outside)
    for name in ("idle1", "idle2", "busy"):
        stage(root, name, 0.01, 5)
    (root / PARTIAL_DIR / "org--orphan").mkdir()
    write_marker(root / PARTIAL_DIR / "org--orphan", "org/orphan")
    router = FakeRouter(ready_state())
    lc = lifecycle(root, router, keep_gb=100, in_use={"org/busy"})
    refused_before = FAULTS.counts["store.delete_refused"]

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(lc.run)
            router.publish(StagingPurgeRequested(requested_at=datetime.now(timezone.utc)))
            await until(lambda: not (root / "org--idle1").exists() and not (root / "org--idle2").exists())
            await until(lambda: not (root / PARTIAL_DIR / "org--orphan").exists())
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert all_there(things, outside)
    assert (root / "org--busy").is_dir()  # in use
    assert FAULTS.counts["store.delete_refused"] == refused_before  # nothing foreign was even tried


def test_eviction_with_no_budget_keeps_every_foreign_entry(tmp_path):
    root, outside = tmp_path / "staging", tmp_path / "outside"
    things = foreign_layout(root, outside)
    stage(root, "old", 0.01, 50)
    lc = lifecycle(root, FakeRouter(ready_state()), keep_gb=0)
    assert trio.run(lc.reconcile) == ["org/old"]
    assert all_there(things, outside) and not (root / "org--old").exists()
    assert [m.model_id for m in scan_staging(root)] == []


def test_remove_dir_refuses_what_the_store_did_not_create_and_counts_it(tmp_path):
    root, outside = tmp_path / "staging", tmp_path / "outside"
    things = foreign_layout(root, outside)
    before = FAULTS.counts["store.delete_refused"]
    for model_id, key in (("org/lookalike", "look-alike"), ("org/wrongname", "wrong marker"),
                          ("org/sneaky", "marker is a link"), ("org/linked", "dir link")):
        assert remove_dir(things[key], model_id) is False
    assert remove_dir(stage(root, "mine", 0.01, 1), "org/other") is False  # ours, but not that model
    assert FAULTS.counts["store.delete_refused"] == before + 5
    assert all_there(things, outside) and (root / "org--mine").is_dir()
    assert remove_dir(root / "org--mine", "org/mine") is True and not (root / "org--mine").exists()
    assert not any(p.name.startswith(".deleting-org--mine") for p in root.iterdir())


def test_a_delete_cut_short_is_finished_later_but_a_users_dot_dir_is_not_touched(tmp_path):
    root, outside = tmp_path / "staging", tmp_path / "outside"
    things = foreign_layout(root, outside)
    trash = root / ".deleting-org--gone-123-456"  # a crash mid-delete: the marker goes last
    trash.mkdir()
    write_marker(trash, "org/gone")
    (trash / "leftover.bin").write_bytes(b"x")
    assert remove_partials(root, set()) == []  # the legacy partial has no marker: kept
    assert not trash.exists() and all_there(things, outside)


def test_unsafe_ids_from_state_never_match_a_partial_copy(tmp_path):
    root = tmp_path / "staging"
    (root / PARTIAL_DIR / "org--p").mkdir(parents=True)
    write_marker(root / PARTIAL_DIR / "org--p", "org/p")
    assert remove_partials(root, {"../../etc", "org/p"}) == []  # a bad id in use neither crashes nor matches
    assert remove_partials(root, set(), only_model="../org--p") == []
    assert remove_partials(root, set(), only_model="org/p") == ["org--p"]


def test_foreign_entries_are_reported_and_logged_once(tmp_path, caplog):
    root, outside = tmp_path / "staging", tmp_path / "outside"
    foreign_layout(root, outside)
    stage(root, "a", 0.01, 5)
    with caplog.at_level(logging.WARNING, logger="skulk.store.inventory"):
        scan_staging(root)
        scan_staging(root)
    lines = [r.getMessage() for r in caplog.records if "my-photos" in r.getMessage()]
    assert len(lines) == 1 and "leaving" in lines[0]
    report = trio.run(lifecycle(root, FakeRouter(ready_state())).report)
    assert [m["modelId"] for m in report["stagedModels"]] == ["org/a"]
    assert set(report["unmanagedEntries"]) == {"my-photos", "org--lookalike", "org--wrongname", "org--sneaky",
                                               "org--linked", "notes.txt"}
