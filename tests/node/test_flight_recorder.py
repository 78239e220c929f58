"""The flight recorder (a bounded ring of local happenings), the runner-cancel decision, and diagnostics helpers."""

from types import SimpleNamespace

import pytest

from skulk.errors import Conflict, NotFound
from skulk.node.diagnostics import runner_synopses
from skulk.node.flight_recorder import FlightRecorder, merge_timelines
from skulk.node.runner_cancel import decide_runner_cancel
from skulk.runner.outputs import RunnerOutput
from skulk.types.ids import SessionId
from skulk.types.runners import RunnerLoading, RunnerReady
from skulk.types.state import State
from skulk.types.tasks import ChatMessage, TaskStatus, TextGeneration, TextGenerationTaskParams
from skulk.worker.plan import LocalRunner
from skulk.worker.service import WorkerService
from tests.factories import ring_instance


def ticking(start: float = 1_700_000_000.0):
    t = [start]

    def clock() -> float:
        t[0] += 1.0
        return t[0]
    return clock


def task(task_id: str, instance_id: str = "i1", status: TaskStatus = TaskStatus.Running) -> TextGeneration:
    params = TextGenerationTaskParams(model="org/tiny", input=[ChatMessage(role="user", content="hi")])
    return TextGeneration(task_id=task_id, instance_id=instance_id, command_id=f"cmd-{task_id}",
                          task_status=status, task_params=params)


def test_entries_are_bounded_ordered_and_described():
    rec = FlightRecorder("n1", capacity=3, clock=ticking())
    for i in range(5):
        rec.record("task_forwarded", runnerId="r1", taskId=f"t{i}", rank=0)
    entries = rec.entries()
    assert [e["taskId"] for e in entries] == ["t2", "t3", "t4"] and rec.recorded == 5
    assert [e["seq"] for e in entries] == [3, 4, 5] and entries[0]["at"] < entries[1]["at"]
    assert entries[0]["message"] == "task t2 forwarded to runner r1 (rank 0)"
    assert entries[0]["details"] == {"rank": 0} and entries[0]["nodeId"] == "n1"
    assert rec.document()["capacity"] == 3 and len(rec.document()["entries"]) == 3


def test_runner_status_is_recorded_only_when_it_changes():
    rec = FlightRecorder("n1", clock=ticking())
    for status in ["RunnerIdle", "RunnerIdle", "RunnerLoading", "RunnerLoading", "RunnerReady"]:
        rec.record("runner_status", runnerId="r1", status=status)
    rec.record("runner_status", runnerId="r2", status="RunnerIdle")
    mine = rec.entries(runner_id="r1")
    assert [(e["details"]["status"], e["details"].get("previous")) for e in mine] == [
        ("RunnerIdle", None), ("RunnerLoading", "RunnerIdle"), ("RunnerReady", "RunnerLoading")]
    assert mine[-1]["message"] == "runner r1: RunnerLoading -> RunnerReady"


def test_session_changes_and_task_outcomes():
    rec = FlightRecorder("n1", clock=ticking())
    rec.on_session_changed(SessionId(master_node_id="m2", election_clock=3), SessionId(master_node_id="m1",
                                                                                       election_clock=2))
    (entry,) = rec.entries()
    assert entry["kind"] == "session_changed" and "master m2" in entry["message"] and "was m1" in entry["message"]
    rec.record("task_finished", runnerId="r1", taskId="t1", finishReason="stop")
    rec.record("task_cancelled", runnerId="r1", taskId="t2")
    assert rec.task_outcome("r1", "t1") == "already_completed"
    assert rec.task_outcome("r1", "t2") == "already_cancelled"
    assert rec.task_outcome("r2", "t1") is None and rec.task_outcome("r1", "t3") is None


def test_merge_orders_every_nodes_entries_by_time():
    a = FlightRecorder("a", clock=ticking(100.0))
    b = FlightRecorder("b", clock=ticking(100.5))
    for rec in (a, b, a, b):
        rec.record("task_forwarded", runnerId="r", taskId="t")
    merged = merge_timelines([a.document(), b.document(), {"entries": ["junk"]}, {}])
    assert [(e["nodeId"], e["seq"]) for e in merged] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


class _Router:
    def __init__(self, state: State):
        self.state = state
        self.sent = []

    def send_event(self, event):
        self.sent.append(event)


def test_the_worker_feeds_the_recorder():
    rec = FlightRecorder("n1", clock=ticking())
    inst = ring_instance("i1", ["n1"])
    worker = WorkerService("n1", _Router(State(instances={"i1": inst}, tasks={"t1": task("t1")})),
                           make_supervisor=None, send_output=lambda task, out: None, record=rec.record)
    worker.local["i1-r0"] = LocalRunner("i1-r0", "i1", RunnerReady(), forwarded=frozenset({"t1"}),
                                        active=frozenset({"t1"}))
    worker.supervisors["i1-r0"] = SimpleNamespace(rank=0, instance=inst)
    worker._on_status("i1-r0", RunnerLoading(layers_loaded=1, total_layers=4))
    worker._on_status("i1-r0", RunnerLoading(layers_loaded=2, total_layers=4))
    worker._on_output(RunnerOutput(task_id="t1", text="", token_ids=[], finished=True, finish_reason="cancelled",
                                   usage=None))
    # A task already pruned from `forwarded` (cancelled and deleted): the supervisor's callback names the runner.
    worker._on_output(RunnerOutput(task_id="t2", text="", token_ids=[], finished=True, finish_reason="stop",
                                   usage=None), "i1-r0")
    assert [e["kind"] for e in rec.entries()] == ["runner_status", "task_cancelled", "task_finished"]
    assert rec.task_outcome("i1-r0", "t1") == "already_cancelled"
    assert rec.task_outcome("i1-r0", "t2") == "already_completed"


def _decide(state: State, task_id: str, *, active=frozenset(), recorded=None):
    return decide_runner_cancel(state, runner_id="i1-r0", instance_id="i1", active=frozenset(active),
                                task_id=task_id, recorded=recorded)


def test_cancel_decisions():
    state = State(tasks={"run": task("run"), "done": task("done", status=TaskStatus.Complete),
                         "gone": task("gone", status=TaskStatus.Cancelled), "other": task("other", "i2")})
    live = _decide(state, "run")
    assert (live.status, live.command_id, live.direct) == ("cancel_requested", "cmd-run", False)
    assert _decide(state, "done").status == "already_completed"
    assert _decide(state, "gone").status == "already_cancelled"
    orphan = _decide(state, "orphan", active={"orphan"})
    assert (orphan.status, orphan.command_id, orphan.direct) == ("cancel_requested", None, True)
    assert _decide(state, "ended", recorded="already_cancelled").status == "already_cancelled"
    with pytest.raises(Conflict):
        _decide(state, "other")
    with pytest.raises(NotFound):
        _decide(state, "never")


def test_runner_synopses_name_every_placed_runner():
    state = State(instances={"i1": ring_instance("i1", ["a", "b"])}, runners={"i1-r0": RunnerReady()},
                  tasks={"t1": task("t1"), "t0": task("t0", status=TaskStatus.Complete)})
    rows = runner_synopses(state, [{"runnerId": "i1-r1", "at": "2024-01-01T00:00:00.000000+00:00"}])
    by_id = {r["runnerId"]: r for r in rows}
    assert by_id["i1-r0"]["status"] == "RunnerReady" and by_id["i1-r0"]["openTaskIds"] == ["t1"]
    assert by_id["i1-r1"]["nodeId"] == "b" and by_id["i1-r1"]["rank"] == 1 and by_id["i1-r1"]["status"] is None
    assert by_id["i1-r1"]["lastEntryAt"].startswith("2024") and by_id["i1-r0"]["lastEntryAt"] is None


def test_skulk_commit_reads_the_checkout_head():
    import subprocess
    from pathlib import Path

    from skulk.node.diagnostics import skulk_commit
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert skulk_commit() == head.stdout.strip()
