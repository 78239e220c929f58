"""Diagnostics across real node processes: one node by id through another, the merged flight
recorder timeline, and cancelling a task on a peer's real runner."""

import httpx
import pytest

from skulk.testing.cluster import wait_until
from skulk.testing.serving import ready_instance
from tests.serving.conftest import DEFAULT_MODEL
from tests.serving.test_serving import place, start

pytest.importorskip("skulk.runner.supervisor")


def _open_long_stream(node):
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Write a very long story."}],
            "max_tokens": 3000, "stream": True, "temperature": 0}
    return httpx.stream("POST", node.url + "/v1/chat/completions", json=body, timeout=60, trust_env=False)


def _task_of(node, command_id: str) -> str:
    tasks = node.get("/state")["tasks"]
    return next(tid for tid, tagged in tasks.items() if tagged.get("TextGeneration", {}).get("commandId") == command_id)


def test_peer_diagnostics_timeline_and_runner_cancel(cluster):
    nodes, ids = start(cluster, 2)
    place(nodes[0], min_nodes=1)
    inst = ready_instance(nodes[0], DEFAULT_MODEL)
    ((host_id, runner_id),) = inst["shardAssignments"]["nodeToRunner"].items()
    asker = next(node for node_id, node in ids.items() if node_id != host_id)  # every call goes through a peer

    peer = asker.get(f"/v1/diagnostics/cluster/{host_id}", timeout=10)
    assert peer["runtime"]["nodeId"] == host_id
    assert [r["runnerId"] for r in peer["supervisorRunners"]] == [runner_id]
    assert peer["supervisorRunners"][0]["statusSince"] and peer["supervisorRunners"][0]["recentEntries"]
    assert httpx.get(asker.url + "/v1/diagnostics/cluster/not-a-node", trust_env=False).status_code == 404
    cancel_path = f"/v1/diagnostics/cluster/{host_id}/runners/{runner_id}/cancel"
    assert asker.post(cancel_path, {"taskId": "never-was"}).status_code == 404

    with _open_long_stream(asker) as r:
        lines = r.iter_lines()
        command_id = next(line.split()[-1] for line in lines if line.startswith(": command_id"))
        next(line for line in lines if line.startswith("data: {"))
        task_id = _task_of(asker, command_id)
        resp = asker.post(cancel_path, {"taskId": task_id})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"nodeId": host_id, "runnerId": runner_id, "taskId": task_id,
                               "status": "cancel_requested", "message": resp.json()["message"]}
        rest = [line for line in lines if line.startswith("data:")]
    assert any('"error"' in line for line in rest) and rest[-1] == "data: [DONE]"

    def cancelled_in_timeline():
        doc = asker.get("/v1/diagnostics/cluster/timeline", timeout=10)
        kinds = {(e["nodeId"], e["kind"]) for e in doc["timeline"] if e.get("taskId") == task_id}
        return doc if (host_id, "task_cancelled") in kinds else None
    doc = wait_until(cancelled_in_timeline, 15, interval=0.2, message="the peer's cancellation in the timeline")
    assert doc["unreachableNodes"] == [] and doc["localNodeId"] != host_id
    mine = [(e["kind"]) for e in doc["timeline"] if e.get("taskId") == task_id and e["nodeId"] == host_id]
    assert mine.index("task_forwarded") < mine.index("cancel_requested") < mine.index("task_cancelled")
    assert {e["nodeId"] for e in doc["timeline"] if e["kind"] == "session_changed"} == set(ids)
    assert [e["at"] for e in doc["timeline"]] == sorted(e["at"] for e in doc["timeline"])
    synopsis = next(r for r in doc["runners"] if r["runnerId"] == runner_id)
    assert synopsis["nodeId"] == host_id and synopsis["status"] in ("RunnerReady", "RunnerRunning")
    again = asker.post(cancel_path, {"taskId": task_id})
    assert again.status_code == 200 and again.json()["status"] == "already_cancelled"
