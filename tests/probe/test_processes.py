"""The process table of diagnostics: this process first, then its children with their roles."""

import os
import subprocess
import sys

from skulk.probe.processes import process_table


def test_lists_this_process_and_a_child_with_its_role():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        rows = process_table({child.pid: "runner"})
        assert rows[0]["pid"] == os.getpid() and rows[0]["role"] == "node" and not rows[0]["isChildOfSkulk"]
        mine = next(r for r in rows if r["pid"] == child.pid)
        assert mine["role"] == "runner" and mine["isChildOfSkulk"] and mine["parentPid"] == os.getpid()
        assert mine["rss"] > 0 and "time.sleep" in mine["command"] and mine["elapsedSeconds"] >= 0
        again = process_table({})
        assert next(r for r in again if r["pid"] == child.pid)["role"] == "child"
    finally:
        child.kill()
        child.wait()
