import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skulk.models import build_dir_atomically

REPO_ROOT = Path(__file__).resolve().parents[2]


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


def test_builder_runs_once_and_result_appears_whole(tmp_path: Path) -> None:
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "config.json").write_text("{}")

    target = tmp_path / "acme--m"
    assert build_dir_atomically(target, build) == target
    assert build_dir_atomically(target, build) == target
    assert len(calls) == 1 and (target / "config.json").read_text() == "{}"
    assert calls[0] != target and not calls[0].exists()


def test_a_crash_midway_leaves_no_target_and_a_retry_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "acme--m"

    def crash(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_dir_atomically(target, crash)
    assert not target.exists() and _leftovers(tmp_path) == []
    build_dir_atomically(target, lambda tmp: (tmp / "ok").write_text("1"))
    assert (target / "ok").read_text() == "1"


def _script(body: str) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from skulk.models.atomic import build_dir_atomically
        target, log = Path(sys.argv[1]), Path(sys.argv[2])
        {body}
        """
    )


def _spawn(code: str, *args: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env)


def test_two_processes_build_once_without_corruption(tmp_path: Path) -> None:
    code = _script(
        """
        def build(tmp):
            with open(log, "a") as fh:
                fh.write("built\\n")
            (tmp / "weights").write_bytes(b"w" * 1000)
            time.sleep(0.5)
            (tmp / "config.json").write_text("{}")
        build_dir_atomically(target, build)
        assert (target / "config.json").exists()
        """
    )
    target, log = tmp_path / "acme--m", tmp_path / "log"
    procs = [_spawn(code, target, log) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert log.read_text() == "built\n"
    assert (target / "weights").stat().st_size == 1000 and _leftovers(tmp_path) == []


def test_a_killed_builder_leaves_a_partial_that_the_next_build_removes(tmp_path: Path) -> None:
    code = _script(
        """
        def build(tmp):
            (tmp / "half").write_bytes(b"h")
            log.write_text("started")
            time.sleep(60)
        build_dir_atomically(target, build)
        """
    )
    target, log = tmp_path / "acme--m", tmp_path / "log"
    proc = _spawn(code, target, log)
    deadline = time.monotonic() + 30
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not target.exists() and len(_leftovers(tmp_path)) == 1
    build_dir_atomically(target, lambda tmp: (tmp / "config.json").write_text("{}"))
    assert (target / "config.json").exists() and _leftovers(tmp_path) == []


def test_is_done_replaces_an_unfinished_target(tmp_path: Path) -> None:
    target = tmp_path / "acme--m"
    target.mkdir()
    (target / "junk").write_text("left by hand")
    build_dir_atomically(
        target, lambda tmp: (tmp / "config.json").write_text("{}"),
        is_done=lambda p: (p / "config.json").is_file(),
    )  # fmt: skip
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
