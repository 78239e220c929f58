"""Trace math, the janitor's decision and loop, and the trace routes against a fake port."""

import json
import os
import time
from pathlib import Path

import trio
from starlette.testclient import TestClient

from skulk.api.app import create_app
from skulk.node.trace_stats import RequestTimes, rank_events, request_events, source_nodes, spans_of, trace_stats
from skulk.node.traces import (
    is_expired, load_trace, merge_trace, prune_old_trace_files, run_trace_janitor, run_trace_writer, write_merged,
    write_trace,
)
from skulk.testing.fake_port import FakePort
from skulk.types.events import IndexedEvent, TestEvent, TraceEventData, TracesMerged

ARGS = {"nodeId": "nodeA", "friendlyName": "a", "modelId": "m/one", "taskKind": "TextGeneration"}


def test_request_events_cover_each_phase_in_microseconds():
    t = RequestTimes(sent=100.0, task_seen=100.5, first_token=101.0, last_token=103.0, closed=103.25)
    spans = {e["name"]: e for e in request_events(t, ARGS) if e["ph"] == "X"}
    assert spans["request"]["dur"] == 3_250_000 and spans["request"]["ts"] == 100_000_000
    assert spans["queue_wait"]["cat"] == "queue" and spans["queue_wait"]["dur"] == 500_000
    assert spans["prefill"]["dur"] == 500_000 and spans["decode"]["dur"] == 2_000_000
    assert spans["decode"]["args"]["modelId"] == "m/one" and spans["decode"]["tid"] == 0


def test_request_events_leave_out_phases_never_reached():
    names = {e["name"] for e in request_events(RequestTimes(sent=1.0, closed=2.0), ARGS)}
    assert names == {"request", "thread_name"}


def test_stats_wall_time_and_per_category_and_rank():
    events = [{"name": "a", "cat": "decode", "ph": "X", "ts": 10, "dur": 5, "tid": 0},
              {"name": "b", "cat": "decode", "ph": "X", "ts": 20, "dur": 15, "tid": 1},
              {"name": "c", "cat": "prefill", "ph": "X", "ts": 0, "dur": 10, "tid": 0},
              {"name": "thread_name", "ph": "M", "tid": 0}]
    stats = trace_stats("t1", events)
    assert stats["totalWallTimeUs"] == 35
    assert stats["byCategory"]["decode"] == {"totalUs": 20, "count": 2, "minUs": 5, "maxUs": 15, "avgUs": 10.0}
    assert stats["byRank"]["1"]["byCategory"]["decode"]["count"] == 1
    assert set(stats["byRank"]["0"]["byCategory"]) == {"decode", "prefill"}
    assert trace_stats("t2", [])["totalWallTimeUs"] == 0


def test_janitor_decision():
    day = 86400
    assert is_expired(0, 4 * day, 3) and not is_expired(0, 2 * day, 3)
    assert not is_expired(0, 100 * day, 0) and not is_expired(0, 100 * day, -1)


def _old_and_new(tmp_path: Path) -> tuple[Path, Path]:
    old = write_trace(tmp_path, "old", [])
    new = write_trace(tmp_path, "new", [])
    past = time.time() - 5 * 86400
    os.utime(old, (past, past))
    return old, new


def test_prune_deletes_only_expired_trace_files(tmp_path):
    old, new = _old_and_new(tmp_path)
    other = tmp_path / "notes.json"
    other.write_text("{}")
    os.utime(other, (0, 0))
    assert prune_old_trace_files(tmp_path, 0, time.time()) == []
    assert prune_old_trace_files(tmp_path, 3, time.time()) == [old]
    assert not old.exists() and new.exists() and other.exists()
    assert prune_old_trace_files(tmp_path / "missing", 3, time.time()) == []


def test_janitor_loop_rereads_retention(tmp_path):
    trio.run(_janitor_scenario, tmp_path)


async def _janitor_scenario(tmp_path):
    old, new = _old_and_new(tmp_path)
    retention = [0]
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_trace_janitor(
            tmp_path, lambda: retention[0], first_delay=0, interval=0.05, task_status=task_status))
        await trio.sleep(0.15)
        assert old.exists()  # retention 0 keeps everything
        retention[0] = 3
        with trio.fail_after(5):
            while old.exists():
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert new.exists()


class TracedPort(FakePort):
    def __init__(self, traces_dir):
        super().__init__(node_id="nodeA", friendly_name="a")
        self.traces_dir = traces_dir


def test_trace_routes_list_show_stats_raw_and_delete(tmp_path):
    t = RequestTimes(sent=100.0, task_seen=100.5, first_token=101.0, last_token=103.0, closed=103.25)
    write_trace(tmp_path, "task-1", request_events(t, ARGS))
    c = TestClient(create_app(TracedPort(tmp_path)), raise_server_exceptions=False, backend="trio")
    rows = c.get("/v1/traces").json()["traces"]
    assert [r["taskId"] for r in rows] == ["task-1"]
    assert rows[0]["modelId"] == "m/one" and rows[0]["sourceNodes"] == [{"nodeId": "nodeA", "friendlyName": "a"}]
    assert set(rows[0]["categories"]) == {"api", "queue", "prefill", "decode"}
    trace = c.get("/v1/traces/task-1").json()
    assert trace["taskId"] == "task-1" and len(trace["traces"]) == 5
    stats = c.get("/v1/traces/task-1/stats").json()
    assert stats["totalWallTimeUs"] == 3_250_000 and stats["byCategory"]["decode"]["totalUs"] == 2_000_000
    assert json.loads(c.get("/v1/traces/task-1/raw").content)["traceEvents"]
    assert c.get("/v1/traces/cluster").json()["traces"][0]["taskId"] == "task-1"
    assert c.get("/v1/traces/cluster/task-1/stats").json()["totalWallTimeUs"] == 3_250_000
    missing = c.get("/v1/traces/nope")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Trace not found: nope"
    assert c.get("/v1/traces/cluster/nope/raw").status_code == 404
    assert c.get("/v1/traces/..%2Fetc/raw").status_code == 404
    body = c.post("/v1/traces/delete", json={"taskIds": ["task-1", "nope"]}).json()
    assert body == {"deleted": ["task-1"], "notFound": ["nope"]}
    assert c.get("/v1/traces").json() == {"traces": []}


def _merged(owner: str | None = "nodeA", task_id: str = "task-1", t0_us: int = 0) -> TracesMerged:
    spans = [TraceEventData(name=name, category=cat, start_us=t0_us + ts, duration_us=dur, rank=rank,
                            node_id=f"rank-node{rank}", model_id="m/one", task_kind="text", attrs={"batch": 1})
             for name, cat, ts, dur, rank in [("prefill", "prefill", 100_600_000, 300_000, 0),
                                              ("send", "pipeline", 100_610_000, 100_000, 0),
                                              ("prefill", "prefill", 100_650_000, 250_000, 1),
                                              ("sample", "sample", 100_700_000, 50_000, 1)]]
    return TracesMerged(task_id=task_id, traces=spans, owner_node=owner)


def test_rank_spans_merge_with_the_api_spans_in_either_order(tmp_path):
    t = RequestTimes(sent=100.0, task_seen=100.5, first_token=101.0, last_token=103.0, closed=103.25)
    api = request_events(t, ARGS)
    ranks = rank_events(_merged().traces)
    assert ranks[0]["args"] == {"rank": 0, "node_id": "rank-node0", "model_id": "m/one", "task_kind": "text",
                                "tags": [], "attrs": {"batch": 1}}
    assert [e["args"]["name"] for e in ranks if e["ph"] == "M"] == ["Rank 0", "Rank 1"]
    merge_trace(tmp_path / "a", "task-1", api)
    merge_trace(tmp_path / "a", "task-1", ranks)
    merge_trace(tmp_path / "b", "task-1", ranks)
    merge_trace(tmp_path / "b", "task-1", api)
    merge_trace(tmp_path / "b", "task-1", ranks)  # a replay adds nothing
    a, b = load_trace(tmp_path / "a", "task-1"), load_trace(tmp_path / "b", "task-1")
    assert a == b and len(a) == len(api) + len(ranks) - 1  # "Rank 0" is named once
    stats = trace_stats("task-1", a)
    assert stats["byRank"]["1"]["byCategory"]["sample"]["totalUs"] == 50_000
    assert {"api", "prefill", "pipeline"} <= set(stats["byRank"]["0"]["byCategory"])
    assert [n["nodeId"] for n in source_nodes(a)] == ["nodeA", "rank-node0", "rank-node1"]


def test_merged_traces_are_written_by_the_requests_owner(tmp_path):
    assert write_merged(tmp_path, "nodeB", _merged(owner="nodeA")) is None
    assert write_merged(tmp_path, "nodeA", _merged(owner="nodeA")) is not None
    assert write_merged(tmp_path / "any", "nodeB", _merged(owner=None)) is not None  # owner unknown: everyone
    assert [e["tid"] for e in spans_of(load_trace(tmp_path, "task-1"))] == [0, 0, 1, 1]


def test_trace_writer_follows_applied_events_but_skips_an_old_replay(tmp_path):
    async def scenario():
        send, recv = trio.open_memory_channel(10)
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_trace_writer(tmp_path, "nodeA", recv, now=lambda: 1000.0,
                                                                     task_status=task_status))
            await send.send([IndexedEvent(idx=0, event=TestEvent()), IndexedEvent(idx=1, event=_merged()),
                             IndexedEvent(idx=2, event=_merged(task_id="task-2", t0_us=900_000_000))])
            with trio.fail_after(5):
                while load_trace(tmp_path, "task-2") is None:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    trio.run(scenario)
    assert load_trace(tmp_path, "task-1") is None  # ended ~15 min before the writer started
