"""Real `--no-worker` node processes on loopback: convergence, idle cost, fan-out, failover.

Used by scripts/bench_scale.py and tests/cluster/test_ten_nodes.py. Every wait is bounded by
`wait_until`; the caller's LocalCluster stops every process by PID in a `finally`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil

from skulk.testing.cluster import LocalCluster, NodeProcess, wait_until

BOOTSTRAP_FANIN = 3  # each node dials the first few: discovery must find the rest
BYTE_KEYS = ("gossip_published_bytes", "gossip_received_bytes", "direct_sent_bytes", "direct_received_bytes")


def start_nodes(cluster: LocalCluster, size: int, ready_timeout: float = 120.0) -> list[NodeProcess]:
    nodes: list[NodeProcess] = []
    for i in range(size):
        seeds = [n.peer_addr for n in nodes[:BOOTSTRAP_FANIN]]
        nodes.append(cluster.add_node(f"n{i}", bootstrap=seeds, extra_args=["--no-worker"]))
    for node in nodes:
        cluster.wait_ready(node, timeout=ready_timeout)
    return nodes


def _session(doc: dict) -> str:
    return json.dumps(doc.get("sessionId"), sort_keys=True)


def agreement(nodes: list[NodeProcess], ids: set[str]) -> list[dict] | None:
    """Every node's /state if all name the same session and see every node; else None."""
    docs = []
    for node in nodes:
        doc = node.get("/state", timeout=10)
        if set(doc.get("nodeIdentities", {})) != ids or doc.get("sessionId") is None:
            return None
        docs.append(doc)
    return docs if len({_session(d) for d in docs}) == 1 else None


def converge(nodes: list[NodeProcess], timeout: float) -> tuple[float, list[dict]]:
    """Seconds from the last node's API answering until every node agrees."""
    ids = {n.get("/node_id") for n in nodes}
    t0 = time.monotonic()
    docs = wait_until(lambda: agreement(nodes, ids), timeout, interval=0.2, message="convergence")
    return time.monotonic() - t0, docs


def failover(nodes: list[NodeProcess], docs: list[dict], timeout: float) -> tuple[float, list[NodeProcess], str]:
    """SIGKILL the master; seconds until every survivor names one new session with a new master."""
    master_id = docs[0]["sessionId"]["masterNodeId"]
    by_id = {n.get("/node_id"): n for n in nodes}
    master = by_id[master_id]
    rest = [n for n in nodes if n is not master]
    master.kill()
    t0 = time.monotonic()

    def moved():
        sessions = {_session(n.get("/state", timeout=10)) for n in rest}
        if len(sessions) != 1:
            return None
        new = json.loads(sessions.pop())
        return new if new and new.get("masterNodeId") != master_id else None

    new = wait_until(moved, timeout, interval=0.2, message="failover")
    return time.monotonic() - t0, rest, new["masterNodeId"]


def _counters(node: NodeProcess) -> dict:
    return node.get("/v1/diagnostics/node", timeout=15).get("counters", {})


def idle_cost(nodes: list[NodeProcess], window: float) -> dict:
    """Per node, averaged: CPU percent and payload bytes per second over an idle window."""
    procs = [psutil.Process(n.proc.pid) for n in nodes]
    c0 = [_counters(n) for n in nodes]
    cpu0 = [p.cpu_times() for p in procs]
    t0 = time.monotonic()
    time.sleep(window)  # measuring an idle window, not synchronising
    elapsed = time.monotonic() - t0
    cpu1 = [p.cpu_times() for p in procs]
    c1 = [_counters(n) for n in nodes]
    cpu = [((b.user + b.system) - (a.user + a.system)) / elapsed * 100 for a, b in zip(cpu0, cpu1)]
    out = {"cpu_pct_per_node": round(sum(cpu) / len(cpu), 2), "cpu_pct_max": round(max(cpu), 2),
           "rss_mb_per_node": round(sum(p.memory_info().rss for p in procs) / len(procs) / 2**20, 1)}
    for key in BYTE_KEYS + ("gossip_published_bytes:skulk/heartbeat/1",):
        rates = [(b.get(key, 0) - a.get(key, 0)) / elapsed for a, b in zip(c0, c1)]
        out[key.replace(":skulk/heartbeat/1", "_heartbeat") + "_per_s_per_node"] = round(sum(rates) / len(rates), 1)
    return out


def fanout(nodes: list[NodeProcess], events: int, timeout: float) -> dict:
    """POST test events on one follower; time until every node applied them, bytes they cost."""
    base = max(n.get("/state", timeout=10)["lastEventAppliedIdx"] for n in nodes)
    c0 = [_counters(n) for n in nodes]
    t0 = time.monotonic()
    resp = nodes[-1].post("/debug/test_events", {"count": events, "note": "fan"}, timeout=30)
    resp.raise_for_status()
    wait_until(lambda: all(n.get("/state", timeout=10)["lastEventAppliedIdx"] >= base + events for n in nodes),
               timeout, interval=0.2, message="fan-out applied everywhere")
    elapsed = time.monotonic() - t0
    c1 = [_counters(n) for n in nodes]
    sent = sum(b.get("direct_sent_bytes", 0) - a.get("direct_sent_bytes", 0) for a, b in zip(c0, c1))
    return {"events": events, "all_applied_s": round(elapsed, 3),
            "ms_per_event": round(elapsed / events * 1000, 3),
            "direct_bytes_per_event_total": round(sent / events, 1),
            "direct_bytes_per_event_per_node": round(sent / events / len(nodes), 1)}


def measure_cluster(root: Path, size: int, *, idle_window: float, events: int,
                    converge_timeout: float) -> list[dict]:
    cluster = LocalCluster(root)
    out: list[dict] = []
    try:
        t0 = time.monotonic()
        nodes = start_nodes(cluster, size)
        ready_s = time.monotonic() - t0
        try:
            conv_s, docs = converge(nodes, converge_timeout)
        except TimeoutError as e:  # still worth knowing what an unconverged cluster costs
            sessions = sorted({_session(n.get("/state", timeout=10)) for n in nodes})
            return [{"measurement": "real_converge", "nodes": size, "ready_s": round(ready_s, 1),
                     "converged": False, "distinct_sessions": len(sessions), "error": str(e)[:200]},
                    {"measurement": "real_idle", "nodes": size, "window_s": idle_window, "converged": False,
                     **idle_cost(nodes, idle_window)}]
        out.append({"measurement": "real_converge", "nodes": size, "ready_s": round(ready_s, 1),
                    "converged": True, "converge_s": round(conv_s, 3)})
        out.append({"measurement": "real_idle", "nodes": size, "window_s": idle_window, **idle_cost(nodes, idle_window)})
        out.append({"measurement": "real_fanout", "nodes": size, **fanout(nodes, events, converge_timeout)})
        try:
            fo_s, _, _ = failover(nodes, docs, converge_timeout)
            out.append({"measurement": "real_failover", "nodes": size, "failover_s": round(fo_s, 3)})
        except TimeoutError as e:
            out.append({"measurement": "real_failover", "nodes": size, "failover_s": None, "error": str(e)[:300]})
    finally:
        for node in cluster.nodes:  # a benchmark needs no graceful exit: 30 SIGTERM waits take minutes here
            node.kill()
        cluster.stop_all()
    return out
