"""Per-runner log files: naming, header, size rotation, the age-based janitor decision and loop."""

import os
import time
from pathlib import Path

import trio

from skulk.node.janitor import run_janitor
from skulk.runner.runner_log import (
    DAY_S,
    RunnerLogConfig,
    RunnerLogFile,
    backup_paths,
    expired_logs,
    prune_old_runner_logs,
    should_rotate,
)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_header_then_timestamped_lines_in_a_file_named_by_runner(tmp_path):
    log = RunnerLogFile(RunnerLogConfig(tmp_path / "runners"), "run/ner 1", instance="inst-1", rank="0/2")
    assert log.path == tmp_path / "runners" / "run_ner_1.log"  # unsafe characters replaced
    log.start(1234)
    log.write("hello")
    log.write("wörld")
    log.close()
    header, *rest = lines_of(log.path)
    assert header.endswith("==== runner=run/ner 1 instance=inst-1 rank=0/2 pid=1234")
    assert [line.split(" ", 1)[1] for line in rest] == ["hello", "wörld"]
    log.start(1235)  # the runner's next process appends below a new header
    log.write("again")
    log.close()
    assert lines_of(log.path)[3].endswith("pid=1235") and len(lines_of(log.path)) == 5


def test_no_config_means_no_file(tmp_path):
    log = RunnerLogFile(None, "r1")
    log.start(1)
    log.write("x")
    log.flush()
    log.close()
    assert log.path is None and not any(tmp_path.iterdir())


def test_rotation_decision():
    assert should_rotate(90, 20, 100) and not should_rotate(80, 20, 100)
    assert not should_rotate(0, 500, 100)  # an empty file takes even an oversized line
    assert backup_paths(Path("/l/r.log"), 2) == [Path("/l/r.log.1"), Path("/l/r.log.2")]


def test_rotates_by_size_and_keeps_only_the_backups(tmp_path):
    config = RunnerLogConfig(tmp_path, max_bytes=300, backups=2)
    log = RunnerLogFile(config, "r1")
    log.start(7)
    for i in range(40):
        log.write(f"line {i:03d} " + "x" * 20)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["r1.log", "r1.log.1", "r1.log.2"]
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 300
        assert lines_of(path)[0].endswith("==== runner=r1 pid=7")  # every file says whose it is
    kept = [line.split(" ", 2)[2] for name in ("r1.log.2", "r1.log.1", "r1.log")
            for line in lines_of(tmp_path / name)[1:]]
    numbers = [int(line.split()[0]) for line in kept]
    assert numbers == list(range(numbers[0], 40)) and numbers[0] > 0  # newest kept, in order


def test_zero_backups_truncates_in_place(tmp_path):
    log = RunnerLogFile(RunnerLogConfig(tmp_path, max_bytes=200, backups=0), "r1")
    log.start(1)
    for i in range(20):
        log.write(f"{i} " + "y" * 30)
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["r1.log"]
    assert lines_of(tmp_path / "r1.log")[-1].split(" ", 1)[1].startswith("19 ")


def test_a_disk_error_turns_the_file_off_not_the_caller(tmp_path):
    blocker = tmp_path / "runners"
    blocker.write_text("a file where the directory should be")
    log = RunnerLogFile(RunnerLogConfig(blocker), "r1")
    log.start(1)
    log.write("lost")  # logged once, then ignored
    log.write("lost too")
    log.close()
    assert blocker.read_text().startswith("a file")


def test_janitor_decision():
    now = 100 * DAY_S
    files = [(Path("old"), now - 8 * DAY_S), (Path("new"), now - 6 * DAY_S)]
    assert expired_logs(files, 7, now) == [Path("old")]
    assert expired_logs(files, 0, now) == [] and expired_logs(files, -1, now) == []


def _aged(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    past = time.time() - 10 * DAY_S
    old = [tmp_path / "a.log", tmp_path / "a.log.1", tmp_path / "b.log.3"]
    fresh = [tmp_path / "c.log", tmp_path / "c.log.1"]
    other = tmp_path / "notes.txt"
    for path in (*old, *fresh, other):
        path.write_text("x\n")
    for path in (*old, other):
        os.utime(path, (past, past))
    return old, fresh


def test_prune_deletes_only_old_runner_logs(tmp_path):
    old, fresh = _aged(tmp_path)
    assert prune_old_runner_logs(tmp_path, 0, time.time()) == []
    assert sorted(prune_old_runner_logs(tmp_path, 7, time.time())) == sorted(old)
    assert all(p.exists() for p in fresh) and (tmp_path / "notes.txt").exists()
    assert prune_old_runner_logs(tmp_path / "missing", 7, time.time()) == []


def test_janitor_loop_prunes_with_the_current_retention(tmp_path):
    old, fresh = _aged(tmp_path)
    retention = [0]

    async def scenario():
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_janitor(
                "runner log janitor", lambda: prune_old_runner_logs(tmp_path, retention[0], time.time()),
                first_delay=0, interval=0.02, task_status=task_status))
            retention[0] = 7
            with trio.fail_after(5):
                while any(p.exists() for p in old):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()

    trio.run(scenario)
    assert all(p.exists() for p in fresh)


def test_a_pruned_open_file_is_recreated(tmp_path, monkeypatch):
    import skulk.runner.runner_log as runner_log

    log = RunnerLogFile(RunnerLogConfig(tmp_path), "r1")
    log.start(1)
    log.write("before")
    log.flush()
    log.path.unlink()  # the janitor took the file of a runner that was quiet for days
    monkeypatch.setattr(runner_log, "STALE_CHECK_S", -1.0)
    log.write("after")
    log.close()
    lines = lines_of(log.path)
    assert lines[0].endswith("pid=1") and lines[1].endswith(" after") and len(lines) == 2
