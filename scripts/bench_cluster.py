#!/usr/bin/env python3
"""Cluster benchmark on loopback; prints one JSON line.

convergence_3_s / convergence_6_s: from the last node's API answering to every node agreeing
on membership and session. failover_s: SIGKILL of the master to survivors agreeing on a new
session. idle_cpu_pct_per_node / idle_rss_mb_per_node: averaged over an idle window.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skulk.testing.cluster import LocalCluster, wait_until  # noqa: E402


def agreed(nodes, ids):
    docs = [n.get("/state") for n in nodes]
    sessions = {json.dumps(d["sessionId"], sort_keys=True) for d in docs}
    return all(set(d["nodeIdentities"]) == ids for d in docs) and len(sessions) == 1 and docs


def new_session_agreed(nodes, old):
    sessions = {json.dumps(n.get("/state")["sessionId"], sort_keys=True) for n in nodes}
    return len(sessions) == 1 and json.loads(sessions.pop()) != old


def start(cluster, count):
    nodes = [cluster.add_node(f"n{i}") for i in range(count)]
    for node in nodes:
        cluster.wait_ready(node, timeout=90)
    ready = time.monotonic()
    ids = {n.get("/node_id") for n in nodes}
    docs = wait_until(lambda: agreed(nodes, ids), 60)
    return nodes, ids, docs, time.monotonic() - ready


def idle_usage(nodes, window: float):
    procs = [psutil.Process(n.proc.pid) for n in nodes]
    before = [p.cpu_times() for p in procs]
    time.sleep(window)  # measuring an idle window, not synchronising
    after = [p.cpu_times() for p in procs]
    cpu = [((a.user + a.system) - (b.user + b.system)) / window * 100 for a, b in zip(after, before)]
    rss = [p.memory_info().rss / 2**20 for p in procs]
    return sum(cpu) / len(cpu), sum(rss) / len(rss)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-window", type=float, default=10.0)
    args = parser.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "c3")
        try:
            nodes, ids, docs, result["convergence_3_s"] = start(cluster, 3)
            result["idle_cpu_pct_per_node"], result["idle_rss_mb_per_node"] = idle_usage(nodes, args.idle_window)
            master = next(n for n in nodes if n.get("/node_id") == docs[0]["masterNodeId"])
            rest = [n for n in nodes if n is not master]
            old = docs[0]["sessionId"]
            master.kill()
            t0 = time.monotonic()
            wait_until(lambda: new_session_agreed(rest, old), 30)
            result["failover_s"] = time.monotonic() - t0
        finally:
            cluster.stop_all()
        cluster = LocalCluster(Path(tmp) / "c6")
        try:
            _, _, _, result["convergence_6_s"] = start(cluster, 6)
        finally:
            cluster.stop_all()
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
