"""The lean request path's cost to the cluster: replicated events per chat request and the master's
CPU seconds per 100 requests (bench_serving.py --lean N runs it).

The instance runs on one node, the requests go to the other node's API (so each request's params and
tokens cross the data plane), and they alternate streamed and whole answers. Events are counted in the
master's log (GET /events on the master) between the first request and the last task's deletion; the
master's CPU is psutil's user + system time of its node process over the same span.
"""

from collections import Counter
from typing import Any

import httpx
import psutil

from skulk.testing.cluster import NodeProcess, wait_until

# What serving writes to the log (periodic facts such as NodeGatheredInfo accrue on their own).
REQUEST_KINDS = frozenset({"TaskCreated", "TaskStatusUpdated", "TaskFailed", "TaskDeleted", "UsageRecorded",
                           "RunnerStatusUpdated", "ChunkGenerated", "TracesCollected", "RequestRejected"})


def _cpu_s(node: NodeProcess) -> float:
    times = psutil.Process(node.proc.pid).cpu_times()
    return times.user + times.system


def _one(node: NodeProcess, model: str, i: int, max_tokens: int) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": f"Count to {i % 7 + 3}."}],
            "temperature": 0, "max_tokens": max_tokens, "stream": i % 2 == 1}
    resp = httpx.post(node.url + "/v1/chat/completions", json=body, timeout=300, trust_env=False)
    if resp.status_code != 200:
        raise RuntimeError(f"request {i}: {resp.status_code} {resp.text[:300]}")


def bench_lean(api: NodeProcess, master: NodeProcess, model: str, requests: int, max_tokens: int) -> dict[str, Any]:
    wait_until(lambda: not master.get("/state")["tasks"], 60, message="no open task before the run")
    start_idx = master.get("/state")["lastEventAppliedIdx"]
    cpu0 = _cpu_s(master)
    for i in range(requests):
        _one(api, model, i, max_tokens)
    wait_until(lambda: not master.get("/state")["tasks"], 60, message="every task deleted")
    cpu = _cpu_s(master) - cpu0
    events = master.get(f"/events?since={start_idx + 1}", timeout=30)
    kinds = Counter(next(iter(e)) for e in events)
    serving = sum(n for k, n in kinds.items() if k in REQUEST_KINDS)
    return {"bench": "lean_path", "model": model, "requests": requests, "max_tokens": max_tokens,
            "events_per_request": round(serving / requests, 3),
            "all_events_per_request": round(len(events) / requests, 3),
            "master_cpu_s_per_100_requests": round(cpu * 100 / requests, 3),
            "master_on_api_node": master is api, "event_kinds": dict(kinds),
            "target_events_per_request": 2, "ok": serving <= 2 * requests}
