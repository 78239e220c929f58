"""The process table of diagnostics: this process first, then its children with their roles."""

import os
import subprocess
import sys

from skulk.probe.processes import process_table, sample_processes


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


def test_samples_every_interval_and_names_processes_that_go_away():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    slept = []

    def sleep(seconds):  # the child exits between the first and second samples
        slept.append(seconds)
        if len(slept) == 2:
            child.kill()
            child.wait()
    try:
        doc = sample_processes({os.getpid(): "node", child.pid: "runner", 2**22 + 7: "gone"}, 1.5, 0.5, sleep=sleep)
    finally:
        child.kill()
        child.wait()
    assert slept == [0.5, 0.5, 0.5] and len(doc["samples"]) == 3
    first = {p["role"]: p for p in doc["samples"][0]["processes"]}
    assert set(first) == {"node", "runner"} and first["node"]["numThreads"] >= 1 and first["node"]["rss"] > 0
    assert [p["role"] for p in doc["samples"][2]["processes"]] == ["node"]
    assert any(str(child.pid) in e for e in doc["errors"]) and any(str(2**22 + 7) in e for e in doc["errors"])
